"""Video metrics computed by FFmpeg: ``vmaf`` (libvmaf) and ``xpsnr``.

The binary is the one of the ``imageio-ffmpeg`` wheel
(:func:`imageio_ffmpeg.get_ffmpeg_exe`, which honours ``IMAGEIO_FFMPEG_EXE``); it
ships libvmaf with its built-in VMAF v0.6.1 model, so no model file is read. Whether
the binary runs and has the filter is checked once per binary (``ffmpeg -hide_banner
-filters``); otherwise :meth:`FFmpegMetric.unavailable_reason` says what is missing
and the metric is never scored.

How a clip is scored (:class:`FFmpegSession`, one per clip):

* one FFmpeg process, started at the first chunk (an argument list, no shell), that
  reads the reference and the received clip as raw ``rgb24`` frames (``W x H`` at
  25 fps) from two OS pipes (inputs ``pipe:<fd>``, the read ends passed with
  ``pass_fds``). Each pipe is written by its own thread from a queue of at most one
  chunk, so memory stays bounded for any clip length and neither pipe can stall the
  other;
* both clips are converted to 4:2:0 inside the filter graph by swscale,
  ``scale=out_color_matrix=bt601:out_range=tv:flags=bicubic,format=yuv420p``: the
  BT.601 matrix, limited (TV) range (Y in 16..235, Cb/Cr in 16..240), bicubic chroma
  downsampling -- what FFmpeg does by default for untagged rgb24, pinned here. Odd
  widths or heights are accepted: the chroma planes get ceil(W/2) x ceil(H/2)
  samples, which both filters take (VMAF v0.6.1 reads only luma);
* :meth:`FFmpegSession.close` waits for the process at most
  ``60 s + frames * (0.05 s + 2 s per megapixel)`` (generous: VMAF runs at tens of
  1080p frames a second); past that it is killed and ``RuntimeError`` names the
  metric. A non-zero exit raises ``RuntimeError`` with the last lines of its stderr;
* the per-frame values come from the filter's own log (VMAF: libvmaf's JSON log;
  XPSNR: the filter's ``stats_file``), written in a temporary folder that is
  removed afterwards.

Both metrics carry state from frame to frame (VMAF's motion feature, XPSNR's
temporal activity), so the runner's chunks are fed to one process: the values do
not depend on how the clip is chunked.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .metrics import METRICS, PSNR_CAP_DB, Metric, MetricSession

#: frame rate the raw frames are declared with (timestamps only; see XPSNR's note)
FPS = 25
#: 4:2:0 conversion inside the graph (see the module docstring)
TO_YUV420 = "scale=out_color_matrix=bt601:out_range=tv:flags=bicubic,format=yuv420p"
#: seconds the ``-filters`` probe may take
PROBE_TIMEOUT_S = 30.0
#: stderr lines quoted in errors
STDERR_LINES = 12


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's FFmpeg binary (``ImportError`` / ``RuntimeError`` from
    imageio-ffmpeg when there is none)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=None)
def ffmpeg_filters(exe: str) -> tuple[frozenset[str], str | None]:
    """(filter names of binary ``exe``, None), or (empty, why it does not run).
    Cached per path: one ``ffmpeg -hide_banner -filters`` per process and binary."""
    try:
        p = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True,
                           timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except OSError as e:
        return frozenset(), f"cannot run FFmpeg {exe}: {e.strerror or e}"
    except subprocess.TimeoutExpired:
        return frozenset(), f"FFmpeg {exe} -filters did not answer within {PROBE_TIMEOUT_S:.0f} s"
    if p.returncode != 0:
        return frozenset(), (f"FFmpeg {exe} -filters exited with {p.returncode}: "
                             f"{_tail(p.stderr, 2) or 'no message'}")
    # rows look like " TS psnr   VV->V   Calculate ...": flags, name, pads, text
    names = frozenset(f[1] for f in (ln.split() for ln in p.stdout.splitlines())
                      if len(f) >= 3 and "->" in f[2])
    return names, None


def _tail(text: str, lines: int = STDERR_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class FFmpegMetric(Metric):
    """A metric computed by an FFmpeg filter on the reference (input 0) and the
    received clip (input 1); per-frame values from the filter's log."""

    #: the FFmpeg filter that computes it (checked in ``-filters``)
    filter = ""
    #: what to install when the filter is missing
    needs = ""
    #: name of the log the filter writes, in the session's temporary folder
    log_name = ""

    def unavailable_reason(self):
        try:
            exe = ffmpeg_exe()
        except ImportError:
            return f"needs imageio-ffmpeg ({self.needs}): pip install 'lgvsc[video]'"
        except RuntimeError as e:
            return f"imageio-ffmpeg has no FFmpeg binary: {e}"
        names, why = ffmpeg_filters(exe)
        if why:
            return why
        if self.filter not in names:
            return f"FFmpeg {exe} has no {self.filter} filter ({self.needs})"
        return None

    def check_size(self, height: int, width: int) -> None:
        """``ValueError`` naming the metric when frames of ``height x width`` cannot
        be scored."""

    def graph(self) -> str:
        """The filter graph: inputs ``[0:v]`` (reference) and ``[1:v]`` (received),
        writing :attr:`log_name` in the working folder; output discarded."""
        raise NotImplementedError

    def parse(self, log: Path) -> np.ndarray:
        """Per-frame values ``[n]`` (float64) from the filter's log file."""
        raise NotImplementedError

    def time_limit(self, frames: int, height: int, width: int) -> float:
        """Seconds FFmpeg may take for ``frames`` frames of ``height x width`` (generous)."""
        return 60.0 + frames * (0.05 + 2.0 * height * width / 1e6)

    def session(self) -> "FFmpegSession":
        return FFmpegSession(self)

    def frame_scores(self, ref, test):
        """The clip ``ref``, ``test`` (uint8 ``[n, H, W, 3]``) as one session."""
        s = self.session()
        try:
            s.feed(ref, test)
            return s.close()
        finally:
            s.abort()


