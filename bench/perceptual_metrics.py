"""Cost of the perceptual metrics next to PSNR and SSIM, on one clip, in one run.

Scores the builtin clip bikes (default 250 frames at 128x224) against a noisy copy
(Gaussian noise, sigma 6, fixed seed) with every metric the way the runner does
(:func:`lgvsc.sim.metrics.frame_scores` over :func:`~lgvsc.sim.metrics.paired_chunks`
of the runner's chunk size), one metric at a time, the metrics interleaved within each
of ``--reps`` rounds (so that they share the machine's state), after one warm-up call
each (imports, FFmpeg's probe). It prints the median seconds per 100 frames, that as a
ratio to PSNR's, and the clip's mean value. A metric that cannot score these frames
(unavailable here, or too small for it) gets its reason instead.

    python bench/perceptual_metrics.py [--frames 250] [--size 128 224] [--reps 3]
        [--metrics psnr ssim vmaf ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from lgvsc.sim.metrics import METRICS, frame_scores, paired_chunks
from lgvsc.sim.units import metric_chunk_frames
from lgvsc.sim.video import VideoSpec, load_video

DEFAULT = ["psnr", "ssim", "vmaf", "xpsnr", "haarpsi", "vif", "fsim", "gmsd", "ms_gmsd",
           "mdsi", "vsi", "dss", "iw_ssim"]


def timed(metric, ref: np.ndarray, test: np.ndarray, chunk: int) -> tuple[float, float]:
    """(wall seconds, clip mean) of ``metric`` over the clip in runner-sized chunks."""
    pairs = paired_chunks((ref[i:i + chunk] for i in range(0, len(ref), chunk)),
                          (test[i:i + chunk] for i in range(0, len(test), chunk)))
    t0 = time.perf_counter()
    values = frame_scores({metric.name: metric}, pairs)[metric.name]
    return time.perf_counter() - t0, float(np.mean(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--size", type=int, nargs=2, default=[128, 224], metavar=("H", "W"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--metrics", nargs="+", default=DEFAULT)
    a = ap.parse_args()
    if "psnr" not in a.metrics:
        a.metrics = ["psnr", *a.metrics]

    video = load_video(VideoSpec(source="builtin:bikes", frames=a.frames, size=a.size))
    ref = np.concatenate(list(video.chunks(64)))
    rng = np.random.default_rng(0)
    test = np.clip(np.rint(ref + rng.normal(0, 6, ref.shape)), 0, 255).astype(np.uint8)
    n, h, w, _ = ref.shape
    chunk = metric_chunk_frames(h, w)

    import torch

    print(f"# builtin:bikes, {n} frames of {h}x{w} vs Gaussian noise sigma 6 (seed 0); "
          f"chunks of {chunk} frames (the runner's); median of {a.reps} rounds; "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    metrics, skipped = {}, {}
    for name in a.metrics:
        m = METRICS.get(name)()
        reason = m.unavailable_reason()
        if reason is None:
            try:
                timed(m, ref[:4], test[:4], chunk)  # warm-up: imports, FFmpeg's probe
            except ValueError as e:
                reason = str(e)
        if reason:
            skipped[name] = reason
        else:
            metrics[name] = m
    times: dict[str, list[float]] = {name: [] for name in metrics}
    means: dict[str, float] = {}
    for _ in range(a.reps):
        for name, m in metrics.items():
            dt, means[name] = timed(m, ref, test, chunk)
            times[name].append(dt)
    per100 = {name: statistics.median(t) / n * 100 for name, t in times.items()}
    print(f"{'metric':<9} {'s/100 frames':>12} {'x PSNR':>8} {'mean':>10}")
    for name in a.metrics:
        if name in skipped:
            print(f"{name:<9} {'-':>12} {'-':>8} {'-':>10}  ({skipped[name]})")
        else:
            print(f"{name:<9} {per100[name]:>12.4f} {per100[name] / per100['psnr']:>8.1f} "
                  f"{means[name]:>10.4f}")


if __name__ == "__main__":
    main()
