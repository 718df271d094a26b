"""H.264 / H.265 through PyAV (libx264 / libx265), mp4 muxing, and a crash-proof decoder.

Encoding: constant QP, GOP = keyint, one packet per frame, Annex B with
in-band parameter sets; deterministic: x264 with one thread (one slice per
frame: what ``ffmpeg`` gives too, as it uses frame threads, which do not
change a constant-QP bitstream; PyAV's default, sliced threads, would add
slices), x265 with one frame thread and, by default, no thread pool, which
also switches off wavefront parallel processing (``wpp``: x265's own default
on any multi-core machine, ~20-40% more bits at QP 51 on small pictures).
By default low delay (no B-frames); ``bframes`` sets how many (``None``: the
x264/x265 preset's own default, e.g. 3 for x265 ``ultrafast``). With
B-frames the packets come in *decode* order, which is not display order:
each packet carries its display index (``Bitstream.pts``). ``profile``
(x264 only) restricts the H.264 toolset, e.g. ``baseline`` (no B-frames, no
CABAC). x265's informational SEI (its version and option string, ~2.4 kB,
which it repeats with the parameter sets at every keyframe of an in-band
stream) is switched off in band: it carries nothing a decoder needs.
:func:`mux_mp4` writes what ``ffmpeg -i in -c:v ... out.mp4`` would (global
headers in ``avcC`` / ``hvcC``), in memory, to measure a container.

Decoding runs in a child process under a time and a memory limit: a
corrupted bitstream can make FFmpeg spin, crash or allocate without bound,
and none of these may take the simulation down. The child is this file run
as a script by Python in isolated mode (``python -I .../codecs.py``: neither
the working directory nor ``PYTHON*`` variables nor the user site reach its
``sys.path``), from a fresh temporary directory, so a user's ``av.py`` or
``lgvsc/`` where the simulation runs cannot stand in for the real ones. It
limits itself: its address space to :func:`memory_limit` (``RLIMIT_AS``),
its CPU time to the time limit (a backstop should its parent die), and
writes no core file; a child over its memory limit ends as ``"crashed"``.
The receiver is given the packet lengths and their display indices (the
framing a container or RTP would carry); their payload bits arrive with
whatever errors the channel left. Each decoded picture lands at the display
index its packet carried, so the output is in display order whatever the
decode order. A frame that does not come out of the decoder at the right
size is concealed by repeating the last good frame before it in display
order (mid-grey before the first one). Exactly F frames come out, always.
"""

from __future__ import annotations

import io
import json
import math
import mmap
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

ENCODERS = {"h264": "libx264", "h265": "libx265"}
DECODERS = {"h264": "h264", "h265": "hevc"}
MUXER_CODECS = {"h264": "h264", "h265": "hevc"}
PROFILES = ("baseline", "main", "high")
GREY = 128
#: encoder time base (frames per second); CQP bitstreams do not depend on it
FPS = 25
_INDEX_BYTES = 4  # child -> parent record: display index (little endian), then the frame
#: the decoder child, run as a script: it imports no lgvsc module
_CHILD = os.path.abspath(__file__)
#: decoder child's address space: a fixed part for the interpreter, numpy, PyAV and
#: the FFmpeg libraries, plus room for this many RGB pictures of the clip's size.
#: Measured VmPeak (one BLAS and one swscale thread, h264 / h265): 205-220 MB from
#: 64x64 to 720p, 229-238 MB at 1080p, 338 MB at 2160p, i.e. ~205 MB plus 4-6 RGB
#: pictures (a full DPB is 16 yuv420 pictures, 8 RGB ones). The child streams its
#: frames out, so it does not grow with their number (120 frames peak as 8 do).
MEMORY_BASE_BYTES = 1 << 30
MEMORY_PICTURES = 32
#: pictures the parent holds ahead of the next frame it emits (:class:`DecodeStream`)
REORDER_WINDOW = 16
#: frames per chunk a :class:`DecodeStream` yields
CHUNK_FRAMES = 16