@METRICS.register("vmaf")
class VMAF(FFmpegMetric):
    """VMAF v0.6.1 (libvmaf's built-in model, the 1080p TV-viewing one), per frame in
    [0, 100] (the model clips its score), higher is better; dimensionless. Computed on
    the luma of the BT.601 limited-range 4:2:0 conversion, with
    ``n_threads = torch.get_num_threads()`` (or 2). The first frame has no motion
    feature (0), so identical clips score about 97.4 there and 100 (clipped) on
    frames with motion.

    Frames need at least :attr:`MIN_SIDE` px a side: libvmaf's ADM feature crashes
    the process (segfault) at 16 px or less in this build (measured), and upstream
    reports crashes or unreliable scores below 32 px (Netflix/vmaf issues 1035,
    1098). The model was trained for 1080p: on small frames its values are
    comparable between schemes, not to published VMAF figures."""

    name = "vmaf"
    bounds = (0.0, 100.0)
    unit = ""
    filter = "libvmaf"
    needs = "an FFmpeg built with --enable-libvmaf"
    log_name = "vmaf.json"
    MIN_SIDE = 32

    def check_size(self, height, width):
        if min(height, width) < self.MIN_SIDE:
            raise ValueError(f"vmaf needs frames of at least {self.MIN_SIDE}x{self.MIN_SIDE} px "
                             f"(libvmaf fails on smaller ones), got {height}x{width}")

    def graph(self):
        import torch

        threads = torch.get_num_threads() or 2
        return (f"[0:v]{TO_YUV420}[ref];[1:v]{TO_YUV420}[dis];"
                f"[dis][ref]libvmaf=model=version=vmaf_v0.6.1:n_threads={threads}"
                f":log_fmt=json:log_path={self.log_name}:shortest=1")

    def parse(self, log):
        frames = json.loads(log.read_text())["frames"]
        nums = [f["frameNum"] for f in frames]
        if nums != list(range(len(frames))):
            raise RuntimeError(f"vmaf: libvmaf's log numbers its frames {nums[:5]}..., "
                               f"expected 0, 1, 2, ...")
        return np.array([f["metrics"]["vmaf"] for f in frames], dtype=np.float64)


#: one per-frame row of FFmpeg's xpsnr stats_file: "n:    1  XPSNR y: 40.2157  XPSNR u: ..."
_XPSNR_ROW = re.compile(r"^n:\s*(\d+)\s+XPSNR y:\s*(\S+)\s+XPSNR u:\s*(\S+)\s+XPSNR v:\s*(\S+)")


