"""Data sub-commands: synth, prepare, pairs, show-alignment."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from modistill.errors import UserError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like WIDTHxHEIGHT, got {text!r}") from None
    return w, h


def cmd_synth(a: argparse.Namespace) -> None:
    from modistill.synthetic import SynthConfig, generate

    cfg = SynthConfig(
        classes=a.classes,
        subjects=a.subjects,
        cameras=a.cameras,
        replications=a.replications,
        setups=a.setups,
        seed=a.seed,
        frames=a.frames,
        rgb_size=a.rgb_size,
        depth_size=a.depth_size,
        clutter=a.clutter,
        rgb_noise=a.rgb_noise,
        motion_blur=a.motion_blur,
        depth_mask=a.depth_mask,
        roi_margin=a.roi_margin,
        layout=a.layout,
        placement=a.placement,
    )
    names = generate(cfg, a.out_dir, workers=a.workers, show_progress=not a.quiet)
    print(f"wrote {len(names)} samples in the {a.layout} layout under {a.out_dir}")


STRICT_EXIT = 3  # prepare --strict: the cache is usable, but some videos failed or were left out


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def cmd_prepare(a: argparse.Namespace) -> int | None:
    from modistill.data.prepare import PrepareOptions, prepare

    opts = PrepareOptions(
        size=a.size,
        frames=a.frames,
        depth_encoding=a.depth_encoding,
        benchmark=a.benchmark,
        workers=a.workers,
        modalities=tuple(a.modalities),
        pose_sigma=a.pose_sigma,
        crop=a.crop,
        person_padding=a.person_padding,
    )
    s = prepare(a.dataset, a.root, a.out, opts, show_progress=not a.quiet)
    print(
        f"prepared {s['processed']} videos in {s['seconds']:.1f}s ({s['videos_per_s']:.2f} videos/s); "
        f"cache {a.out}: {s['counts']}"
    )
    if s.get("alignment"):
        print(f"  alignment: {s['alignment']}")
    for what in ("failed", "unused"):
        for name, reason in s[what][:10]:
            print(f"  {what} {name}: {reason}")
        if len(s[what]) > 10:
            print(f"  ... {len(s[what]) - 10} more {what} (reasons in {a.out / 'manifest.json'})")
    if not s["counts"].get("ok"):
        raise UserError(f"no usable video in {a.out} ({s['counts']}); nothing to train on")
    if a.strict and (s["failed"] or s["unused"]):
        print(f"prepare --strict: {len(s['failed'])} failed, {len(s['unused'])} unused", file=sys.stderr)
        return STRICT_EXIT
    return None


def cmd_pairs(a: argparse.Namespace) -> None:
    from modistill.data.nwucla_uwa3d import write_multiview_pairs

    counts = write_multiview_pairs(a.dataset, a.root, a.out, a.train_views, a.test_views)
    other = f", {counts['unused']} in other views left out" if counts["unused"] else ""
    print(
        f"wrote {a.out}: {counts['train']} train / {counts['test']} test videos{other}; "
        f"next: modistill prepare pairs --root {a.out} --out CACHE"
    )


def cmd_show_alignment(a: argparse.Namespace) -> None:
    from modistill.evaluation.alignment_plot import show_alignment

    out = show_alignment(a.root, a.name, a.out, size=a.size)
    print(f"wrote {out}")


def _add_synth(sub: argparse._SubParsersAction) -> None:
    from modistill.synthetic.config import SynthConfig

    d = SynthConfig()

    s = sub.add_parser("synth", help="write the synthetic RGB-D action benchmark in the NTU RGB+D layout")
    s.add_argument("out_dir", type=Path, help="folder to write the dataset into (created; finished samples are kept)")
    s.add_argument("--classes", type=int, default=d.classes, help="actions")
    s.add_argument("--subjects", type=int, default=d.subjects, help="performers (the cross-subject protocol)")
    s.add_argument("--cameras", type=int, default=d.cameras, help="viewpoints (the cross-view protocol)")
    s.add_argument("--replications", type=int, default=d.replications, help="repetitions per camera")
    s.add_argument("--setups", type=int, default=d.setups, help="camera set-ups")
    s.add_argument("--frames", type=int, default=d.frames, help="mean frames per video (varies ±25%%)")
    s.add_argument("--rgb-size", type=_size, default=d.rgb_size, help="colour video WxH (16:9, up to 1920x1080)")
    s.add_argument("--depth-size", type=_size, default=d.depth_size, help="depth PNG WxH (up to 512x424)")
    for flag, field, words in (
        ("--clutter", "clutter", "RGB scene difficulty in [0, 1]: room contrast and number of moving distractors"),
        ("--rgb-noise", "rgb_noise", "the colour camera's sensor noise, sd in grey levels (depth keeps its own)"),
        (
            "--motion-blur",
            "motion_blur",
            "the colour camera's motion blur: the longest smear in RGB pixels (each frame draws its length, each "
            "video its direction); 0: none",
        ),
        (
            "--roi-margin",
            "roi_margin",
            "growth of the depth ROI box on each side, as a fraction of the skeleton's height",
        ),
    ):
        s.add_argument(flag, type=float, default=getattr(d, field), help=words)
    s.add_argument(
        "--depth-mask",
        choices=["roi", "body"],
        default=d.depth_mask,
        help="roi: NTU's masked depth, a box around the skeleton keeps floor and wall (default); "
        "body: the person's silhouette only",
    )
    s.add_argument(
        "--layout",
        choices=["ntu", "nwucla", "uwa3d"],
        default="ntu",
        help="on-disk layout: NTU RGB+D (default), NW-UCLA or UWA3D II style frame folders",
    )
    s.add_argument(
        "--placement",
        choices=["ntu", "new"],
        default=d.placement,
        help="ntu: Kinect-like camera placements (default); new: farther, higher, off-centre and with a wider "
        "lens, never seen by a model trained on ntu placements (the new-camera benchmark)",
    )
    s.add_argument("--seed", type=int, default=d.seed, help="random seed of the generator")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel writer processes")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_synth)


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    from modistill.data.modalities import privileged_names
    from modistill.data.options import PrepareOptions

    po = PrepareOptions()

    p = sub.add_parser("prepare", help="align, crop and cache RGB+depth frames of a dataset")
    p.add_argument(
        "dataset",
        choices=["ntu", "pairs"],
        help="ntu: NTU RGB+D 60/120 tree; pairs: a CSV manifest of your own RGB + depth/IR/flow data",
    )
    p.add_argument("--root", type=Path, required=True, help="dataset root folder (ntu) or the CSV manifest (pairs)")
    p.add_argument("--out", type=Path, required=True, help="cache folder to create or resume")
    p.add_argument(
        "--benchmark",
        choices=["ntu60", "ntu120"],
        default=po.benchmark,
        help="the class list and the official splits the cache is made for",
    )
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel decoding processes")
    p.add_argument("--size", type=int, default=po.size, help="network input size (square)")
    p.add_argument("--frames", type=int, default=po.frames, help="frames stored per video, evenly spaced")
    p.add_argument(
        "--depth-encoding",
        choices=["jet", "gray"],
        default=po.depth_encoding,
        help="depth as 3 channels: jet colour map (paper) or the grey value repeated",
    )
    p.add_argument(
        "--modalities",
        type=_names,
        default=",".join(po.modalities),
        help="modalities stored per clip, comma-separated: rgb and any of "
        f"{', '.join(privileged_names())} (pose: images drawn from the skeletons or a pairs CSV's keypoint files; "
        "a plugin's modality once installed, see docs). Training names the privileged one with model.privileged",
    )
    p.add_argument(
        "--pose-sigma",
        type=float,
        default=None,
        help="width of the pose images' Gaussians, as a fraction of the clip side (default 0.6/56, PoseC3D's)",
    )
    p.add_argument(
        "--crop",
        choices=["fov", "person"],
        default=po.crop,
        help="fov: the region RGB and depth both see (the paper's crop); person: one square box per video around "
        "every skeleton joint of every body over all frames, padded (see --person-padding), the same in depth "
        "through the video's RGB-depth fit",
    )
    p.add_argument(
        "--person-padding",
        type=float,
        default=po.person_padding,
        help="--crop person: the box's side grows by this fraction of itself (MMAction2 PoseCompact's 0.25)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {STRICT_EXIT} when some videos failed or were left unused (outside the class list, "
        f"unreadable names); without it such a cache exits 0. No usable video at all always exits 2",
    )
    p.set_defaults(func=cmd_prepare)


def _add_pairs(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("pairs", help="write the pairs CSV of a NW-UCLA or UWA3D II tree for a cross-view protocol")
    m.add_argument("dataset", choices=["nwucla", "uwa3d"], help="which dataset's layout the tree has")
    m.add_argument("root", type=Path, help="dataset root folder")
    m.add_argument("--out", type=Path, required=True, help="CSV to write")
    m.add_argument("--train-views", type=int, nargs="+", default=None, help="default: nwucla 1 2, uwa3d 1 2 3")
    m.add_argument("--test-views", type=int, nargs="+", default=None, help="default: nwucla 3, uwa3d 4")
    m.set_defaults(func=cmd_pairs)


def _add_show_alignment(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("show-alignment", help="write a PNG overlaying aligned depth on RGB for one video")
    s.add_argument("root", type=Path, help="NTU-layout dataset root")
    s.add_argument("name", help="sample name, e.g. S001C001P001R001A001")
    s.add_argument("--out", type=Path, default=None, help="PNG path (default: <name>_alignment.png)")
    s.add_argument("--size", type=int, default=224, help="side of the square crops shown, in pixels")
    s.set_defaults(func=cmd_show_alignment)


def register(sub: argparse._SubParsersAction) -> None:
    _add_synth(sub)
    _add_prepare(sub)
    _add_pairs(sub)
    _add_show_alignment(sub)
