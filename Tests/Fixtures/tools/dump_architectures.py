"""Writes timm's state-dict layout (names in order, shapes, dtypes, parameter count) and
pretrained config for each zoo model, so Finch's tests check names and shapes without Python.
Usage: python dump_architectures.py OUTDIR model[:num_classes] ..."""
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_stub
torchvision_stub.install()
import timm, torch

if __name__ == "__main__":
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for spec in sys.argv[2:]:
        name, _, classes = spec.partition(":")
        classes = int(classes or 1000)
        m = timm.create_model(name, pretrained=False, num_classes=classes)
        cfg = m.pretrained_cfg
        entries = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                   for k, v in m.state_dict().items()]
        doc = {"model": name, "num_classes": classes, "timm": timm.__version__,
               "parameters": sum(p.numel() for p in m.parameters()),
               "num_features": m.num_features,
               "classifier": cfg.get("classifier"),
               "pretrained_cfg": {k: cfg.get(k) for k in ("input_size", "crop_pct", "interpolation", "mean", "std")},
               "state_dict": entries}
        with open(os.path.join(outdir, f"{name}_{classes}.json"), "w") as f:
            json.dump(doc, f, indent=0)
        print(name, classes, doc["parameters"], len(entries))
