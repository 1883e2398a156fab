"""Small PyTorch files for Finch's .pth reader (Tests/FinchIOTests/TorchCheckpointTests).
  tiny_state.pth            a state dict with float32/float16/bfloat16/int64/int32/bool tensors,
                            a scalar, a transposed view and an offset slice sharing one storage
  tiny_state.expected.safetensors   the same tensors, contiguous, as float32 / int64
  checkpoint_module.pth     {'epoch', 'state_dict' with DataParallel 'module.' keys, 'optimizer'}
  legacy.pth                the pre-1.6 pickle format (must be refused with a clear message)
  mnv3s_renamed_half.pth    timm mobilenetv3_small_100 (3 classes) in float16 under other key names
  mnv3s_renamed_half.json   per timm name: shape and float64 sum, to check the mapping
Run from the repository root: python3 Tests/Fixtures/tools/make_pth.py"""
import collections, json, re, sys
import torch
from safetensors.torch import save_file
sys.path.insert(0, "Tests/Fixtures/tools")
import torchvision_stub
torchvision_stub.install()
import timm

out = "Tests/Fixtures/pth/"
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(36, 2))
net(torch.randn(2, 3, 5, 5))  # one train step of BatchNorm statistics
sd = collections.OrderedDict(net.state_dict())
base = torch.arange(24, dtype=torch.float32) * 0.25 - 3
sd["extra.half"] = torch.randn(3, 2).half()
sd["extra.bf16"] = torch.randn(5).bfloat16()
sd["extra.transposed"] = base.view(4, 6).t()           # strides (1, 6)
sd["extra.slice"] = base[5:17].view(3, 4)[:, 1:3]       # offset 6, strides (4, 1)
sd["extra.int32"] = torch.tensor([[1, -2], [3, 2**31 - 1]], dtype=torch.int32)
sd["extra.bool"] = torch.tensor([True, False, True])
sd["extra.scalar"] = torch.tensor(2.5)
sd["extra.param"] = torch.nn.Parameter(torch.randn(2, 2))
torch.save(sd, out + "tiny_state.pth")
expected = {k: (v.detach().contiguous().to(torch.int64) if not v.is_floating_point() else v.detach().float().contiguous())
            for k, v in sd.items()}
save_file(expected, out + "tiny_state.expected.safetensors")

ck = {"epoch": 3, "arch": "tiny", "state_dict": collections.OrderedDict(("module." + k, v) for k, v in net.state_dict().items()),
      "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
torch.save(ck, out + "checkpoint_module.pth")
torch.save(net.state_dict(), out + "legacy.pth", _use_new_zipfile_serialization=False)

m = timm.create_model("mobilenetv3_small_100", num_classes=3)
renames = [(r"^conv_stem\.", "features.stem.conv."), (r"^bn1\.", "features.stem.bn."), (r"^blocks\.", "features."),
           (r"^conv_head\.", "head.conv."), (r"^classifier\.", "head.fc.")]
def other(k):
    for p, t in renames:
        if re.match(p, k):
            return re.sub(p, t, k)
    return k
half = collections.OrderedDict((other(k), v.half() if v.is_floating_point() else v) for k, v in m.state_dict().items())
torch.save(half, out + "mnv3s_renamed_half.pth")
json.dump({k: {"shape": list(v.shape), "sum": float(v.double().sum()) if v.is_floating_point() else float(v.sum())}
           for k, v in ((k, v.half().double() if v.is_floating_point() else v) for k, v in m.state_dict().items())},
          open(out + "mnv3s_renamed_half.json", "w"), indent=0)
print("ok")
