"""Frames from a file, a pipe, a camera device or a network stream, decoded by PyAV in a thread of their own.

``INPUT`` is a video file, ``-`` (standard input) or a named pipe, a device (``/dev/video0``, read with v4l2), or a
URL (``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``tcp://``, ``srt://``). Every frame is decoded (a codec
needs them all) but only the frames someone asked for (``keep``) are converted to RGB and queued.

**The drop rule.** A file waits for its reader: nothing is dropped. A live input (pipe, device, URL) does not
wait: when ``queue`` converted frames are already waiting, the oldest waiting frame is discarded to make room for
the newest, so the decisions stay close to the present; every discard is counted and reported, and a window that
lost a sampled frame uses the nearest frame that arrived and says how many it missed.

The reader ends with one reason: ``end of input``, ``input cut after N frames (why)`` (a dropped connection, a
truncated file or pipe) or ``stopped``. Reconnecting is not attempted: a dropped connection ends the run, and what
was decided until then is kept.
"""

from __future__ import annotations

import os
import queue
import select
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modistill.data.video import av_reason, stream_rate
from modistill.errors import UserError

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
OPEN_TIMEOUT_S = 10.0
END_OF_INPUT = "end of input"


@dataclass
class Frame:
    index: int  # 0-based number of the frame in the input, dropped ones included
    image: np.ndarray  # RGB uint8 (H, W, 3)
    arrived: float  # time.monotonic() when it was decoded


@dataclass
class Counters:
    decoded: int = 0
    dropped: int = 0


def input_kind(spec: str) -> str:
    """file, pipe, device or url; one line when a local input does not exist."""
    if spec == "-":
        return "pipe"
    if spec.lower().startswith(URL_SCHEMES):
        return "url"
    p = Path(spec)
    if not p.exists():
        if spec.startswith("/dev/"):
            raise UserError(f"{spec}: no such device")
        raise UserError(f"{spec}: not found")
    mode = p.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISCHR(mode):
        return "device"
    if not stat.S_ISREG(mode):
        raise UserError(f"{spec}: not a regular file, pipe, device or URL")
    return "file"


def _wait_for_pipe(spec: str):
    """The pipe, opened for reading once something arrives through it; one line when nothing does within
    ``OPEN_TIMEOUT_S`` (a pipe nobody writes to would otherwise wait forever)."""
    if spec == "-":
        if sys.stdin.isatty():
            raise UserError("-: standard input is a terminal; pipe a video into it (ffmpeg ... -f mpegts - | ...)")
        fd = os.dup(sys.stdin.fileno())
    else:
        fd = os.open(spec, os.O_RDONLY | os.O_NONBLOCK)  # returns at once, writer or not
    poll = select.poll()
    poll.register(fd, select.POLLIN | select.POLLHUP)
    if not poll.poll(int(OPEN_TIMEOUT_S * 1000)):
        os.close(fd)
        raise UserError(f"{spec}: nothing arrived through the pipe within {OPEN_TIMEOUT_S:g} s")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0)


def _open(spec: str, kind: str):
    import av

    kwargs: dict = {"timeout": (OPEN_TIMEOUT_S, OPEN_TIMEOUT_S)} if kind == "url" else {}
    if kind == "device":
        kwargs["format"] = "v4l2"
    target = _wait_for_pipe(spec) if kind == "pipe" else spec
    try:
        container = av.open(target, **kwargs)
    except (av.error.FFmpegError, OSError) as e:
        if not isinstance(target, str):
            target.close()
        why = av_reason(e) if isinstance(e, av.error.FFmpegError) else (e.strerror or str(e))
        raise UserError(f"{spec}: cannot open ({why})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{spec}: no video stream")
    return container


class Source:
    """An opened input whose frames :meth:`frames` yields in order, read by a thread that starts on first use."""

    def __init__(
        self,
        spec: str,
        keep: Callable[[int], bool],
        fps: float | None = None,
        queue_size: int = 64,
        stop: threading.Event | None = None,
    ):
        if queue_size < 1:
            raise UserError(f"--queue must be at least 1 frame, got {queue_size}")
        if fps is not None and not 1 <= fps <= 1000:
            raise UserError(f"--fps must be between 1 and 1000, got {fps}")
        self.spec, self.kind = spec, input_kind(spec)
        self.live = self.kind != "file"
        self.keep = keep
        self.stop = stop or threading.Event()
        self._container = _open(spec, self.kind)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self.fps = fps or stream_rate(stream)
        self.size = (stream.codec_context.width, stream.codec_context.height)
        self.counters = Counters()
        self.end: str | None = None
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._read, name=f"modistill-read:{spec}", daemon=True)

    def frames(self) -> Iterator[Frame]:
        """Kept frames in order until the input ends or ``stop`` is set (checked at least every 0.1 s)."""
        if not self._thread.is_alive() and self.end is None:
            self._thread.start()
        while not self.stop.is_set():
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                return
            yield item
        self.end = self.end or "stopped"

    def _put(self, item: Frame | None) -> None:
        if not self.live or item is None:
            while not self.stop.is_set():
                try:
                    self._q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    continue
                self.counters.dropped += 1

    def _read(self) -> None:
        import av

        c = self.counters
        try:
            with self._container as container:
                for frame in container.decode(video=0):
                    i = c.decoded
                    c.decoded += 1
                    if self.stop.is_set():
                        break
                    if self.keep(i):
                        self._put(Frame(i, frame.to_ndarray(format="rgb24"), time.monotonic()))
            self.end = "stopped" if self.stop.is_set() else END_OF_INPUT
        except (av.error.FFmpegError, OSError) as e:
            self.end = f"input cut after {c.decoded} frames ({av_reason(e)})"
        finally:
            self._put(None)

    def close(self) -> None:
        """Release an input whose frames were never read."""
        if not self._thread.is_alive() and self.end is None:
            self._container.close()
            self.end = "stopped"

    @property
    def clean_end(self) -> bool:
        return self.end in (END_OF_INPUT, "stopped")


def count_frames(path: str | Path) -> int:
    """A file's frames, from its packets (no decoding)."""
    from modistill.data.video import open_video

    with open_video(path) as (container, stream):
        return sum(1 for p in container.demux(stream) if p.size > 0)
