"""What ``prepare`` is asked to do, apart from the preparation so that the command line reads its defaults without
importing NumPy or OpenCV."""

from __future__ import annotations

from dataclasses import dataclass

from modistill.errors import UserError


@dataclass
class PrepareOptions:
    size: int = 224
    frames: int = 5
    depth_encoding: str = "jet"
    benchmark: str = "ntu60"
    workers: int = 1
    modalities: tuple[str, ...] = ("rgb", "depth")
    pose_sigma: float | None = None  # of the clip's side; None: data.pose.POSE_SIGMA
    crop: str = "fov"  # fov: the paper's RGB∩depth view; person: data.person_box
    person_padding: float = 0.25  # data.person_box.PERSON_PADDING

    def settings(self, reader: str) -> dict:
        """What the cache records of these options (``cache.json``): the modalities only when they are not the
        default pair, so that caches made before modalities were named resume unchanged, and each modality's own
        settings under its name. ``reader``: ``ntu`` or ``pairs``."""
        from modistill.data import modalities

        out = {
            "size": self.size,
            "frames": self.frames,
            "depth_encoding": self.depth_encoding,
            "benchmark": self.benchmark,
        }
        if tuple(self.modalities) != ("rgb", "depth"):
            out["modalities"] = list(self.modalities)
        if self.crop != "fov":
            out["crop"] = {"policy": self.crop, "padding": self.person_padding}
        for name in self.modalities:
            own = modalities.get(name).settings(self, reader)
            if own:
                out[name] = own
        return out

    def validate(self) -> None:
        from modistill.data.encode import DEPTH_ENCODINGS
        from modistill.data.splits import BENCHMARKS

        if not 16 <= self.size <= 1024:
            raise UserError(f"prepare: --size must be between 16 and 1024 pixels, got {self.size}")
        if self.workers < 1:
            raise UserError(f"prepare: --workers must be at least 1, got {self.workers}")
        if not 1 <= self.frames <= 256:
            raise UserError(f"prepare: --frames must be between 1 and 256, got {self.frames}")
        if self.depth_encoding not in DEPTH_ENCODINGS:
            raise UserError(f"prepare: --depth-encoding must be one of {DEPTH_ENCODINGS}")
        from modistill.data.modalities import privileged_names

        known = privileged_names()
        unknown = [m for m in self.modalities if m not in ("rgb", *known)]
        if unknown or "rgb" not in self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise UserError(
                f"prepare: --modalities must list rgb and any of {', '.join(known)} once each, "
                f"got {','.join(self.modalities)}"
            )
        if self.pose_sigma is not None and not 0 < self.pose_sigma <= 0.25:
            raise UserError(
                f"prepare: --pose-sigma must be a fraction of the clip side in (0, 0.25], got {self.pose_sigma}"
            )
        from modistill.data.person_box import CROP_POLICIES

        if self.crop not in CROP_POLICIES:
            raise UserError(f"prepare: --crop must be one of {', '.join(CROP_POLICIES)}, got {self.crop}")
        if not 0 <= self.person_padding <= 2:
            raise UserError(f"prepare: --person-padding must be between 0 and 2, got {self.person_padding}")
        if self.benchmark not in BENCHMARKS:
            raise UserError(f"prepare: --benchmark must be one of {sorted(BENCHMARKS)}")
