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
        if self.benchmark not in BENCHMARKS:
            raise UserError(f"prepare: --benchmark must be one of {sorted(BENCHMARKS)}")