@dataclass
class Bitstream:
    """Encoded packets in decode order.

    ``packets[i]`` holds the picture shown at display index ``pts[i]`` and is
    decoded at ``dts[i]`` (``pts == dts == range(F)`` without B-frames);
    ``keyframes[i]`` flags random-access pictures; ``extradata`` holds the
    parameter sets when they were not sent in band (``global_header``).
    """

    packets: list[bytes]
    pts: list[int] = field(default_factory=list)
    dts: list[int] = field(default_factory=list)
    keyframes: list[bool] = field(default_factory=list)
    extradata: bytes = b""

    def __post_init__(self):
        f = len(self.packets)
        self.pts = list(self.pts) if self.pts else list(range(f))
        self.dts = list(self.dts) if self.dts else list(self.pts)
        self.keyframes = list(self.keyframes) if self.keyframes else [i == 0 for i in range(f)]
        if not len(self.pts) == len(self.dts) == len(self.keyframes) == f:
            raise ValueError("pts, dts and keyframes must have one entry per packet")

    @property
    def lengths(self) -> list[int]:
        return [len(p) for p in self.packets]

    @property
    def data(self) -> bytes:
        return b"".join(self.packets)

    @property
    def num_bits(self) -> int:
        """Bits of the packets (the elementary stream; ``extradata`` not included)."""
        return 8 * sum(self.lengths)

    @property
    def reordered(self) -> bool:
        """True when decode order differs from display order (B-frames)."""
        return self.pts != list(range(len(self.packets)))


def _options(codec: str, qp: int, gop: int, speed: str, profile: str | None,
             bframes: int | None, global_header: bool, wpp: bool) -> dict:
    if codec == "h264":
        opts = {"preset": speed, "qp": str(qp), "g": str(gop), "threads": "1",
                "x264-params": "log-level=none"}
        if bframes is not None:
            opts["bf"] = str(bframes)
        if profile is not None:
            opts["profile"] = profile
        return opts
    # one frame thread; wavefronts need a thread pool (one worker: same bitstream as many)
    pools = "1:wpp=1" if wpp else "none"
    params = f"qp={qp}:keyint={gop}:frame-threads=1:pools={pools}:log-level=none"
    if not global_header:  # in band, x265 repeats its ~2.4 kB banner SEI at every keyframe
        params += ":info=0"
    if bframes is not None:
        params += f":bframes={bframes}"
    return {"preset": speed, "x265-params": params}


def _check_encoder_args(codec, qp, gop, profile, bframes, wpp=False) -> None:
    if codec not in ENCODERS:
        raise ValueError(f"codec must be one of {', '.join(ENCODERS)}, got {codec!r}")
    if not 0 <= qp <= 51:
        raise ValueError(f"qp must be in [0, 51], got {qp}")
    if gop < 1:
        raise ValueError(f"gop must be >= 1, got {gop}")
    if profile is not None and (codec != "h264" or profile not in PROFILES):
        raise ValueError(f"profile must be None or, for h264, one of {', '.join(PROFILES)}; "
                         f"got {profile!r} for {codec}")
    if bframes is not None and not 0 <= bframes <= 16:
        raise ValueError(f"bframes must be None (the preset's default) or in [0, 16], got {bframes}")
    if wpp and codec != "h265":
        raise ValueError(f"wpp (wavefront parallel processing) is an x265 option; got it for {codec}")
    if profile == "baseline" and bframes:
        raise ValueError(f"bframes must be 0 with the baseline profile (it has no B-frames), got {bframes}")


