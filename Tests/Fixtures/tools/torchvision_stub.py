import sys, types, enum, torch
def install():
    try:
        import torchvision  # noqa
        return
    except Exception:
        pass
    for k in [k for k in sys.modules if k.startswith("torchvision")]:
        del sys.modules[k]
    def mod(name):
        m = types.ModuleType(name); sys.modules[name] = m; return m
    tv = mod("torchvision"); tv.__version__ = "0.0-stub"
    ops = mod("torchvision.ops"); misc = mod("torchvision.ops.misc")
    class FrozenBatchNorm2d(torch.nn.Module):
        def __init__(self, num_features, eps=1e-5):
            super().__init__()
            for n in ("weight", "bias", "running_mean", "running_var"):
                self.register_buffer(n, torch.ones(num_features) if n in ("weight", "running_var") else torch.zeros(num_features))
            self.eps = eps
    misc.FrozenBatchNorm2d = FrozenBatchNorm2d; ops.misc = misc; tv.ops = ops
    models = mod("torchvision.models"); fe = mod("torchvision.models.feature_extraction")
    def _na(*a, **k): raise RuntimeError("torchvision stub: feature extraction unavailable")
    fe.create_feature_extractor = _na; fe.get_graph_node_names = _na; models.feature_extraction = fe; tv.models = models
    tr = mod("torchvision.transforms"); fn = mod("torchvision.transforms.functional")
    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"; NEAREST_EXACT = "nearest-exact"; BILINEAR = "bilinear"; BICUBIC = "bicubic"; BOX = "box"; HAMMING = "hamming"; LANCZOS = "lanczos"
    fn.InterpolationMode = InterpolationMode; tr.InterpolationMode = InterpolationMode; tr.functional = fn; tv.transforms = tr
    def _dummy(name):
        if name.startswith('__'): raise AttributeError(name)
        return type(name, (), {'__init__': lambda self, *a, **k: None})
    for m_ in (tr, fn):
        m_.__getattr__ = _dummy
    v2 = mod('torchvision.transforms.v2'); v2.__getattr__ = tr.__getattr__; tr.v2 = v2
    ds = mod("torchvision.datasets")
    for n in ("CIFAR100", "CIFAR10", "MNIST", "KMNIST", "FashionMNIST", "ImageFolder", "INaturalist", "ImageNet", "Places365", "QMNIST"):
        setattr(ds, n, type(n, (), {}))
    tv.datasets = ds
    ut = mod("torchvision.utils"); ut.save_image = _na; tv.utils = ut
