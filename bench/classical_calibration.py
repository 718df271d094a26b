"""Calibration figures of the classical scorer, and its speed.

Over the synthetic presets (several seeds and sizes) prints the largest
within-segment distance (keyframe = segment start or the frame after it,
candidate = any later frame of the segment) and the smallest cross-boundary
distance (any frame of a segment vs the first frame of the next), per
preset and overall, the distance the scorer maps to S_rel = 0.35, SKEM's
boundary F1 (+-1 frame) on the presets and on bikes' shot cuts, and the
classical scorer's frames per second.

    python bench/classical_calibration.py
"""

from __future__ import annotations

import time

import numpy as np

from lgvsc.semantic.scorers import classical as C
from lgvsc.semantic.selectors import SKEM, boundary_f1 as f1
from lgvsc.sim.synthetic import PRESETS, render_synthetic
from lgvsc.sim.video import VideoSpec, load_video

BIKES_CUTS = (30, 76, 137, 187, 242)


def main():
    within, cross, f1s = {}, {}, []
    for p in PRESETS:
        for seed in range(6):
            for f, h, w in ((64, 128, 224), (48, 128, 128)):
                clip = render_synthetic(p, f, h, w, seed)
                feats = [C.features(x) for x in clip.frames]
                starts = [0, *clip.boundaries, f]
                for s, e in zip(starts[:-1], starts[1:]):
                    for k in range(s, min(s + 2, e)):
                        for j in range(k + 1, e):
                            within[p] = max(within.get(p, 0), C.distance(feats[k], feats[j]))
                    if e < f:
                        for k in range(s, e):
                            cross[p] = min(cross.get(p, 1), C.distance(feats[k], feats[e]))
                sel = SKEM(C.ClassicalScorer()).select(clip.frames)
                f1s.append(f1(sel.keyframes[1:-1], clip.boundaries))
    for p in PRESETS:
        print(f"{p:9s} within-segment max {within[p]:.3f}   cross-boundary min {cross[p]:.3f}")
    print(f"overall   within max {max(within.values()):.3f}   cross min {min(cross.values()):.3f}"
          f"   -> d(S_rel=0.35) = {C.D_AT_035}")
    print(f"SKEM+classical on synthetic: mean F1 {np.mean(f1s):.3f}, min {np.min(f1s):.3f} "
          f"({len(f1s)} clips)")
    bikes = load_video(VideoSpec(source="builtin:bikes"))
    t0 = time.perf_counter()
    sel = SKEM(C.ClassicalScorer()).select(bikes.frames)
    dt = time.perf_counter() - t0
    print(f"bikes keyframes {sel.keyframes}  cut F1 {f1(sel.keyframes[1:-1], BIKES_CUTS):.3f}")
    print(f"classical scorer: {len(bikes.frames) / dt:.0f} frames/s "
          f"({bikes.frames.shape[2]}x{bikes.frames.shape[1]}, SKEM over {len(bikes.frames)} frames)")


if __name__ == "__main__":
    main()
