"""The distillation teacher's input and logits on a fixed batch, as the timm side of the results
table computes them (Experiments/timm_reference.py's teacher_input, then the timm model), for
TeacherInputTests: Finch's Distillation.teacherInput and teacher forward must give the same.

The batch is the parity fixtures' procedural input at 16 px resized to 28 px: the ratio 1.75 of the
table's 128-px students and 224-px teacher, on a batch small enough to commit. The teacher is
tf_efficientnet_lite0 with procedural weights (make_parity.py), 5 classes, in eval mode.

Writes Tests/Fixtures/distill/teacher_input_lite0_16to28.safetensors:
  input      float32 [2, 3, 16, 16]   the student's batch
  resized    float32 [2, 3, 28, 28]   teacher_input(input, 28) in float32 (F.interpolate, bilinear)
  noise.resized float64 [1]           max |float32 − float64| of that resize: PyTorch's own float32 error
  f64.logits float64 [2, 5]           the teacher's eval logits on it, float64 throughout
  noise.logits float64 [1]            max |float32 − float64| of those logits over 1, 2 and 3 threads:
                                      PyTorch's own float32 error, the tolerance's scale

  python3 Tests/Fixtures/tools/make_teacher_input_reference.py
"""
import os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "Experiments"))
import make_parity  # noqa: E402  (installs the torchvision stub, imports torch and timm)
from timm_reference import teacher_input  # noqa: E402
import torch  # noqa: E402
import timm  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

MODEL, CLASSES, BATCH, RES, SIZE = "tf_efficientnet_lite0", 5, 2, 16, 28


def main():
    m = timm.create_model(MODEL, num_classes=CLASSES)
    m.load_state_dict(make_parity.procedural_state(m))
    m.eval()
    x, _ = make_parity.procedural_batch(RES, CLASSES, BATCH)
    resized = teacher_input(x, SIZE)
    assert list(resized.shape) == [BATCH, 3, SIZE, SIZE]
    resize_noise = (resized.double() - teacher_input(x.double(), SIZE)).abs().max().item()
    with torch.no_grad():
        m64 = m.double()
        truth = m64(teacher_input(x.double(), SIZE))
        m.float()
        noise = 0.0
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            noise = max(noise, (m(resized).double() - truth).abs().max().item())
    out = os.path.join(HERE, "..", "distill", f"teacher_input_lite0_{RES}to{SIZE}.safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    save_file({"input": x.contiguous(), "resized": resized.contiguous(), "f64.logits": truth.contiguous(),
               "noise.logits": torch.tensor([noise], dtype=torch.float64),
               "noise.resized": torch.tensor([resize_noise], dtype=torch.float64)}, out,
              metadata={"model": MODEL, "torch": torch.__version__, "timm": timm.__version__,
                        "resize": "F.interpolate(bilinear, align_corners=False, antialias=False)"})
    print(out, "logits", truth.tolist(), "noise", noise, "resize noise", resize_noise)


if __name__ == "__main__":
    main()
