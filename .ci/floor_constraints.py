"""Print ``name==floor.*`` for every dependency of pyproject.toml (core and the extras the floors job installs), so
that pip installs the lowest versions the project claims to support. torch and torchvision are left to the
machine's own builds: their lowest allowed releases are multi-GB CUDA downloads a CI machine does not serve."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

SKIP = {"torch", "torchvision"}
EXTRAS = ("onnx", "tensorboard", "tune")

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
specs = list(project["dependencies"]) + [d for e in EXTRAS for d in project["optional-dependencies"][e]]
for spec in specs:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)\s*", spec)
    if m is None:
        sys.exit(f"pyproject.toml: {spec!r} has no plain >= floor")
    if m.group(1).lower() not in SKIP:
        print(f"{m.group(1)}=={m.group(2)}.*")  # the lowest release series allowed
