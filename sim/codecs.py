"""H.264 / H.265 through PyAV (libx264 / libx265), and a crash-proof decoder.

Encoding: low-delay (no B-frames, one packet per frame), constant QP, GOP =
keyint, single-threaded so the bitstream is deterministic.

Decoding runs in a child process (``python -m lgvsc.sim.codecs``) under a
time limit: a corrupted bitstream can make FFmpeg spin or crash, and neither
may take the simulation down. The receiver is given the packet lengths (the
framing a container or RTP would carry); their payload bits arrive with
whatever errors the channel left. Packet ``i`` yields frame ``i``; a packet
that does not decode to a frame of the right size is concealed by repeating
the last good frame (mid-grey before the first one). Exactly F frames come
out, always.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

ENCODERS = {"h264": "libx264", "h265": "libx265"}
DECODERS = {"h264": "h264", "h265": "hevc"}
GREY = 128


@dataclass
class Bitstream:
    packets: list[bytes]

    @property
    def lengths(self) -> list[int]:
        return [len(p) for p in self.packets]

    @property
    def data(self) -> bytes:
        return b"".join(self.packets)

    @property
    def num_bits(self) -> int:
        return 8 * sum(self.lengths)


def encode(frames: np.ndarray, codec: str, qp: int, gop: int, speed: str = "medium",
           pix_fmt: str = "yuv420p") -> Bitstream:
    """uint8 RGB [F, H, W, 3] -> one packet per frame (Annex B elementary stream)."""
    import av

    if codec not in ENCODERS:
        raise ValueError(f"codec must be one of {', '.join(ENCODERS)}, got {codec!r}")
    if not 0 <= qp <= 51:
        raise ValueError(f"qp must be in [0, 51], got {qp}")
    if gop < 1:
        raise ValueError(f"gop must be >= 1, got {gop}")
    f, h, w, _ = frames.shape
    ctx = av.CodecContext.create(ENCODERS[codec], "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, pix_fmt
    ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25, 1)
    if codec == "h264":
        ctx.options = {"preset": speed, "qp": str(qp), "g": str(gop), "bf": "0",
                       "threads": "1", "x264-params": "log-level=none"}
    else:
        ctx.options = {"preset": speed, "x265-params": (
            f"qp={qp}:keyint={gop}:bframes=0:frame-threads=1:pools=none:log-level=none")}
    packets: list[bytes] = []
    for i, img in enumerate(frames):
        fr = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        fr.pts = i
        packets += [bytes(p) for p in ctx.encode(fr.reformat(format=pix_fmt))]
    packets += [bytes(p) for p in ctx.encode(None)]
    if len(packets) != f:
        raise RuntimeError(f"{codec}: expected one packet per frame, got {len(packets)} for {f}")
    return Bitstream(packets)


@dataclass
class Decoded:
    frames: np.ndarray  # uint8 [F, H, W, 3]
    decoded: int  # frames that came out of the decoder
    concealed: int  # F - decoded
    status: str  # "ok" | "timeout" | "crashed"


def decode(data: bytes, lengths: list[int], codec: str, height: int, width: int,
           timeout_s: float | None = None) -> Decoded:
    """Decode a (possibly corrupted) bitstream in a child process; never raises on bad data."""
    f = len(lengths)
    timeout_s = timeout_s if timeout_s is not None else 10.0 + 0.5 * f
    header = json.dumps({"codec": codec, "lengths": lengths, "height": height, "width": width})
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
    frame_bytes = height * width * 3
    frames = np.empty((f, height, width, 3), np.uint8)
    last, good, pos = None, 0, 0
    for i in range(f):  # stream: flag byte, then the frame when the flag is 1
        ok = pos < len(out) and out[pos] == 1 and pos + 1 + frame_bytes <= len(out)
        if ok:
            last = np.frombuffer(out, np.uint8, frame_bytes, pos + 1).reshape(height, width, 3)
            good += 1
        pos += 1 + (frame_bytes if ok else 0)
        frames[i] = last if last is not None else GREY
    return Decoded(frames, good, f - good, status)


def _child() -> None:  # pragma: no cover - exercised through decode()
    import av

    src = sys.stdin.buffer
    hdr = json.loads(src.readline())
    h, w, lengths = hdr["height"], hdr["width"], hdr["lengths"]
    out = sys.stdout.buffer
    ctx = av.CodecContext.create(DECODERS[hdr["codec"]], "r")
    ctx.thread_count = 1
    ctx.options = {"flags2": "+showall", "err_detect": "ignore_err"}
    for n in lengths:
        chunk = src.read(n)
        img = None
        try:
            frames = ctx.decode(av.Packet(chunk)) if chunk else []
            if frames:
                fr = frames[-1]
                if (fr.height, fr.width) == (h, w):
                    img = fr.to_ndarray(format="rgb24")
        except (av.error.FFmpegError, ValueError, MemoryError):
            img = None
        if img is None:
            out.write(b"\x00")
        else:
            out.write(b"\x01")
            out.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
        out.flush()


if __name__ == "__main__":
    _child()
