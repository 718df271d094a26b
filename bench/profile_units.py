"""Where a unit's time goes: cProfile of one link unit, one ``codec-ldpc`` trial and
one ``lgvsc`` trial, with Sionna's LDPC decoder and with the fast one.

Each unit runs once to build and warm up, then once under cProfile; the script
prints its wall time and the functions with the most own time (grouped by
stage name where one is known), side by side for both decoders.

    python bench/profile_units.py [--top 8] [--threads 2] [--snr 10]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from lgvsc.sim.scenario import Scenario
from lgvsc.sim.units import Unit, execute_unit

LINK = {"name": "prof-link", "kind": "link", "channel": {"type": "awgn", "snr_db": [1.5]},
        "schemes": [{"name": "L", "type": "ldpc5g", "k": 1024, "rate": 0.5,
                     "modulation": "qpsk"}],
        "monte_carlo": {"batch_blocks": 200, "max_batches": 5, "target_block_errors": None}}


def video(schemes, snr):
    return {"name": "prof-video", "kind": "video", "seed": 1,
            "videos": [{"source": "builtin:bikes", "size": [128, 224], "frames": 64}],
            "channel": {"type": "awgn", "snr_db": [snr]}, "schemes": schemes,
            "metrics": ["psnr", "ssim"]}


def cases(decoder: str, snr: float):
    codec = {"name": "C", "type": "codec-ldpc", "codec": "h264", "preset": "paper-table1",
             "decoder": decoder}
    lg = {"name": "G", "type": "lgvsc", "preset": "skem-dsa", "target_cbr": 1.4e-3,
          "keyframes": 3, "decoder": decoder}
    link = dict(LINK, schemes=[dict(LINK["schemes"][0], decoder=decoder)])
    yield "link unit (1000 codewords, 1.5 dB)", link, Unit("L", 1.5)
    yield f"codec-ldpc trial (h264, {snr:g} dB)", video([codec], snr), Unit(
        "C", snr, "bikes", 0)
    yield f"lgvsc trial (skem-dsa, {snr:g} dB)", video([lg], snr), Unit("G", snr, "bikes", 0)


def profile(data: dict, unit: Unit, top: int):
    sc = Scenario.model_validate(data)
    blob = sc.model_dump_json()
    if unit.video:
        unit = Unit(unit.scheme, unit.snr_db, sc.videos[0].label(), unit.trial)
    execute_unit(blob, unit)  # build, compile, load
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    execute_unit(blob, unit)
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    lines = [f"    {tt:7.3f} s own  {ct:7.3f} s cum  {_name(fn)}"
             for fn, (_, _, tt, ct, _) in rows]
    return wall, lines


def _name(fn) -> str:
    path, line, func = fn
    short = path.split("site-packages/")[-1].split("/work/main/")[-1]
    return f"{func} ({short}:{line})" if line else func


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--snr", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for decoder in ("sionna", "fast"):
        for title, data, unit in cases(decoder, a.snr):
            wall, lines = profile(data, unit, a.top)
            print(f"[{decoder}] {title}: {wall:.2f} s", flush=True)
            print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
