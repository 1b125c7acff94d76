"""What a config key is (:class:`Field`: default, kind, constraint, help, fingerprint role), the roles, and the
constraints the schema's keys use, each with its words for the config reference."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Check = Callable[[Any], str | None]  # returns what is wrong, or None


@dataclass(frozen=True)
class Field:
    """One config key: its default, its kind, its constraint and what it does (the config reference is generated
    from these)."""

    default: Any
    kind: str  # int | float | bool | str | path | list | mapping | devices | precision | limit | workers
    check: Check | None = None
    nullable: bool = False
    help: str = ""
    role: str = ""  # its fingerprint role (ROLES)
    name: str = ""  # its name in the config, where that is not a Python name (distill.lambda)


# A key's fingerprint role: whether a finished step that trained with another value of it is reused
# (:mod:`modistill.training.fingerprint`). Every key declares one.
STEP = "step"  # changes what every step learns
WHEN_SET = "step, when set"  # a training lever added later: in the fingerprint only when not at its default
WHEN_DISTILLING = "step, when distilling"  # the distillation steps' losses
WHEN_USED = "step, when used"  # only the steps it acts on (pretrained start, connections, privileged input, ...)
WORLD_SIZE = "step, as the world size"  # sets the global batch of a multi-process step
RUN = "run"  # the run's, not a step's: its name, cache, steps and evaluation
NO_EFFECT = "none"  # how a step runs, not what it learns
ROLES = (STEP, WHEN_SET, WHEN_DISTILLING, WHEN_USED, WORLD_SIZE, RUN, NO_EFFECT)
ROLE_WORDS = {  # for the config reference
    STEP: "every step",
    WHEN_SET: "every step, once set to other than its default",
    WHEN_DISTILLING: "the distillation steps",
    WHEN_USED: "the steps it acts on",
    WORLD_SIZE: "every step, as the number of processes (above 1)",
    RUN: "none (the run's)",
    NO_EFFECT: "none",
}


def option(
    default: Any,
    kind: str,
    check: Check | None = None,
    *,
    role: str,
    nullable: bool = False,
    help: str = "",
    name: str = "",
) -> Any:
    """A config key as a section's dataclass field: its default and its :class:`Field` (kind, constraint, help,
    fingerprint role) in the field's metadata."""
    spec = Field(default, kind, check, nullable, help, role, name)
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


def says(text: Callable[[], str]) -> Callable[[Check], Check]:
    """Attaches the constraint in words (``allowed``) that the config reference shows beside the key."""

    def mark(check: Check) -> Check:
        check.allowed = text  # type: ignore[attr-defined]
        return check

    return mark


KIND_ALLOWED = {
    "bool": "true | false",
    "path": "a file or folder",
    "workers": "auto, or 0 to 256",
    "devices": "auto, a count >= 1, -1 (all) or [indices]",
    "limit": "a fraction in (0, 1] or batches >= 1",
}


def allowed(field: Field) -> str:
    """A field's constraint in words, for the config reference."""
    if field.check is not None and hasattr(field.check, "allowed"):
        return field.check.allowed()
    return KIND_ALLOWED[field.kind]


def in_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Check:
    words = " and ".join(
        ([f"{'>' if lo_open else '>='} {lo:g}"] if lo is not None else []) + ([f"<= {hi:g}"] if hi is not None else [])
    )

    @says(lambda: words)
    def check(v):
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo:g}"
        if hi is not None and v > hi:
            return f"must be <= {hi:g}"
        return None

    return check


def one_of(*allowed) -> Check:
    return says(lambda: " | ".join(map(str, allowed)))(
        lambda v: None if v in allowed else f"is not one of {list(allowed)}"
    )


def one_of_names(names: Callable[[], Sequence[str]]) -> Check:
    """Like :func:`one_of`, for names a heavier module owns (imported when a config is checked, not when this
    module is imported, so that the command line's parser stays light)."""

    @says(lambda: " | ".join(names()))
    def check(v):
        return None if v in names() else f"is not one of {list(names())}"

    return check


def privileged_names() -> tuple[str, ...]:
    from modistill.data.modalities import privileged_names

    return privileged_names()


def arch_names() -> list[str]:
    from modistill.models.backbone import list_backbones

    return list_backbones()


def sampling_names() -> tuple[str, ...]:
    from modistill.data.dataset import SAMPLINGS

    return SAMPLINGS


arch_check = one_of_names(arch_names)
sampling_check = one_of_names(sampling_names)


def steps_check(allow_empty: bool) -> Check:
    @says(lambda: "step names (`modistill train --help` lists them)" + ("" if allow_empty else ", at least one"))
    def check(v):
        from modistill.training.steps import STEPS

        if not v and not allow_empty:
            return "must name at least one step"
        bad = [s for s in v if s not in STEPS]
        return f"has unknown step(s) {bad}; known: {sorted(STEPS)}" if bad else None

    return check


def per_step_check(least: int, what: str) -> Check:
    """A mapping of step names to whole numbers of epochs >= ``least`` (``what`` they count)."""

    @says(lambda: f"step name: epochs >= {least}")
    def check(v: dict) -> str | None:
        from modistill.training.steps import STEPS

        bad = [k for k in v if k not in STEPS]
        if bad:
            return f"has unknown step(s) {bad}; known: {sorted(STEPS)}"
        wrong = [
            k for k, n in v.items() if not (isinstance(n, int) and not isinstance(n, bool) and least <= n <= 100000)
        ]
        return f"must give each step {what} >= {least} ({wrong[0]}: {v[wrong[0]]!r})" if wrong else None

    return check


step_epochs_check = per_step_check(1, "a number of epochs")
step_patience_check = per_step_check(0, "a patience in epochs")


@says(lambda: "non-empty subset of layer1-layer4")
def layers_check(v: list) -> str | None:
    known = ("layer1", "layer2", "layer3", "layer4")
    if not v:
        return f"must name at least one of {list(known)}"
    bad = [x for x in v if x not in known]
    return f"has unknown layer(s) {bad}; known: {list(known)}" if bad else None


@says(lambda: "variances >= 0")
def sigmas_check(v: list) -> str | None:
    ok = all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in v)
    return None if ok else "must be a list of noise variances >= 0"


@says(lambda: "[min, max], 0 < min <= max <= 1")
def crop_scale_check(v: list) -> str | None:
    ok = (
        len(v) == 2 and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v) and 0 < v[0] <= v[1] <= 1
    )
    return None if ok else "must be [min, max] with 0 < min <= max <= 1"


PRECISIONS = ("auto", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true", "64", "64-true")
LOGGERS = ("csv", "tensorboard", "wandb", "mlflow")


@says(lambda: "subset of " + ", ".join(LOGGERS) + ", with csv")
def loggers_check(v: list) -> str | None:
    bad = [x for x in v if x not in LOGGERS]
    if bad:
        return f"has unknown logger(s) {bad}; known: {list(LOGGERS)}"
    if "csv" not in v:
        return "must keep csv: the run's own per-epoch record, which `evaluate` plots"
    return None
