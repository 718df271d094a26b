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

Decoding runs in a child process (``python -m lgvsc.sim.codecs``) under a
time limit: a corrupted bitstream can make FFmpeg spin or crash, and neither
may take the simulation down. The receiver is given the packet lengths and
their display indices (the framing a container or RTP would carry); their
payload bits arrive with whatever errors the channel left. Each decoded
picture lands at the display index its packet carried, so the output is in
display order whatever the decode order. A frame that does not come out of
the decoder at the right size is concealed by repeating the last good frame
before it in display order (mid-grey before the first one). Exactly F frames
come out, always.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
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


def decode(data: bytes, lengths: list[int], codec: str, height: int, width: int,
           timeout_s: float | None = None, pts: list[int] | None = None) -> Decoded:
    """Decode a (possibly corrupted) bitstream in a child process; never raises on bad data.

    :param data: the packets' bytes, concatenated in decode order.
    :param lengths: bytes per packet (F packets).
    :param pts: display index of each packet (default ``range(F)``).
    :output: :class:`Decoded` with F frames [F, H, W, 3] in display order.
    """
    f = len(lengths)
    pts = list(range(f)) if pts is None else [int(p) for p in pts]
    if len(pts) != f:
        raise ValueError(f"pts must have one entry per packet ({f}), got {len(pts)}")
    timeout_s = timeout_s if timeout_s is not None else 10.0 + 0.5 * f
    header = json.dumps({"codec": codec, "lengths": lengths, "pts": pts, "height": height,
                         "width": width})
    status = "ok"
    try:
        p = subprocess.run([sys.executable, "-m", "lgvsc.sim.codecs"],
                           input=header.encode() + b"\n" + data, capture_output=True,
                           timeout=timeout_s)
        out = p.stdout
        if p.returncode != 0:
            status = "crashed"
    except subprocess.TimeoutExpired as e:
        out, status = e.stdout or b"", "timeout"
    got = _read_records(out, f, height * width * 3)
    frames = np.empty((f, height, width, 3), np.uint8)
    last = None
    for i in range(f):  # display order; a missing frame repeats the last good one
        if i in got:
            last = np.frombuffer(out, np.uint8, height * width * 3, got[i]).reshape(height, width, 3)
        frames[i] = last if last is not None else GREY
    return Decoded(frames, len(got), f - len(got), status)


def _read_records(out: bytes, f: int, frame_bytes: int) -> dict[int, int]:
    """{display index: offset of its frame in ``out``} from the child's records
    (index, frame); a truncated last record (the child died mid-write) is ignored."""
    got, pos, rec = {}, 0, _INDEX_BYTES + frame_bytes
    while pos + rec <= len(out):
        idx = int.from_bytes(out[pos:pos + _INDEX_BYTES], "little")
        if idx < f:
            got[idx] = pos + _INDEX_BYTES
        pos += rec
    return got


def _emit(out, frames, h: int, w: int) -> None:
    for fr in frames:
        if fr.pts is None or not 0 <= fr.pts < 2**32 or (fr.height, fr.width) != (h, w):
            continue
        img = fr.to_ndarray(format="rgb24")
        out.write(int(fr.pts).to_bytes(_INDEX_BYTES, "little"))
        out.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
        out.flush()


def _child() -> None:  # pragma: no cover - exercised through decode()
    import av

    src = sys.stdin.buffer
    hdr = json.loads(src.readline())
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
        try:
            _emit(out, ctx.decode(pkt), h, w)
        except (av.error.FFmpegError, ValueError, MemoryError):
            continue
    try:  # drain the pictures held back for reordering
        _emit(out, ctx.decode(None), h, w)
    except (av.error.FFmpegError, ValueError, MemoryError):
        pass


if __name__ == "__main__":
    _child()
