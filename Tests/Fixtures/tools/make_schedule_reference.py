"""timm scheduler reference: lr of each param group at every step for several schedules built
by timm.scheduler.create_scheduler_v2 (two groups: lr 1e-3 scale 1, lr 5e-4 scale 0.5)."""
import json, os, sys, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_stub
torchvision_stub.install()
warnings.filterwarnings("ignore")
import torch, timm
from timm.scheduler import create_scheduler_v2

def groups():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 5e-4, "lr_scale": 0.5}], lr=1e-3)

cases = []
def run(name, steps, metrics=None, **kw):
    opt = groups()
    sched, epochs = create_scheduler_v2(opt, **kw)
    per_update = not kw.get("step_on_epochs", True)
    lrs = [[g["lr"] for g in opt.param_groups]]
    for t in range(1, steps + 1):
        if per_update:
            sched.step_update(t)
        else:
            sched.step(t, metrics[t - 1] if metrics else None)
        lrs.append([g["lr"] for g in opt.param_groups])
    cases.append({"name": name, "args": kw, "metrics": metrics, "num_epochs": epochs, "lrs": lrs})

run("cosine_warmup", 12, sched="cosine", num_epochs=10, warmup_epochs=2, warmup_lr=1e-5, min_lr=1e-6)
run("cosine_updates", 14, sched="cosine", num_epochs=4, warmup_epochs=1, warmup_lr=1e-6, min_lr=1e-5,
    step_on_epochs=False, updates_per_epoch=3)
run("cosine_cycles", 20, sched="cosine", num_epochs=4, cycle_mul=2.0, cycle_limit=3, cycle_decay=0.5, k_decay=1.5)
run("cosine_prefix", 10, sched="cosine", num_epochs=6, warmup_epochs=2, warmup_prefix=True, min_lr=0.0)
run("step", 10, sched="step", num_epochs=10, decay_epochs=3, decay_rate=0.5, warmup_epochs=1, warmup_lr=1e-4)
run("multistep", 10, sched="multistep", num_epochs=10, decay_milestones=[3, 6], decay_rate=0.1)
run("constant", 6, sched="constant", num_epochs=6, warmup_epochs=2, warmup_lr=0.0)
run("plateau", 12, metrics=[0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7],
    sched="plateau", num_epochs=12, patience_epochs=1, decay_rate=0.5, warmup_epochs=1, warmup_lr=1e-4, min_lr=1e-5)
json.dump({"timm": timm.__version__, "cases": cases}, open(sys.argv[1], "w"), indent=0)
print(len(cases), "cases")
