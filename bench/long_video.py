"""Peak memory and time of long clips: does lgvsc stay flat in the clip's length?

Makes procedural 640x360 clips of 1, 2 and 5 minutes at 25 fps
(:func:`lgvsc.sim.longclip.write_clip`, cached under
``results/bench_long_video/``), then runs, each in a fresh process, ``lgvsc
keyframes`` (SKEM, classical scorer, threshold 0.35) and one trial of
``softcast`` (target_cbr 0.02), ``codec-ldpc`` (H.264 QP 37, GOP 12, QPSK rate
1/2) and the embedded ``lgvsc`` scheme (SKEM+DSA, target_cbr 1.4e-3 with
keyframes of CBR 0.05: K grows with the clip, one keyframe per ~36 frames) at
8 dB AWGN through ``lgvsc run`` (PSNR). It prints one row per (job, length):
the process's peak RSS (``wait4``'s ``ru_maxrss``: the largest of the process
and the children it waited for, e.g. the H.264 decoder) and wall time per
minute of video, and per job the 5-min / 1-min peak ratio (goal: <= 1.2, and
every peak below 2 GiB).

    python bench/long_video.py [--minutes 1 2 5] [--size 360 640]
        [--jobs keyframes softcast codec-ldpc lgvsc] [--ten-minute-720p]

``--ten-minute-720p`` adds a 10-minute 1280x720 clip through ``softcast`` and
``lgvsc`` (long: tens of minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lgvsc.sim.longclip import write_clip

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "bench_long_video"
FPS = 25
SCHEMES = {
    "softcast": {"name": "softcast", "type": "softcast", "target_cbr": 0.02},
    "codec-ldpc": {"name": "codec-ldpc", "type": "codec-ldpc", "codec": "h264", "qp": 37,
                   "gop": 12, "modulation": "qpsk", "rate": 0.5},
    "lgvsc": {"name": "lgvsc", "type": "lgvsc", "preset": "skem-dsa", "target_cbr": 1.4e-3,
              "keyframe_cbr": 0.05},
}


def clip(minutes: float, h: int, w: int) -> Path:
    path = OUT / f"clip_{minutes:g}min_{h}x{w}.mp4"
    if not path.exists():
        t0 = time.perf_counter()
        write_clip(path, int(minutes * 60 * FPS), h, w, FPS, seed=1)
        print(f"# wrote {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


def measure(cmd: list[str]) -> tuple[int, float, int]:
    """(peak RSS bytes, wall seconds, exit code) of ``cmd`` in a fresh process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=OUT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    return usage.ru_maxrss * 1024, time.perf_counter() - t0, os.waitstatus_to_exitcode(status)


def command(job: str, video: Path, minutes: float) -> list[str]:
    lgvsc = [sys.executable, "-m", "lgvsc.sim.cli"]
    if job == "keyframes":
        return lgvsc + ["keyframes", video.name, "--json"]
    name = f"{job}_{video.stem}"
    sc = {"name": name, "kind": "video", "seed": 1, "videos": [{"source": video.name}],
          "channel": {"type": "awgn", "snr_db": [8.0]}, "schemes": [SCHEMES[job]],
          "metrics": ["psnr"], "monte_carlo": {"trials": 1},
          "executor": {"type": "local", "workers": 1}}
    path = OUT / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    shutil.rmtree(OUT / "runs" / name, ignore_errors=True)  # a stored unit would be resumed
    return lgvsc + ["run", path.name, "--out", f"runs/{name}", "--no-progress"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5])
    ap.add_argument("--size", type=int, nargs=2, default=[360, 640], metavar=("H", "W"))
    ap.add_argument("--jobs", nargs="+", default=["keyframes", *SCHEMES],
                    choices=["keyframes", *SCHEMES])
    ap.add_argument("--ten-minute-720p", action="store_true")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    runs = [(m, *a.size, job) for job in a.jobs for m in a.minutes]
    if a.ten_minute_720p:
        runs += [(10, 720, 1280, job) for job in ("softcast", "lgvsc")]
    print(f"{'job':<11} {'clip':>16} {'peak RSS':>10} {'wall s':>8} {'s/min':>7}  exit")
    peaks: dict = {}
    for minutes, h, w, job in runs:
        video = clip(minutes, h, w)
        rss, wall, rc = measure(command(job, video, minutes))
        peaks[(job, h, w, minutes)] = rss
        print(f"{job:<11} {f'{minutes:g} min {h}x{w}':>16} {rss / 2**30:>7.2f} GiB "
              f"{wall:>8.1f} {wall / minutes:>7.1f}  {rc}", flush=True)
    lo, hi = min(a.minutes), max(a.minutes)
    for job in a.jobs:
        first, last = peaks.get((job, *a.size, lo)), peaks.get((job, *a.size, hi))
        if first and last and hi > lo:
            print(f"# {job}: peak at {hi:g} min / at {lo:g} min = {last / first:.2f}x")


if __name__ == "__main__":
    main()
