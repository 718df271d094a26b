"""Short clips through every embedded video scheme: the outputs the streaming
rewrite must reproduce bit for bit (``tests/data/short_clips.json``, recorded
with the whole-clip implementation at commit f22797d).

``python tests/short_clips.py`` rewrites the file (only after a deliberate,
explained change of results)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "short_clips.json"

VIDEOS = [{"source": "synthetic:objects", "frames": 40, "size": [64, 96], "seed": 3},
          {"source": "builtin:carphone", "frames": 30, "start": 5, "size": [72, 88]}]
SCHEMES = [
    {"name": "h264", "type": "codec-ldpc", "codec": "h264", "qp": 30, "gop": 12},
    {"name": "h264-cliff", "type": "codec-ldpc", "codec": "h264", "qp": 30, "gop": 12,
     "modulation": "qam16", "rate": 0.75},
    {"name": "h265-b", "type": "codec-ldpc", "codec": "h265", "qp": 32, "gop": 16,
     "bframes": "preset", "charge": "container"},
    {"name": "h264-cbr", "type": "codec-ldpc", "codec": "h264", "target_cbr": 0.06},
    {"name": "softcast", "type": "softcast", "target_cbr": 0.05},
    {"name": "softcast-g8", "type": "softcast", "target_cbr": 0.02, "gop": 8},
    {"name": "kf-jscc", "type": "keyframe-jscc", "codec": {"type": "softcast-image"},
     "every": 4, "target_cbr": 0.02},
    {"name": "skim-sfa", "type": "lgvsc", "preset": "skim-sfa", "target_cbr": 0.01,
     "keyframes": 3},
    {"name": "skem-dsa", "type": "lgvsc", "preset": "skem-dsa", "target_cbr": 0.01,
     "keyframes": 4},
]
CHANNELS = {"awgn": {"type": "awgn", "snr_db": [1.0, 8.0]},
            "rayleigh": {"type": "rayleigh", "coherence": 7, "snr_db": [6.0]}}


def scenario(channel: str) -> dict:
    return {"name": f"short-{channel}", "kind": "video", "seed": 5, "videos": VIDEOS,
            "channel": CHANNELS[channel], "schemes": SCHEMES,
            "metrics": ["psnr", "ssim", "ms_ssim"], "monte_carlo": {"trials": 1}}


def received_bytes(tx) -> bytes:
    """The received frames of a transmission, as one byte string."""
    frames = tx.frames
    if isinstance(frames, np.ndarray):
        return np.ascontiguousarray(frames).tobytes()
    return b"".join(np.ascontiguousarray(c).tobytes() for c in frames)


def outcomes(channel: str) -> dict:
    """{unit id: what it produced} for every unit of ``scenario(channel)``."""
    from lgvsc.sim import units as U
    from lgvsc.sim.scenario import validate

    sc = validate(scenario(channel))
    blob = sc.model_dump_json()
    out = {}
    for unit in U.plan_units(sc):
        row = U.execute_unit(blob, unit)
        scheme = U._scheme(blob, unit.scheme)
        _, gen, chan = U._context(U._scenario(blob), unit)
        tx = scheme.transmit(U._video(blob, unit.video), chan, unit.snr_db, gen)
        out[unit.unit_id] = dict(
            frames=hashlib.sha256(received_bytes(tx)).hexdigest(),
            metrics=row["metrics"], channel_uses=row["channel_uses"], failed=row["failed"],
            counts={k: row[k] for k in ("bits", "bit_errors", "blocks", "block_errors",
                                         "raw_bits", "raw_bit_errors")})
    return out


if __name__ == "__main__":
    result = {ch: outcomes(ch) for ch in CHANNELS}
    DATA.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DATA} ({sum(map(len, result.values()))} units)", file=sys.stderr)