def encode(frames: np.ndarray, codec: str, qp: int, gop: int, speed: str = "medium",
           pix_fmt: str = "yuv420p", profile: str | None = None, bframes: int | None = 0,
           global_header: bool = False, wpp: bool = False) -> Bitstream:
    """uint8 RGB [F, H, W, 3] -> one packet per frame, in decode order (Annex B).

    ``global_header``: parameter sets go to ``extradata`` instead of the stream,
    as FFmpeg does when it writes mp4 (only for :func:`mux_mp4`). ``wpp`` (x265):
    wavefront parallel processing, x265's default whenever it has a thread pool.
    """
    import av

    _check_encoder_args(codec, qp, gop, profile, bframes, wpp)
    f, h, w, _ = frames.shape
    ctx = av.CodecContext.create(ENCODERS[codec], "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, pix_fmt
    ctx.time_base, ctx.framerate = Fraction(1, FPS), Fraction(FPS, 1)
    if global_header:
        ctx.flags |= av.codec.context.Flags.global_header
    ctx.options = _options(codec, qp, gop, speed, profile, bframes, global_header, wpp)
    out = []
    for i, img in enumerate(frames):
        fr = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        fr.pts = i
        out += list(ctx.encode(fr.reformat(format=pix_fmt)))
    out += list(ctx.encode(None))
    if len(out) != f:
        raise RuntimeError(f"{codec}: expected one packet per frame, got {len(out)} for {f}")
    bs = Bitstream([bytes(p) for p in out], [int(p.pts) for p in out], [int(p.dts) for p in out],
                   [bool(p.is_keyframe) for p in out], bytes(ctx.extradata or b""))
    if sorted(bs.pts) != list(range(f)):
        raise RuntimeError(f"{codec}: packet display indices are not 0..{f - 1}")
    return bs


def mux_mp4(bs: Bitstream, codec: str, height: int, width: int) -> bytes:
    """The mp4 file (FFmpeg's mov muxer) holding ``bs``, as bytes.

    Encode with ``global_header=True`` for the file ``ffmpeg ... out.mp4`` writes:
    parameter sets (and x265's banner SEI) once in the sample description
    (``avcC`` / ``hvcC``), not in the samples. The stream's parameters come from
    probing the Annex B stream with FFmpeg's raw demuxer, so no encoder is
    opened (an opened encoder would write its own ``extradata``).
    """
    import av

    tb = Fraction(1, FPS)
    raw = io.BytesIO(bs.extradata + bs.packets[0])
    with av.open(raw, format=MUXER_CODECS[codec]) as probe:
        template = probe.streams.video[0]
        if (template.codec_context.height, template.codec_context.width) != (height, width):
            raise ValueError(f"bitstream is {template.codec_context.height}x"
                             f"{template.codec_context.width}, expected {height}x{width}")
        buf = io.BytesIO()
        with av.open(buf, "w", format="mp4") as out:
            st = out.add_stream_from_template(template)
            if bs.extradata:
                st.codec_context.extradata = bs.extradata
            st.time_base = tb
            for data, pts, dts, key in zip(bs.packets, bs.pts, bs.dts, bs.keyframes):
                pkt = av.Packet(data)
                pkt.pts, pkt.dts, pkt.time_base, pkt.is_keyframe = pts, dts, tb, key
                pkt.stream = st
                out.mux(pkt)
    return buf.getvalue()


@dataclass
class Decoded:
    frames: np.ndarray  # uint8 [F, H, W, 3]
    decoded: int  # frames that came out of the decoder
    concealed: int  # F - decoded
    status: str  # "ok" | "timeout" | "crashed"


def memory_limit(height: int, width: int) -> int:
    """Default address-space limit (bytes) of the decoder child for H x W pictures."""
    return MEMORY_BASE_BYTES + MEMORY_PICTURES * height * width * 3


def decode(data: bytes, lengths: list[int], codec: str, height: int, width: int,
           timeout_s: float | None = None, pts: list[int] | None = None,
           memory_limit_bytes: int | None = None) -> Decoded:
    """Decode a (possibly corrupted) bitstream in a child process; never raises on bad data.

    :param data: the packets' bytes, concatenated in decode order.
    :param lengths: bytes per packet (F packets).
    :param pts: display index of each packet (default ``range(F)``).
    :param memory_limit_bytes: the child's address space (default :func:`memory_limit`).
    :output: :class:`Decoded` with F frames [F, H, W, 3] in display order.

    The whole clip in memory: :func:`decode_stream` gives the same frames chunk by chunk.
    """
    stream = decode_stream(data, lengths, codec, height, width, timeout_s, pts,
                           memory_limit_bytes)
    frames = np.empty((stream.count, height, width, 3), np.uint8)
    pos = 0
    for chunk in stream:
        frames[pos:pos + len(chunk)] = chunk
        pos += len(chunk)
    return Decoded(frames, stream.decoded, stream.concealed, stream.status)


def decode_stream(data: bytes, lengths: list[int], codec: str, height: int, width: int,
                  timeout_s: float | None = None, pts: list[int] | None = None,
                  memory_limit_bytes: int | None = None, chunk_frames: int | None = None,
                  window: int | None = None) -> "DecodeStream":
    """:func:`decode` as a stream: a :class:`DecodeStream` whose iteration yields the F
    display-order frames as uint8 chunks ``[<= chunk_frames, H, W, 3]`` while the child
    decodes; ``decoded``, ``concealed`` and ``status`` are final once it is exhausted."""
    f = len(lengths)
    pts = list(range(f)) if pts is None else [int(p) for p in pts]
    if len(pts) != f:
        raise ValueError(f"pts must have one entry per packet ({f}), got {len(pts)}")
    timeout_s = timeout_s if timeout_s is not None else 10.0 + 0.5 * f
    memory = memory_limit_bytes if memory_limit_bytes is not None else memory_limit(height, width)
    header = json.dumps({"codec": codec, "lengths": [int(n) for n in lengths], "pts": pts,
                         "height": height, "width": width, "memory_limit": int(memory),
                         "cpu_limit": math.ceil(timeout_s) + 1})
    return DecodeStream(header.encode() + b"\n", data, f, height, width, timeout_s,
                        chunk_frames or CHUNK_FRAMES, window or REORDER_WINDOW)


class DecodeStream:
    """The decoder child's pictures as display-order chunks (see :func:`decode_stream`).

    The child writes records (display index, picture) as it decodes; the parent keeps
    the records whose index is ahead of the next frame to show, at most ``window`` of
    them: frame ``i`` is emitted once a record with an index ``>= i + window`` has
    arrived, or at the end of the stream. Frame ``i`` is the last record with index
    ``i``, else a repeat of the last good frame before it in display order, else
    mid-grey: what the whole-clip decoder gave, as long as the decoder emits its
    pictures in display order up to ``window`` frames (FFmpeg does: it reorders
    by POC before output; a DPB holds at most 16 pictures). A record for an index
    already emitted (more than ``window`` frames late) is ignored and not counted in
    ``decoded``.

    Time limit: ``timeout_s`` bounds the time the parent spends *waiting* for the
    child (its output, then its exit), summed over the decode; time the reader of
    the stream spends between chunks does not count (the child then blocks on a
    full pipe), so a slow consumer never turns a good decode into a timeout. At
    the limit the child is killed, ``status`` becomes ``"timeout"`` and every
    frame not yet received is concealed. Exactly ``count`` frames come out, always;
    a child that fails for its environment raises :class:`~lgvsc.sim.errors.UserError`.
    Parent memory: the bitstream, ``window`` pictures and one chunk (independent of F).
    """

    def __init__(self, header: bytes, data: bytes, count: int, height: int, width: int,
                 timeout_s: float, chunk_frames: int, window: int):
        self._header, self._data = header, data
        self.count, self.height, self.width = int(count), int(height), int(width)
        self.timeout_s, self.chunk_frames, self.window = timeout_s, max(1, chunk_frames), max(1, window)
        self.decoded = 0
        self.concealed = 0
        self.status: str | None = None  # "ok" | "timeout" | "crashed" once exhausted
        self.peak_buffered = 0  # most pictures held ahead of the next one (diagnostics)
        self._started = False

    @property
    def done(self) -> bool:
        return self.status is not None

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        if self._started:
            raise RuntimeError("a DecodeStream can be read once")
        self._started = True
        return self._chunks()

    def _chunks(self):
        f, h, w = self.count, self.height, self.width
        frame_bytes = h * w * 3
        buffered: dict[int, np.ndarray] = {}
        state = dict(next=0, last=None)
        out: list[np.ndarray] = []

        def emit_upto(stop):  # frames next .. stop - 1, in display order
            while state["next"] < min(stop, f):
                i = state["next"]
                img = buffered.pop(i, None)
                if img is not None:
                    state["last"] = img
                    self.decoded += 1
                else:
                    self.concealed += 1
                out.append(state["last"] if state["last"] is not None else None)
                state["next"] = i + 1

        def flush(final=False):
            while len(out) >= self.chunk_frames or (final and out):
                part, out[:] = out[:self.chunk_frames], out[self.chunk_frames:]
                chunk = np.empty((len(part), h, w, 3), np.uint8)
                for j, img in enumerate(part):
                    chunk[j] = GREY if img is None else img
                yield chunk

        child = _Child(self._header, self._data, self.timeout_s)
        try:
            for idx, img in child.records(frame_bytes):
                if idx >= f or idx < state["next"]:
                    continue  # outside the clip, or too late: already emitted
                buffered[idx] = img.reshape(h, w, 3)  # a later record for the same index wins
                emit_upto(idx - self.window + 1)
                self.peak_buffered = max(self.peak_buffered, len(buffered))
                yield from flush()
            self.status = child.status
        finally:
            child.close()
        emit_upto(f)
        yield from flush(final=True)


class _Child:
    """The decoder child, run isolated in a fresh directory; stdin fed by a thread,
    stderr's tail kept by another, stdout read as records under the time limit."""

    STDERR_TAIL = 1 << 16

    def __init__(self, stdin: bytes, data: bytes, timeout_s: float):
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self._cwd = tempfile.TemporaryDirectory(prefix="lgvsc-decode-")
        self.status: str | None = None
        self._left = float(timeout_s)  # seconds of waiting left
        self._stderr = bytearray()
        try:
            self._p = subprocess.Popen([sys.executable, "-I", _CHILD], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       cwd=self._cwd.name, env=env, bufsize=0)
        except BaseException:
            self._cwd.cleanup()
            raise
        self._threads = [threading.Thread(target=self._feed, args=(stdin, data), daemon=True),
                         threading.Thread(target=self._drain, daemon=True)]
        for t in self._threads:
            t.start()

    def _feed(self, header: bytes, data: bytes) -> None:
        pipe = self._p.stdin
        try:
            pipe.write(header)
            view = memoryview(data)
            for pos in range(0, len(view), 1 << 20):
                pipe.write(view[pos:pos + (1 << 20)])
        except (OSError, ValueError):  # the child died or was killed: it reads no more
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _drain(self) -> None:
        try:
            while True:
                part = self._p.stderr.read(1 << 16)
                if not part:
                    return
                self._stderr += part
                del self._stderr[:-self.STDERR_TAIL]
        except (OSError, ValueError):
            pass

    def _read(self, view: memoryview) -> bool:
        """Fill ``view`` from the child's stdout: True when full, False at end of output
        (the child exited or closed it) or at the time limit (``status`` "timeout")."""
        fd, pos = self._p.stdout.fileno(), 0
        while pos < len(view):
            t = time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(self._left, 0.0))
            self._left -= time.monotonic() - t
            if not ready:
                self._kill("timeout")
                return False
            n = self._p.stdout.readinto(view[pos:])
            if not n:
                return False
            pos += n
        return True

    def records(self, frame_bytes: int):
        """(display index, picture [H, W, 3]) per complete record; then ``status``."""
        head = bytearray(_INDEX_BYTES)
        while self.status is None and self._read(memoryview(head)):
            img = np.empty(frame_bytes, np.uint8)
            if not self._read(memoryview(img)):
                break  # a truncated last record (the child died mid-write) is ignored
            yield int.from_bytes(head, "little"), img
        if self.status is None:
            self._finish()

    def _finish(self) -> None:
        try:
            code = self._p.wait(timeout=max(self._left, 0.0))
        except subprocess.TimeoutExpired:
            self._kill("timeout")
            return
        for t in self._threads:
            t.join()
        if code == 0:
            self.status = "ok"
            return
        _check_environment(bytes(self._stderr))
        self.status = "crashed"

    def _kill(self, status: str) -> None:
        self.status = status
        self._p.kill()

    def close(self) -> None:
        """Kill the child if it still runs (a reader that stopped early), reap it."""
        if self._p.poll() is None:
            self._p.kill()
        self._p.wait()
        for t in self._threads:
            t.join()
        for pipe in (self._p.stdout, self._p.stdin, self._p.stderr):
            try:
                pipe.close()
            except OSError:
                pass
        self._cwd.cleanup()