@METRICS.register("xpsnr")
class XPSNR(FFmpegMetric):
    """XPSNR (Helmrich et al., Fraunhofer HHI; FFmpeg's ``xpsnr`` filter), per frame in
    dB, higher is better, in [0, :data:`~lgvsc.sim.metrics.PSNR_CAP_DB`].

    The filter writes, per frame, the XPSNR of each plane of the 4:2:0 conversion
    (Y, U, V: ``10 log10(W H 255^2 / WSSE)``, the squared error weighted block by
    block by the inverse of the reference's spatial and temporal activity; chroma
    uses the luma blocks' weights). Its own summary combines the planes as the
    *minimum* over Y, U, V (of the per-plane clip averages); the value reported here
    is that combination per frame, ``min(XPSNR_Y, XPSNR_U, XPSNR_V)``. (A sample-count
    weighting (4 Y + U + V) / 6 is used by some tools; neither FFmpeg's filter nor the
    Fraunhofer reference defines it.) Identical frames give ``inf`` in the filter;
    they are capped at 100 dB like PSNR, so clip means stay finite. The runner's clip
    value is the arithmetic mean of the per-frame dB values, as for PSNR; FFmpeg's
    summary instead averages the weighted distortion before the logarithm.

    The reference is the filter's first input (the activity weights are computed on
    it, as in the Fraunhofer examples). The temporal activity is the first-order
    frame difference FFmpeg uses below 32 fps (the frames are declared at 25 fps;
    the metric does not know a clip's frame rate, so 50/60 fps clips are scored as
    25 fps ones). The first frame's temporal activity is taken against a black
    frame, as in FFmpeg.

    Frames need at least :attr:`MIN_SIDE` px a side and :attr:`MIN_PIXELS` pixels:
    FFmpeg's block size ``4 round(32 sqrt(W H / (3840 x 2160)))`` is 0 below 2025
    pixels, and the filter then silently reports unweighted PSNR."""

    name = "xpsnr"
    bounds = (0.0, PSNR_CAP_DB)
    unit = "dB"
    filter = "xpsnr"
    needs = "an FFmpeg with the xpsnr filter, 7.1 or newer"
    log_name = "xpsnr.log"
    MIN_SIDE = 8
    MIN_PIXELS = 2025

    def check_size(self, height, width):
        if min(height, width) < self.MIN_SIDE or height * width < self.MIN_PIXELS:
            raise ValueError(f"xpsnr needs frames of at least {self.MIN_SIDE} px a side and "
                             f"{self.MIN_PIXELS} pixels (e.g. 45x45; smaller ones get plain "
                             f"PSNR from FFmpeg), got {height}x{width}")

    def graph(self):
        return (f"[0:v]{TO_YUV420}[ref];[1:v]{TO_YUV420}[dis];"
                f"[ref][dis]xpsnr=stats_file={self.log_name}:shortest=1")

    def parse(self, log):
        rows = [m for m in map(_XPSNR_ROW.match, log.read_text().splitlines()) if m]
        nums = [int(m[1]) for m in rows]
        if nums != list(range(1, len(rows) + 1)):
            raise RuntimeError(f"xpsnr: FFmpeg's stats_file numbers its frames {nums[:5]}..., "
                               f"expected 1, 2, 3, ...")
        planes = np.array([[float(m[i]) for i in (2, 3, 4)] for m in rows],
                          dtype=np.float64).reshape(-1, 3)  # "inf" for identical planes
        return np.minimum(planes.min(axis=1), PSNR_CAP_DB)


class _PipeWriter(threading.Thread):
    """Writes queued byte strings to one pipe's write end ``fd`` (at most one queued
    while one is written) and closes it after :meth:`finish`. A write error (the
    reader is gone) is kept in :attr:`error`; later chunks are then dropped, so a
    producer never blocks on a dead pipe."""

    def __init__(self, fd: int, name: str):
        super().__init__(name=name, daemon=True)
        self.fd = fd
        self.error: OSError | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=1)
        self._finished = False

    def put(self, data: bytes, timeout: float) -> None:
        """Queue ``data``; ``queue.Full`` if the writer did not take it within ``timeout`` s."""
        self._queue.put(data, timeout=timeout)

    def finish(self, timeout: float) -> None:
        """Close the pipe once the queued data is written (idempotent)."""
        if not self._finished:
            self._queue.put(None, timeout=timeout)
            self._finished = True

    def run(self):
        try:
            while (data := self._queue.get()) is not None:
                view = memoryview(data)
                while view and self.error is None:
                    try:
                        view = view[os.write(self.fd, view):]
                    except OSError as e:
                        self.error = e
        finally:
            os.close(self.fd)


