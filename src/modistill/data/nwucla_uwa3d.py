"""NW-UCLA Multiview Action3D and UWA3D Multiview Activity II: scan a dataset tree into the pairs manifest
(``data/pairs.py``) with the standard cross-view protocols, so both run through ``prepare pairs`` and training.

Layouts read:

- NW-UCLA: ``view_<v>/a<AA>_s<SS>_e<EE>/frame_<t>_tc_<tc>_rgb.jpg`` and ``..._depth.png`` (16-bit mm). The 10
  actions are a01-a06, a08, a09, a11, a12, labelled 0-9 in that order (the authors' map). Protocol: train views 1
  and 2, test view 3 (paper); any other split with ``train_views``/``test_views``.
- UWA3D II: a folder per video named ``a<AA>_s<SS>_v<VV>_e<EE>`` holding its RGB ``*.jpg`` frames, and a folder
  of the same name (anywhere under the root, e.g. ``depth/`` or ``WholeFrames/``) holding its ``*.png`` depth
  frames. 30 actions. Protocols: the authors' train 1, 2, 3 / test 4 (default), or the standard two-view ones
  (e.g. train 1 2 / test 3 4).

Kinect v1 RGB and depth of these datasets are used as registered images (the released code does the same:
full-frame resize, temporal intersection only); their skeletons are not needed.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from modistill.errors import UserError
from modistill.utils.io import atomic_write_text

NWUCLA_ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
# Class names carry the dataset's own action code first: it is authoritative, and sorting the names keeps the
# authors' class order (``prepare pairs`` indexes named labels in sorted order).
NWUCLA_NAMES = {
    1: "pick up with one hand",
    2: "pick up with two hands",
    3: "drop trash",
    4: "walk around",
    5: "sit down",
    6: "stand up",
    8: "donning",
    9: "doffing",
    11: "throw",
    12: "carry",
}
# Rahmani et al., HOPC (TPAMI 2016), the dataset's paper.
UWA3D_NAMES = (
    "one hand waving",
    "one hand punching",
    "two hand waving",
    "two hand punching",
    "sitting down",
    "standing up",
    "vibrating",
    "falling down",
    "holding chest",
    "holding head",
    "holding back",
    "walking",
    "irregular walking",
    "lying down",
    "turning around",
    "drinking",
    "phone answering",
    "bending",
    "jumping jack",
    "running",
    "picking up",
    "putting down",
    "kicking",
    "jumping",
    "dancing",
    "moping floor",
    "sneezing",
    "sitting down (chair)",
    "squatting",
    "coughing",
)
NWUCLA_RE = re.compile(r"a(\d\d)_s(\d\d)_e(\d\d)")
UWA3D_RE = re.compile(r"a(\d\d)_s(\d\d)_v(\d\d)_e(\d\d)")
DEFAULT_VIEWS = {"nwucla": ((1, 2), (3,)), "uwa3d": ((1, 2, 3), (4,))}


def scan_nwucla(root: Path) -> list[dict]:
    out = []
    for d in sorted(root.glob("view_*/a*_s*_e*")):
        m = NWUCLA_RE.fullmatch(d.name)
        view = d.parent.name.removeprefix("view_")
        if not (d.is_dir() and m and view.isdigit()) or int(m.group(1)) not in NWUCLA_ACTIONS:
            continue
        action = int(m.group(1))
        out.append(
            {
                "id": f"v{int(view)}_{d.name}",
                "label": f"a{action:02d} {NWUCLA_NAMES[action]}",
                "rgb": f"{d}/*_rgb.jpg",
                "depth": f"{d}/*_depth.png",
                "subject": int(m.group(2)),
                "view": int(view),
            }
        )
    return out


def scan_uwa3d(root: Path) -> list[dict]:
    rgb, depth = {}, {}
    for d in sorted(p for p in root.rglob("a*_s*_v*_e*") if p.is_dir() and UWA3D_RE.fullmatch(p.name)):
        if any(d.glob("*.jpg")):
            rgb[d.name] = d
        if any(d.glob("*.png")):
            depth[d.name] = d
    out = []
    for vid in sorted(set(rgb) & set(depth)):
        m = UWA3D_RE.fullmatch(vid)
        if m is None:
            continue
        a, s, v, _ = (int(g) for g in m.groups())
        if not 1 <= a <= len(UWA3D_NAMES):
            continue
        out.append(
            {
                "id": vid,
                "label": f"a{a:02d} {UWA3D_NAMES[a - 1]}",
                "rgb": f"{rgb[vid]}/*.jpg",
                "depth": f"{depth[vid]}/*.png",
                "subject": s,
                "view": v,
            }
        )
    return out


def write_multiview_pairs(
    dataset: str,
    root: str | Path,
    out_csv: str | Path,
    train_views: tuple[int, ...] | None = None,
    test_views: tuple[int, ...] | None = None,
) -> dict:
    """Write the pairs CSV of a NW-UCLA or UWA3D II tree for a cross-view protocol; returns split counts. Paths
    are written relative to the CSV's folder, which is how ``prepare pairs`` reads them, from any folder."""
    root, out_csv = Path(root).resolve(), Path(out_csv)
    base = out_csv.resolve().parent
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found")
    scan = {"nwucla": scan_nwucla, "uwa3d": scan_uwa3d}.get(dataset)
    if scan is None:
        raise UserError(f"unknown dataset {dataset!r}; choose nwucla or uwa3d")
    train_views = tuple(train_views or DEFAULT_VIEWS[dataset][0])
    test_views = tuple(test_views or DEFAULT_VIEWS[dataset][1])
    if set(train_views) & set(test_views):
        raise UserError(f"views {sorted(set(train_views) & set(test_views))} are in both train and test")
    videos = scan(root)
    if not videos:
        raise UserError(f"{root}: no {dataset} videos found (see `modistill pairs --help` for the layout)")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "label", "rgb", "depth", "subject", "view", "split"])
    counts = {"train": 0, "test": 0, "unused": 0}
    for v in videos:
        split = "train" if v["view"] in train_views else "test" if v["view"] in test_views else None
        counts[split or "unused"] += 1
        if split:
            w.writerow(
                [
                    v["id"],
                    v["label"],
                    os.path.relpath(v["rgb"], base),
                    os.path.relpath(v["depth"], base),
                    v["subject"],
                    v["view"],
                    split,
                ]
            )
    atomic_write_text(Path(out_csv), buf.getvalue())
    return counts
