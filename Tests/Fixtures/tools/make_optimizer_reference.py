"""Multi-step torch.optim reference for Finch's AdamW and SGD tests.
Two parameters in two groups with different lr / weight decay; gradients change every step
(g_t = cos(t·k + p) style, deterministic); several optimizer settings. Writes JSON with the
initial values, the gradients fed at each step and the parameters after each step."""
import json, math, sys, torch

def grads(step, n, salt):
    return [math.sin(0.7 * step + 0.3 * i + salt) * (1 + 0.5 * i) for i in range(n)]

def run(kind, **kw):
    p0 = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.25], dtype=torch.float32, requires_grad=True)
    p1 = torch.tensor([[1.5, -0.5], [0.75, -2.0]], dtype=torch.float32, requires_grad=True)
    groups = [{"params": [p0], "lr": 1e-2, "weight_decay": 0.1}, {"params": [p1], "lr": 3e-3, "weight_decay": 0.0}]
    opt = (torch.optim.AdamW if kind == "adamw" else torch.optim.SGD)(groups, **kw)
    record = {"kind": kind, "options": kw, "groups": [{"lr": 1e-2, "weight_decay": 0.1}, {"lr": 3e-3, "weight_decay": 0.0}],
              "initial": [p0.tolist(), p1.flatten().tolist()], "steps": []}
    for step in range(1, 6):
        g0 = torch.tensor(grads(step, 5, 0.0), dtype=torch.float32)
        g1 = torch.tensor(grads(step, 4, 1.0), dtype=torch.float32).reshape(2, 2)
        p0.grad, p1.grad = g0.clone(), g1.clone()
        opt.step()
        record["steps"].append({"grads": [g0.tolist(), g1.flatten().tolist()],
                                "params": [p0.detach().tolist(), p1.detach().flatten().tolist()]})
    return record

cases = [run("adamw"), run("adamw", betas=(0.8, 0.95), eps=1e-6, amsgrad=True),
         run("sgd", momentum=0.9, nesterov=True), run("sgd", momentum=0.8, dampening=0.1),
         run("sgd")]
json.dump({"torch": torch.__version__, "cases": cases}, open(sys.argv[1], "w"), indent=1)
