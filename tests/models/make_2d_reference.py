"""Write the 2D default's reference outputs (tests/models/stream2d_reference.pt) with the code of the checkout it is
run in. Run once at commit 68e3e91 (before the stream interface and the video backbones):
``PYTHONPATH=<checkout of 68e3e91>/src python tests/models/make_2d_reference.py``. Only API present at both commits
is used: the paper config, ``StepModule``, its ``forward`` and ``compute_loss``.

The network runs in float64 (weights initialised in float32 from the seed, then widened; every layer's input
widened too), so that another CPU's summation order moves the outputs by about 1e-15 relative, far below what any
change to the model moves them by: the comparison can be sharp and portable at once."""

import subprocess
import sys
from pathlib import Path

import torch

from modistill.config import CONFIG_DIR, load_config
from modistill.training.module import StepModule

STEPS = ("step1_rgb", "step2", "step3", "step4")
OVERRIDES = ["data.cache=/nowhere", "model.arch=resnet18", "model.width=8", "model.pretrained=null"]


def batch() -> dict:
    g = torch.Generator().manual_seed(7)
    return {
        "rgb": torch.randint(0, 256, (2, 3, 3, 32, 32), dtype=torch.uint8, generator=g),
        "depth": torch.randint(0, 256, (2, 3, 3, 32, 32), dtype=torch.uint8, generator=g),
        "label": torch.tensor([1, 3]),
    }


def in_float64(module: torch.nn.Module) -> torch.nn.Module:
    """The module with float64 weights, and every layer that holds weights widening its float inputs first (the
    uint8 clip is normalised in float32 by the model's own code, at both commits alike)."""

    def widen(_, args):
        return tuple(a.double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    for m in module.modules():
        if any(True for _ in m.parameters(recurse=False)):
            m.register_forward_pre_hook(widen)
    return module.double()


def outputs(cfg: dict) -> dict:
    """Per step, with the seed fixed before the model is built: eval and train logits of every stream, the loss,
    and the gradient of the RGB (or hallucination) stream's first convolution, all float64."""
    out, b = {}, batch()
    for step in STEPS:
        torch.manual_seed(0)
        module = in_float64(StepModule(step, cfg, 5))
        with torch.no_grad():
            ev = module.eval()(b)
        tr = module.train()(b)
        loss, _ = module.compute_loss(tr, b["label"])
        loss.backward()
        trained = [n for n, p in module.net.named_parameters() if p.grad is not None and "conv1.weight" in n]
        first = trained[0]
        out[step] = {
            "eval_logits": {k: v.detach() for k, v in ev.logits.items()},
            "train_logits": {k: v.detach() for k, v in tr.logits.items()},
            "loss": loss.detach(),
            "grad_name": first,
            "grad": dict(module.net.named_parameters())[first].grad.detach(),
        }
    return out


if __name__ == "__main__":
    cfg = load_config(CONFIG_DIR / "ntu60_xsub.yaml", OVERRIDES)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(sys.modules["modistill"].__file__).parent
    ).stdout.strip()
    ref = {
        "commit": commit,
        "torch": str(torch.__version__),
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "outputs": outputs(cfg),
    }
    dest = Path(__file__).parent / "stream2d_reference.pt"
    torch.save(ref, dest)
    print(f"wrote {dest} from {commit}")
