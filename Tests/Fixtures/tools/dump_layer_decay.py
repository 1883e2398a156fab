"""timm's layer-wise lr decay table (param_groups_layer_decay) for zoo models: per parameter
its layer id, lr scale and weight decay, plus the group count. Finch's layer-decay tests compare
against these. Usage: python dump_layer_decay.py OUT.json model ..."""
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_stub
torchvision_stub.install()
import timm
from timm.optim._param_groups import param_groups_layer_decay
from timm.models._manipulate import group_parameters

out = {"timm": timm.__version__, "layer_decay": 0.75, "weight_decay": 0.05, "min_scale": 0.1, "models": {}}
for name in sys.argv[2:]:
    m = timm.create_model(name, num_classes=5)
    layer_map = group_parameters(m, m.group_matcher(coarse=False), reverse=True)
    groups = param_groups_layer_decay(m, weight_decay=0.05, layer_decay=0.75, min_scale=0.1)
    table = {}
    for g in groups:
        for p in g["params"]:
            pname = next(n for n, q in m.named_parameters() if q is p)
            table[pname] = [layer_map.get(pname, max(layer_map.values())), g["lr_scale"], g["weight_decay"]]
    out["models"][name] = {"groups": len(groups), "num_layers": max(layer_map.values()) + 1,
                           "params": [[n] + table[n] for n, _ in m.named_parameters()]}
    print(name, len(groups), max(layer_map.values()) + 1)
json.dump(out, open(sys.argv[1], "w"), separators=(",", ":"))
