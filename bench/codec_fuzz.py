"""Corrupted-bitstream fuzz of the H.264 / H.265 receiver, larger than the test.

Encodes a clip, corrupts the bitstream N times per codec (i.i.d. flips at BERs
log-uniform in 1e-6..0.5, byte bursts, truncations) and decodes each in the
isolated decoder. Prints, per codec, the cases run, how many ended ok /
crashed / timed out, that every case returned exactly F frames, and the mean
decode time per case.

    python bench/codec_fuzz.py [--cases 1000] [--frames 16] [--size 96 128]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from lgvsc.sim import codecs
from lgvsc.sim.video import VideoSpec, load_video


def corrupt(data: bytes, rng: np.random.Generator, case: int) -> bytes:
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    kind = case % 3
    if kind == 0:
        bits = bits ^ (rng.random(bits.size) < 10 ** rng.uniform(-6, np.log10(0.5)))
    elif kind == 1:
        bits[rng.integers(0, bits.size, rng.integers(1, 256))] ^= 1
    else:
        cut = rng.integers(0, bits.size)
        bits[cut:] = rng.integers(0, 2, bits.size - cut)
    return np.packbits(bits).tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, nargs=2, default=(96, 128))
    a = ap.parse_args()
    h, w = a.size
    clip = load_video(VideoSpec(source="builtin:carphone", frames=a.frames, size=(h, w), fit="cover"))
    for codec in ("h264", "h265"):
        bs = codecs.encode(clip.frames, codec, 30, 8)
        rng = np.random.default_rng(0)
        status, exact = Counter(), 0
        t0 = time.perf_counter()
        for case in range(a.cases):
            out = codecs.decode(corrupt(bs.data, rng, case), bs.lengths, codec, h, w)
            status[out.status] += 1
            exact += out.frames.shape == (a.frames, h, w, 3)
        dt = (time.perf_counter() - t0) / a.cases
        print(f"{codec}: {a.cases} cases, {dict(status)}, exactly {a.frames} frames in "
              f"{exact}/{a.cases}, {dt * 1e3:.0f} ms per decode")


if __name__ == "__main__":
    main()
