"""The synthetic benchmark's settings, apart from the generator so that the command line reads its defaults without
importing NumPy or OpenCV."""

from __future__ import annotations

from dataclasses import dataclass

from modistill.errors import UserError

LAYOUTS = ("ntu", "nwucla", "uwa3d")
LAYOUT_CLASSES = {"nwucla": 10, "uwa3d": 30}


@dataclass
class SynthConfig:
    """Size and appearance of a synthetic dataset. Sizes are (width, height)."""

    classes: int = 10
    subjects: int = 16  # 9 training performers in NTU 60's cross-subject split (the demo uses 26: demo.FULL)
    cameras: int = 3
    replications: int = 1
    setups: int = 1
    seed: int = 0
    frames: int = 32
    rgb_size: tuple[int, int] = (384, 216)
    depth_size: tuple[int, int] = (256, 212)
    empty_frame_prob: float = 0.05
    clutter: float = 0.5  # 0 = plain grey room, no distractors; 1 = full-contrast room, up to 3 distractors
    # The colour camera's own difficulty, which depth does not share: sensor noise (sd in grey levels) and motion
    # blur (the longest smear in pixels of the RGB frame; each frame draws its length, each video its direction).
    rgb_noise: float = 5.0
    motion_blur: float = 0.0
    depth_mask: str = "roi"  # roi = NTU's masked depth (a box around the skeleton keeps floor and wall); body
    roi_margin: float = 0.15  # the ROI box grows by this fraction of the skeleton's height on each side
    layout: str = "ntu"  # ntu | nwucla | uwa3d
    placement: str = "ntu"  # ntu: Kinect-like cameras; new: farther, higher, off-centre, wider lens (render.make_rig)

    def validate(self) -> None:
        for key in ("classes", "subjects", "cameras", "replications", "setups", "frames"):
            if getattr(self, key) < 1:
                raise UserError(f"synth: --{key} must be at least 1, got {getattr(self, key)}")
        if self.classes > 999 or self.subjects > 999 or self.setups > 999 or self.cameras > 999:
            raise UserError("synth: NTU names allow at most 999 of each field")
        if self.layout not in LAYOUTS:
            raise UserError(f"synth: --layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.layout != "ntu" and self.classes > LAYOUT_CLASSES[self.layout]:
            raise UserError(f"synth: the {self.layout} layout has at most {LAYOUT_CLASSES[self.layout]} classes")
        if self.placement not in ("ntu", "new"):
            raise UserError(f"synth: --placement must be ntu or new, got {self.placement!r}")
        if not 0.0 <= self.clutter <= 1.0:
            raise UserError(f"synth: --clutter must be in [0, 1], got {self.clutter}")
        if not 0.0 <= self.rgb_noise <= 100.0:
            raise UserError(f"synth: --rgb-noise must be in [0, 100] grey levels, got {self.rgb_noise}")
        if not 0.0 <= self.motion_blur <= 0.1 * self.rgb_size[0]:
            raise UserError(
                f"synth: --motion-blur must be in [0, {0.1 * self.rgb_size[0]:g}] pixels (a tenth of the RGB width), "
                f"got {self.motion_blur}"
            )
        if self.depth_mask not in ("roi", "body"):
            raise UserError(f"synth: --depth-mask must be roi or body, got {self.depth_mask!r}")
        if not 0.0 <= self.roi_margin <= 1.0:
            raise UserError(f"synth: --roi-margin must be in [0, 1], got {self.roi_margin}")
        if self.frames < 8:
            raise UserError(f"synth: --frames must be at least 8, got {self.frames}")
        w, h = self.rgb_size
        if w % 2 or h % 2 or w < 64 or w > 1920 or h > 1080:
            raise UserError(f"synth: RGB size must be even, at least 64 wide and at most 1920x1080, got {w}x{h}")
        dw, dh = self.depth_size
        if dw < 32 or dw > 512 or dh > 424:
            raise UserError(f"synth: depth size must be between 32 wide and 512x424, got {dw}x{dh}")

    def names(self) -> list[str]:
        from modistill.data import ntu

        return [
            ntu.format_name(s, c, p, r, a)
            for s in range(1, self.setups + 1)
            for c in range(1, self.cameras + 1)
            for p in range(1, self.subjects + 1)
            for r in range(1, self.replications + 1)
            for a in range(1, self.classes + 1)
        ]
