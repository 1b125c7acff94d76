"""Official NTU RGB+D protocols and the ECCV-2018 paper's validation splits.

ID lists are those of the NTU papers (identical in st-gcn, CTR-GCN and mmaction2). The paper's validation
split (supplement, sec. 2): cross-subject holds out performer 1; cross-view draws 31 videos per action from
the per-action sorted name list with ``numpy.random.seed(0)`` reset for every action.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from modistill.data.ntu import parse_name
from modistill.errors import DataError, UserError

NTU60_XSUB_TRAIN = frozenset((1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN | frozenset(
    (
        45,
        46,
        47,
        49,
        50,
        52,
        53,
        54,
        55,
        56,
        57,
        58,
        59,
        70,
        74,
        78,
        80,
        81,
        82,
        83,
        84,
        85,
        86,
        89,
        91,
        92,
        93,
        94,
        95,
        97,
        98,
        100,
        103,
    )
)
NTU60_XVIEW_TRAIN_CAMERAS = frozenset((2, 3))
PAPER_XVIEW_VAL_PER_CLASS = 31  # int(1882 / 60), supplement sec. 2
PAPER_XSUB_VAL_PERFORMER = 1

BENCHMARKS = {"ntu60": 60, "ntu120": 120}
PROTOCOLS = {"ntu60": ("cross-subject", "cross-view"), "ntu120": ("cross-subject", "cross-setup")}


def read_name_list(path: str | Path) -> set[str]:
    """Read a list of sample names, one per line (blank lines and header lines that are not names ignored).

    Accepts the official ``NTU_RGBD*_samples_with_missing_skeletons.txt`` files, whose first lines are text.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataError(path, f"cannot read name list ({e.strerror})") from None
    names = set()
    for line in lines:
        token = line.strip()
        if not token:
            continue
        try:
            parse_name(token)
        except ValueError:
            continue
        names.add(token)
    if not names:
        raise DataError(path, "no NTU sample names found in the list")
    return names


def _is_train(sample, benchmark: str, protocol: str) -> bool:
    if protocol == "cross-subject":
        ids = NTU60_XSUB_TRAIN if benchmark == "ntu60" else NTU120_XSUB_TRAIN
        return sample.performer in ids
    if protocol == "cross-view":
        return sample.camera in NTU60_XVIEW_TRAIN_CAMERAS
    return sample.setup % 2 == 0  # cross-setup: even setups train


def paper_validation(train: list[str], protocol: str, per_class: int = PAPER_XVIEW_VAL_PER_CLASS) -> list[str]:
    """The paper's validation names drawn from a training list (supplement sec. 2)."""
    if protocol == "cross-subject":
        return sorted(n for n in train if parse_name(n).performer == PAPER_XSUB_VAL_PERFORMER)
    by_action: dict[int, list[str]] = defaultdict(list)
    for n in train:
        by_action[parse_name(n).action].append(n)
    val: list[str] = []
    for action in sorted(by_action):
        names = sorted(by_action[action])
        k = min(per_class, len(names))
        np.random.seed(0)
        picked = np.random.choice(len(names), k, replace=False)
        val.extend(names[i] for i in sorted(picked))
    return sorted(val)


def performer_validation(train: list[str], performers: int) -> list[str]:
    """Every training video of the ``performers`` lowest-numbered training performers: whole performances are held
    out (all cameras and replications of a performer), so no view of a validation performance is trained on. The
    paper's cross-subject split is this with one performer; more give a split large enough to select epochs on
    small data."""
    ids = sorted({parse_name(n).performer for n in train})
    if performers >= len(ids):
        raise UserError(f"data.val_performers={performers} would hold out all {len(ids)} training performers; lower it")
    held = set(ids[:performers])
    return sorted(n for n in train if parse_name(n).performer in held)


def split_ntu(
    names: Iterable[str],
    benchmark: str = "ntu60",
    protocol: str = "cross-subject",
    validation: str | None = "paper",
    exclude: Iterable[str] | None = None,
    val_per_class: int = PAPER_XVIEW_VAL_PER_CLASS,
    val_performers: int = 1,
) -> dict[str, list[str]]:
    """Split sample names into ``train``/``val``/``test`` by an official protocol.

    ``exclude``: names to drop first (e.g. :func:`read_name_list` of the official missing-skeleton list).
    ``validation="paper"`` moves the paper's validation videos out of ``train``, ``"performers"`` those of the
    ``val_performers`` first training performers (:func:`performer_validation`); ``None`` leaves ``val`` empty.
    Names of actions beyond the benchmark's class count (A061+ for ntu60) are dropped.
    """
    if benchmark not in BENCHMARKS:
        raise UserError(f"unknown benchmark {benchmark!r}; choose one of {sorted(BENCHMARKS)}")
    if protocol not in PROTOCOLS[benchmark]:
        raise UserError(
            f"protocol {protocol!r} is not defined for {benchmark}; choose one of {list(PROTOCOLS[benchmark])}"
        )
    if validation not in ("paper", "performers", None):
        raise UserError(f"unknown validation split {validation!r}; choose 'paper', 'performers' or none")
    excluded = set(exclude or ())
    n_classes = BENCHMARKS[benchmark]
    train: list[str] = []
    test: list[str] = []
    for n in sorted(set(names)):
        if n in excluded:
            continue
        s = parse_name(n)
        if s.action > n_classes:
            continue
        (train if _is_train(s, benchmark, protocol) else test).append(n)
    val: list[str] = []
    if validation is not None:
        val = (
            paper_validation(train, protocol, val_per_class)
            if validation == "paper"
            else performer_validation(train, val_performers)
        )
        vset = set(val)
        train = [n for n in train if n not in vset]
    return {"train": train, "val": val, "test": test}
