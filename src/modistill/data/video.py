"""Video decoding with PyAV, for every dataset and for deployment: evenly spaced frames, frame counts, and the
decoder thread budget of parallel workers. Failures are one-line :class:`~modistill.errors.DataError` s in
FFmpeg's own words (no errno numbers), an audio-only file named as such."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from modistill.errors import DataError

_decode_threads = 0


def set_decode_threads(n: int) -> None:
    """Decoder threads per video in this process (0: FFmpeg's choice, one per core). Parallel prepare workers
    set ``cores // workers`` so that the workers do not oversubscribe the cores (measured in ``benchmarks/``)."""
    global _decode_threads
    _decode_threads = max(0, int(n))


def threads_per_worker(workers: int) -> int:
    return 0 if workers <= 1 else max(1, (os.cpu_count() or 1) // workers)


def _set_threads(stream) -> None:
    stream.thread_type = "AUTO"
    stream.thread_count = _decode_threads


@contextmanager
def open_video(path: str | Path) -> Iterator[tuple]:
    """The opened container and its first video stream, decoded with this process's thread budget. A missing or
    unreadable file, or one without a video stream, is a one-line ``DataError``."""
    import av

    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise DataError(path, "video not found") from None
    except av.error.FFmpegError as e:
        raise DataError(path, f"cannot read video ({av_reason(e)})") from None
    with container:
        stream = _video_stream(container, path)
        _set_threads(stream)
        yield container, stream


def read_rgb_frames(path: str | Path, indices: Iterable[int] | None = None) -> list[np.ndarray]:
    """Decode an RGB video with PyAV; returns RGB uint8 (H, W, 3) frames at the given 0-based indices (in their
    order, repeats allowed).

    Decoding is sequential (NTU files have a single keyframe), stops after the last wanted index, and only the
    wanted frames are converted to arrays. A wanted index past the end of the video raises ``DataError``.
    """
    import av

    order = None if indices is None else [int(i) for i in indices]
    wanted = None if order is None else sorted(set(order))
    want_set = None if wanted is None else set(wanted)
    last = None if wanted is None else (wanted[-1] if wanted else -1)
    frames: dict[int, np.ndarray] = {}
    try:
        with open_video(path) as (container, stream):
            for i, frame in enumerate(container.decode(stream)):
                if last is not None and i > last:
                    break
                if want_set is None or i in want_set:
                    frames[i] = frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, IndexError) as e:
        if not frames:
            raise DataError(path, f"cannot decode video ({av_reason(e)})") from None
    if wanted is None or order is None:
        if not frames:
            raise DataError(path, "video has no frames")
        return [frames[i] for i in sorted(frames)]
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise DataError(
            path, f"video has {len(frames) and max(frames) + 1} decodable frames, frame {missing[0]} requested"
        )
    return [frames[i] for i in order]


def count_rgb_frames(path: str | Path) -> int:
    """Number of decodable frames (decodes the stream: container frame counts are unreliable in AVI)."""
    import av

    n = 0
    try:
        with open_video(path) as (container, stream):
            for _ in container.decode(stream):
                n += 1
    except av.error.FFmpegError as e:
        if n == 0:
            raise DataError(path, f"cannot decode video ({av_reason(e)})") from None
    return n


def read_rgb_evenly(path: str | Path, k: int, limit: int | None = None) -> tuple[list[np.ndarray], np.ndarray, int]:
    """``k`` evenly spaced frames of the first ``min(frames, limit)``, opening and decoding the video once.

    Returns (frames, indices, frame count). The count comes from the demuxed packets (kept in memory, compressed),
    then only the packets up to the last wanted frame are decoded. When a damaged file decodes fewer frames than it
    has packets, the sampling is redone on the frames that did decode."""
    import av

    frames: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        with open_video(path) as (container, stream):
            packets = [p for p in container.demux(stream) if p.size > 0]
            n = len(packets)
            m = n if limit is None else min(n, limit)
            if m <= 0:
                raise DataError(path, "video has no frames")
            idx = evenly_spaced(m, k)
            want, last = set(idx.tolist()), int(idx.max())
            try:
                for packet in [*packets, None]:
                    for frame in stream.decode(packet):
                        if decoded in want:
                            frames[decoded] = frame.to_ndarray(format="rgb24")
                        decoded += 1
                    if decoded > last:
                        break
            except (av.error.FFmpegError, IndexError):
                pass
    except av.error.FFmpegError as e:
        raise DataError(path, f"cannot read video ({av_reason(e)})") from None
    if decoded > last:
        return [frames[i] for i in idx.tolist()], idx, n
    if decoded == 0:
        raise DataError(path, "cannot decode video (no frame decodes)")
    m = decoded if limit is None else min(decoded, limit)
    idx = evenly_spaced(m, k)
    return read_rgb_frames(path, idx), idx, decoded


def av_reason(e: Exception) -> str:
    """FFmpeg's own words for a failure, without the errno number and the file name PyAV adds."""
    text = getattr(e, "strerror", None) or str(e)
    return str(text).rstrip(".").lower() or type(e).__name__


def frame_rate(path: str | Path) -> float | None:
    """The video's frames per second from its container (no decoding); None when the container does not say or
    says something no camera records (under 1 or over 1000)."""
    try:
        with open_video(path) as (_, stream):
            fps = stream_rate(stream)
    except DataError:
        return None
    return None if fps is None else round(fps, 3)


def stream_rate(stream) -> float | None:
    """An opened PyAV video stream's frames per second as its container states it; None when it does not say or
    says something no camera records (under 1 or over 1000). One rule for what ``prepare`` records of the training
    videos and what ``predict`` reads of a live input."""
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    return fps if fps is not None and 1 <= fps <= 1000 else None


def _video_stream(container, path: str | Path):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        what = "an audio-only file" if kinds == ["audio"] else f"streams: {', '.join(kinds)}" if kinds else "empty"
        raise DataError(path, f"no video stream ({what})")
    return container.streams.video[0]


def evenly_spaced(n_available: int, n_wanted: int) -> np.ndarray:
    """``int(linspace(0, N-1, k))``: the paper's (and released code's) evaluation sampling."""
    if n_available <= 0:
        raise ValueError("no frames to sample from")
    return np.linspace(0, n_available - 1, n_wanted).astype(np.int64)