class FFmpegSession(MetricSession):
    """One FFmpeg process scoring one clip (module docstring): started at the first
    :meth:`feed`, fed chunk by chunk through two pipes, read back at :meth:`close`."""

    def __init__(self, metric: FFmpegMetric):
        self.metric = metric
        self._proc: subprocess.Popen | None = None
        self._writers: tuple[_PipeWriter, ...] = ()
        self._dir: Path | None = None
        self._stderr = None
        self._size: tuple[int, int] | None = None
        self._frames = 0
        self._chunk = 0  # the largest chunk fed (frames)

    def feed(self, ref, test):
        m = self.metric
        ref, test = np.asarray(ref), np.asarray(test)
        if ref.shape != test.shape:
            raise ValueError(f"{m.name}: shape mismatch: reference {ref.shape} vs test {test.shape}")
        if ref.ndim != 4 or ref.shape[-1] != 3 or ref.dtype != np.uint8 or test.dtype != np.uint8:
            raise ValueError(f"{m.name}: expected uint8 RGB frames [n, H, W, 3], got "
                             f"{ref.dtype} {ref.shape} and {test.dtype} {test.shape}")
        if not len(ref):
            return
        size = ref.shape[1:3]
        if self._proc is None:
            why = m.unavailable_reason()
            if why:
                raise RuntimeError(f"{m.name} is unavailable: {why}")
            m.check_size(*size)
            self._start(*size)
        elif size != self._size:
            raise ValueError(f"{m.name}: frame size changed within the clip from "
                             f"{self._size[0]}x{self._size[1]} to {size[0]}x{size[1]}")
        self._chunk = max(self._chunk, len(ref))
        wait = m.time_limit(self._chunk, *size)
        for writer, frames in zip(self._writers, (ref, test)):
            self._check_running()
            try:  # a copy: the caller may reuse its arrays once feed returns
                writer.put(np.ascontiguousarray(frames).tobytes(), timeout=wait)
            except queue.Full:
                self._fail(f"FFmpeg took no frames for {wait:.3g} s; killed")
        self._frames += len(ref)

    def close(self):
        if self._proc is None:
            return np.zeros(0)
        m = self.metric
        try:
            limit = m.time_limit(self._frames, *self._size)
            deadline = time.monotonic() + limit
            for w in self._writers:
                try:
                    w.finish(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Full:
                    self._fail(f"FFmpeg did not finish {self._frames} frames within "
                               f"{limit:.3g} s; killed")
            try:
                rc = self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._fail(f"FFmpeg did not finish {self._frames} frames within {limit:.3g} s; killed")
            for w in self._writers:
                w.join(timeout=max(1.0, deadline - time.monotonic()))
            if rc != 0:
                self._fail(f"FFmpeg exited with {rc}")
            broken = [w for w in self._writers if w.error is not None]
            if broken:
                self._fail(f"writing {broken[0].name} failed: {broken[0].error}")
            log = self._dir / m.log_name
            if not log.is_file():
                self._fail(f"FFmpeg wrote no {m.log_name}")
            values = m.parse(log)
            if len(values) != self._frames:
                raise RuntimeError(f"{m.name}: FFmpeg scored {len(values)} frames, "
                                   f"{self._frames} were fed")
            return values
        finally:
            self.abort()

    def abort(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for w in self._writers:  # the reader is gone: each writer drains and exits
            try:
                w.finish(timeout=10.0)
            except queue.Full:
                pass  # a writer stuck after its reader died; it is a daemon thread
            w.join(timeout=10.0)
        self._writers = ()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- internals -----------------------------------------------------------------
    def _start(self, height: int, width: int) -> None:
        self._size = (height, width)
        self._dir = Path(tempfile.mkdtemp(prefix=f"lgvsc-{self.metric.name}-"))
        self._stderr = open(self._dir / "stderr.txt", "w+b")
        pipes = [os.pipe() for _ in range(2)]  # (read, write): reference, received
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{width}x{height}",
               "-framerate", str(FPS)]
        args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
                *raw, "-i", f"pipe:{pipes[0][0]}", *raw, "-i", f"pipe:{pipes[1][0]}",
                "-lavfi", self.metric.graph(), "-f", "null", "-"]
        try:
            self._proc = subprocess.Popen(
                args, cwd=self._dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self._stderr, pass_fds=[r for r, _ in pipes])
        except BaseException:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            raise
        for r, _ in pipes:  # the child holds the read ends now
            os.close(r)
        self._writers = tuple(_PipeWriter(w, f"{self.metric.name} {role} pipe")
                              for (_, w), role in zip(pipes, ("reference", "received")))
        for w in self._writers:
            w.start()

    def _check_running(self) -> None:
        """``RuntimeError`` with FFmpeg's stderr when it exited before all frames came."""
        if self._proc.poll() is not None:
            self._fail(f"FFmpeg exited with {self._proc.returncode} while frames were coming")

    def _fail(self, what: str):
        """Kill FFmpeg and raise ``RuntimeError`` naming the metric, with stderr's tail."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._stderr.flush()
        self._stderr.seek(0)
        err = _tail(self._stderr.read().decode(errors="replace"))
        raise RuntimeError(f"{self.metric.name}: {what}" + (f"; FFmpeg said:\n{err}" if err else ""))