def _check_environment(stderr: bytes) -> None:
    """A child that could not import numpy or av failed for its environment, not for
    the data: say so rather than conceal every frame (bad data never stops an import)."""
    last = (stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
    if last.startswith("ModuleNotFoundError"):
        from .errors import UserError

        raise UserError(f"the video decoder child ({sys.executable} -I, isolated: no "
                        f"PYTHONPATH) failed: {last}; install lgvsc[video] into that Python")


def _emit(out, frames, h: int, w: int) -> None:
    for fr in frames:
        if fr.pts is None or not 0 <= fr.pts < 2**32 or (fr.height, fr.width) != (h, w):
            continue
        img = fr.to_ndarray(format="rgb24", threads=1)  # swscale: one thread, not one per CPU
        out.write(int(fr.pts).to_bytes(_INDEX_BYTES, "little"))
        out.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
        out.flush()


def _limit_resources(memory_bytes: int, cpu_s: int) -> None:
    """The child's own limits: address space, CPU seconds, no core file (POSIX)."""
    try:
        import resource
    except ImportError:  # not POSIX: the parent's time limit alone
        return
    _lower(resource, resource.RLIMIT_CORE, 0, 0)
    _lower(resource, resource.RLIMIT_CPU, cpu_s, cpu_s + 1)
    _lower(resource, resource.RLIMIT_AS, memory_bytes, memory_bytes)


def _lower(resource, which: int, soft: int, hard: int) -> None:
    """Set a limit to (soft, hard), never above the limits already in force (a user's
    ``ulimit``); a platform that refuses this limit keeps its own."""
    inf = resource.RLIM_INFINITY
    cur_soft, cur_hard = resource.getrlimit(which)
    hard = hard if cur_hard == inf else min(hard, cur_hard)
    soft = min(soft, hard) if cur_soft == inf else min(soft, hard, cur_soft)
    try:
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass


def _child() -> None:  # pragma: no cover - exercised through decode()
    import av  # before the limits: an import never depends on the data

    src = sys.stdin.buffer
    hdr = json.loads(src.readline())
    _limit_resources(hdr["memory_limit"], hdr["cpu_limit"])
    h, w = hdr["height"], hdr["width"]
    out = sys.stdout.buffer
    ctx = av.CodecContext.create(DECODERS[hdr["codec"]], "r")
    ctx.thread_count = 1
    ctx.options = {"flags2": "+showall", "err_detect": "ignore_err"}
    for n, pts in zip(hdr["lengths"], hdr["pts"]):
        chunk = src.read(n)
        if not chunk:
            continue
        pkt = av.Packet(chunk)
        pkt.pts = pts
        _decode_packet(av, ctx, pkt, out, h, w)
    _decode_packet(av, ctx, None, out, h, w)  # drain the pictures held back for reordering


def _decode_packet(av, ctx, pkt, out, h: int, w: int) -> None:
    """Decode one packet (``None``: drain) and emit its pictures; a decoding error
    skips the packet, running out of memory ends the child ("crashed")."""
    try:
        _emit(out, ctx.decode(pkt), h, w)
    except MemoryError:  # av.error.MemoryError too: over the limit, never carry on
        raise
    except (av.error.FFmpegError, ValueError):
        _check_memory(max(h * w * 3, 1 << 20))


def _check_memory(n: int) -> None:
    """Raise MemoryError when ``n`` more bytes of address space cannot be had: the error
    just seen was for want of memory (h264 reports a failed picture allocation as
    invalid data). The pages are mapped, never touched."""
    try:
        mmap.mmap(-1, n).close()
    except OSError as e:
        raise MemoryError(f"cannot map {n} more bytes") from e


if __name__ == "__main__":
    _child()
