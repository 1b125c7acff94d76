"""Named training steps (paper sec. 3.2) and ablation variants, as data (which Table 2 row each gives is in
:mod:`modistill.evaluation.tables`).

Each step says which streams exist, what each is fed, how streams connect, where each stream's weights come
from, which stream is frozen, the loss, and which logits select the best epoch and give the step's accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class StepSpec:
    name: str
    title: str
    streams: tuple[str, ...]
    inputs: dict[str, str]
    init: dict[str, tuple[str, str] | None]  # stream → (step, stream in that step) or None for ImageNet/random
    connection: bool = False  # whether the step uses cross-stream connections at all
    frozen: tuple[str, ...] = ()
    loss: str = "ce"  # ce | eq3 | eq5 | eq7 | hoffman-eq3 | hoffman-eq5 | hoffman-eq7
    select: tuple[str, ...] = ()  # streams whose fused logits select the model (empty = all)
    direction: str | None = None  # fixed connection direction (inverted study); None = the config's
    hall_rgb: tuple[str, str] | None = None  # where the hallucination stream starts with distill.hall_init=rgb
    hall_stream: str = "hall"  # the stream hall_rgb places: the hallucination stream or a control's stand-in for it
    budget_of: tuple[str, ...] = ()  # a control: trains as many epochs as these steps together (unless set)
    budget_stream: tuple[str, str] | None = None  # a control: as many epochs as (step, stream) had in all (unless set)
    seed_offset: int = 0  # a control's second network: its initialisation and clip order from the run's seed + this


PRIVILEGED = "privileged"  # the role of the stream that sees the privileged modality, and its input slot


def stream_inputs(spec: StepSpec, privileged: str = "depth") -> dict[str, str]:
    """The modality each stream of ``spec`` is fed: specs name the privileged stream and its input by their role
    (``privileged``), which ``model.privileged`` fills (depth, the paper's, or another modality)."""
    return {k: (privileged if v == PRIVILEGED else v) for k, v in spec.inputs.items()}


def connections_for(spec: StepSpec, direction: str) -> list[tuple[str, str]]:
    """Concrete (source, target) pairs of a step for the configured connection direction.

    ``rgb_to_depth`` (supplement Sec. 1, inverted): step 2 sends RGB into depth; step 3 runs that depth teacher
    as it was trained, with the frozen step-2 RGB stream still sending RGB into it, and distils it into the
    hallucination stream through depth→hall; step 4 sends RGB into the hallucination stream, which stands where
    depth stood in step 2."""
    direction = spec.direction or direction
    if not spec.connection or direction == "none":
        return []
    s = set(spec.streams)
    if s == {"rgb", "privileged", "hall"} and direction == "rgb_to_depth":
        return [("rgb", "privileged"), ("privileged", "hall")]
    if s == {"rgb", "privileged"}:
        return [("privileged", "rgb")] if direction == "depth_to_rgb" else [("rgb", "privileged")]
    if s == {"privileged", "hall"}:
        return [("privileged", "hall")]
    if s == {"rgb", "hall"}:
        return [("hall", "rgb")] if direction == "depth_to_rgb" else [("rgb", "hall")]
    return []


def init_for(spec: StepSpec, hall_init: str = "depth") -> dict[str, tuple[str, str] | None]:
    """Where each stream of ``spec`` starts. ``hall_init="rgb"`` starts the hallucination stream from the RGB
    stream beside its teacher instead of the depth stream (the paper and the released code): an RGB network that
    learns to imitate depth, rather than a depth network that must first learn to read RGB."""
    if hall_init == "rgb" and spec.hall_rgb is not None:
        return spec.init | {spec.hall_stream: spec.hall_rgb}
    return dict(spec.init)


def source_steps(spec: StepSpec) -> list[str]:
    """Every earlier step ``spec`` may start from under any ``distill.hall_init``, in the order of its streams:
    what training order and ``--retrain-from`` follow, so neither depends on the config."""
    return list(dict.fromkeys(src[0] for src in (*spec.init.values(), spec.hall_rgb) if src is not None))


def stream_epochs(step: str, stream: str, epochs: Callable[[str], int], hall_init: str = "depth") -> int:
    """Every epoch a stream's weights have trained for by the end of ``step``: its own and those of the steps it
    started from, back to its initialisation (``epochs``: a step's epochs under the run's config)."""
    src = init_for(STEPS[step], hall_init)[stream]
    return epochs(step) + (0 if src is None else stream_epochs(src[0], src[1], epochs, hall_init))


def _second_rgb(name: str, title: str, **start) -> StepSpec:
    """An ensemble control's second RGB network: the run's seed + 1, as many epochs as step 3's hallucination
    stream has had in all, less those of its own start (random init unless ``start`` says otherwise)."""
    return StepSpec(
        name, title, ("rgb",), {"rgb": "rgb"}, {"rgb": None}, budget_stream=("step3", "hall"), seed_offset=1, **start
    )


def _ensemble(name: str, title: str, second: str) -> StepSpec:
    """An ensemble control: two RGB networks fused and fine-tuned exactly as step 4, with step 4's epochs."""
    return StepSpec(
        name,
        title,
        ("rgb", "hall"),
        {"rgb": "rgb", "hall": "rgb"},
        {"rgb": ("ens_rgb", "rgb"), "hall": (second, "rgb")},
        True,
        budget_of=("step4",),
    )


def _step3(name, title, loss, connection, teacher="step2", direction=None):
    return StepSpec(
        name,
        title,
        ("privileged", "hall"),
        {"privileged": "privileged", "hall": "rgb"},
        {"privileged": (teacher, "privileged"), "hall": (teacher, "privileged")},
        connection,
        ("privileged",),
        loss,
        ("hall",),
        direction,
        hall_rgb=(teacher, "rgb"),
    )


def _hoffman(loss):
    return StepSpec(
        f"hoffman_{loss}",
        f"Hoffman et al. w/o connections, {loss}",
        ("rgb", "privileged", "hall"),
        {"rgb": "rgb", "privileged": "privileged", "hall": "rgb"},
        {
            "rgb": ("step1_rgb", "rgb"),
            "privileged": ("step1_depth", "privileged"),
            "hall": ("step1_depth", "privileged"),
        },
        False,
        (),
        f"hoffman-{loss}",
        ("rgb", "hall"),
        hall_rgb=("step1_rgb", "rgb"),
    )


_STEP4 = StepSpec(
    "step4",
    "step 4",
    ("rgb", "hall"),
    {"rgb": "rgb", "hall": "rgb"},
    {"rgb": ("step2", "rgb"), "hall": ("step3", "hall")},
    True,
)

STEPS: dict[str, StepSpec] = {
    s.name: s
    for s in (
        StepSpec("step1_rgb", "step 1, RGB stream", ("rgb",), {"rgb": "rgb"}, {"rgb": None}),
        StepSpec(
            "step1_depth", "step 1, depth stream", ("privileged",), {"privileged": "privileged"}, {"privileged": None}
        ),
        StepSpec(
            "step2",
            "step 2",
            ("rgb", "privileged"),
            {"rgb": "rgb", "privileged": "privileged"},
            {"rgb": ("step1_rgb", "rgb"), "privileged": ("step1_depth", "privileged")},
            True,
        ),
        _step3("step3", "step 3 w/ connections", "eq7", True),
        _STEP4,
        # Ablations (Table 2).
        StepSpec(
            "step2_noconn",
            "step 2 w/o connections",
            ("rgb", "privileged"),
            {"rgb": "rgb", "privileged": "privileged"},
            {"rgb": ("step1_rgb", "rgb"), "privileged": ("step1_depth", "privileged")},
            False,
        ),
        _step3("step3_noconn_eq3", "step 3 w/o connections", "eq3", False),
        _step3("step3_eq3", "step 3 w/ connections", "eq3", True),
        _step3("step3_eq5", "step 3 w/ connections", "eq5", True),
        _step3("step3_noconn", "step 3 w/o connections", "eq7", False),
        # Step 4 as the released code runs it: its s4 script fails with --interaction (the connection scope is
        # hard-coded to the depth stream), so the authors' step 4 fuses the two RGB-fed streams without the
        # hall→RGB connections the paper describes. Step 4 itself keeps the paper's.
        replace(
            _STEP4, name="step4_noconn", title="step 4 w/o connections (as the released code runs it)", connection=False
        ),
        # Supplement Table 1: the same pipeline with RGB→depth connections (rows 6a-8a, 13a, 15a).
        StepSpec(
            "step2_inv",
            "step 2, inverted RGB→depth",
            ("rgb", "privileged"),
            {"rgb": "rgb", "privileged": "privileged"},
            {"rgb": ("step1_rgb", "rgb"), "privileged": ("step1_depth", "privileged")},
            True,
            direction="rgb_to_depth",
        ),
        # The teacher as it was trained: its RGB injection comes from the frozen step-2 RGB stream.
        StepSpec(
            "step3_inv",
            "step 3, inverted RGB→depth teacher",
            ("rgb", "privileged", "hall"),
            {"rgb": "rgb", "privileged": "privileged", "hall": "rgb"},
            {
                "rgb": ("step2_inv", "rgb"),
                "privileged": ("step2_inv", "privileged"),
                "hall": ("step2_inv", "privileged"),
            },
            True,
            ("rgb", "privileged"),
            "eq7",
            ("hall",),
            "rgb_to_depth",
            hall_rgb=("step2_inv", "rgb"),
        ),
        # The earlier form, kept to compare: the same teacher run without the injection it was trained with.
        _step3(
            "step3_inv_bare",
            "step 3, inverted teacher without its RGB injection",
            "eq7",
            True,
            "step2_inv",
            "rgb_to_depth",
        ),
        StepSpec(
            "step4_inv",
            "step 4, inverted RGB→hall",
            ("rgb", "hall"),
            {"rgb": "rgb", "hall": "rgb"},
            {"rgb": ("step2_inv", "rgb"), "hall": ("step3_inv", "hall")},
            True,
            direction="rgb_to_depth",
        ),
        _hoffman("eq3"),
        _hoffman("eq5"),
        _hoffman("eq7"),
        # Budget-matched control (row C1): the step-1 RGB stream trained on, alone, for the epochs step 4's RGB
        # stream trains after step 1 (in steps 2 and 4), so that it has had as many epochs in all.
        StepSpec(
            "rgb_budget",
            "RGB stream alone, trained as long as step 4's RGB stream (control)",
            ("rgb",),
            {"rgb": "rgb"},
            {"rgb": ("step1_rgb", "rgb")},
            budget_of=("step2", "step4"),
        ),
        # RGB-ensemble control (row C2): two RGB networks and no privileged modality, fused and fine-tuned exactly as
        # step 4 fuses its RGB and hallucination streams. Each stream first trains alone as long as the step-4
        # stream it stands for has trained before step 4: the step-1 RGB stream on for step 2's epochs, and a second
        # RGB stream, with the run's seed + 1, for as many epochs as step 3's hallucination stream has had in all.
        # The second stream starts where the hallucination stream's chain starts: from random init, or with
        # distill.hall_init=rgb from the step-1 RGB stream (step 4's two streams then share that ancestor too).
        StepSpec(
            "ens_rgb",
            "RGB stream trained on alone as long as step 4's RGB stream before step 4 (ensemble control)",
            ("rgb",),
            {"rgb": "rgb"},
            {"rgb": ("step1_rgb", "rgb")},
            budget_of=("step2",),
        ),
        _second_rgb(
            "ens_rgb2",
            "a second RGB stream, another seed, trained as long as step 4's hallucination stream before step 4 "
            "(ensemble control)",
            hall_rgb=("step1_rgb", "rgb"),
            hall_stream="rgb",
        ),
        _ensemble("rgb_ensemble", "two RGB streams fused and fine-tuned as step 4 (ensemble control)", "ens_rgb2"),
        # The same ensemble with an independent second network (row C2i): from random init, seed + 1, whatever
        # distill.hall_init, for every epoch step 3's hallucination stream has had. With hall_init=rgb it is the
        # stronger competitor (two networks that never shared weights); with hall_init=depth it equals row C2.
        _second_rgb(
            "ens_rgb2_indep",
            "an independent second RGB stream, another seed, trained as long as step 4's hallucination stream "
            "before step 4 (ensemble control)",
        ),
        _ensemble(
            "rgb_ensemble_indep",
            "two independent RGB streams fused and fine-tuned as step 4 (ensemble control)",
            "ens_rgb2_indep",
        ),
    )
}

MAIN_STEPS = ("step1_rgb", "step1_depth", "step2", "step3", "step4")
DEPLOYABLE = ("step4", "step4_noconn", "step4_inv")  # the RGB-only models a run can export


def dependants(step: str) -> list[str]:
    """``step`` and every step initialised (directly or not) from it."""
    out = [step]
    changed = True
    while changed:
        changed = False
        for name, spec in STEPS.items():
            if name not in out and any(src in out for src in source_steps(spec)):
                out.append(name)
                changed = True
    return out


def resolve_order(wanted: list[str]) -> list[str]:
    """Steps in dependency order, adding the steps the wanted ones are initialised from."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name not in STEPS:
            from modistill.errors import UserError

            raise UserError(f"unknown step {name!r}; known: {sorted(STEPS)}")
        for src in source_steps(STEPS[name]):
            visit(src)
        order.append(name)

    for n in wanted:
        visit(n)
    return order
