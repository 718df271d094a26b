"""``classical``: the embedded scorer, from image statistics (no weights).

For two frames (uint8 RGB), both reduced to 64 x 64 (area interpolation):

* ``d_hist``: Hellinger distance between joint HSV colour histograms
  (8 hue x 4 saturation x 4 value bins), in [0, 1]; insensitive to motion.
* ``d_struct``: ``(1 - NCC) / 2`` of 4 x 4 greyscale block means (NCC =
  normalised cross-correlation), in [0, 1]; sees coarse layout changes that
  keep the colours, yet tolerates camera pans.

``d = W_HIST d_hist + (1 - W_HIST) d_struct`` is mapped to the PSSS scale
``S_rel = tanh(SLOPE (d - CENTER))`` in (-1, 1), higher = more different, so
it plugs into SKEM in place of a VLM. ``CENTER`` is calibrated on the
synthetic presets so that the paper's threshold ``eta_th = 0.35`` falls
between within-segment pairs and cross-boundary pairs: over 6 presets x 6
seeds x 2 sizes, within-segment distances reach 0.19 and cross-boundary
ones start at 0.27, so ``d = 0.22`` maps to ``S_rel = 0.35``
(``bench/classical_calibration.py`` prints these figures).
"""

from __future__ import annotations

import math

import numpy as np

from ..psss import PSSS
from . import SCORERS, Scorer

THUMB = 64
GRID = 4
W_HIST = 0.9
SLOPE = 8.0
#: distance at which S_rel = 0.35 (calibrated, see module docstring)
D_AT_035 = 0.22
CENTER = D_AT_035 - math.atanh(0.35) / SLOPE


def features(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(normalised HSV histogram [128], zero-mean unit-norm 4x4 grey block means [16])."""
    import cv2

    small = cv2.resize(frame, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    hist = hist / max(hist.sum(), 1e-12)
    grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (GRID, GRID),
                      interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    grey -= grey.mean()
    n = np.linalg.norm(grey)
    return hist, (grey / n if n > 1e-9 else grey)


def distance(fa, fb) -> float:
    """Combined distance in [0, 1] between two :func:`features` results."""
    (ha, ga), (hb, gb) = fa, fb
    d_hist = math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(ha * hb)))))
    d_struct = (1.0 - float(ga @ gb)) / 2.0
    return W_HIST * d_hist + (1 - W_HIST) * d_struct


@SCORERS.register("classical")
class ClassicalScorer(Scorer):
    """Colour-histogram + layout distance, on the PSSS scale. Counts no model cost.

    :param d_at_035: distance mapped to ``S_rel = 0.35`` (the calibration).
    :param slope: steepness of the tanh map.
    """

    def __init__(self, d_at_035: float = D_AT_035, slope: float = SLOPE):
        super().__init__()
        if not 0 < d_at_035 < 1:
            raise ValueError(f"d_at_035 must be in (0, 1), got {d_at_035}")
        if not slope > 0:
            raise ValueError(f"slope must be > 0, got {slope}")
        self.center = d_at_035 - math.atanh(0.35) / slope
        self.slope = slope
        self._cache: dict[int, tuple] = {}  # id(frame) -> (frame, features)

    #: frames whose features are remembered (SKEM asks for the latest keyframe's again
    #: and again; a decoded-on-demand clip hands out new arrays, which the cache holds)
    CACHE = 16

    def _features(self, frame: np.ndarray):
        key = id(frame)
        hit = self._cache.get(key)
        if hit is None or hit[0] is not frame:
            if len(self._cache) >= self.CACHE:  # it holds the frames: a few, not a clip
                self._cache.clear()
            hit = (frame, features(frame))
            self._cache[key] = hit
        return hit[1]

    def s_rel(self, d: float) -> float:
        return math.tanh(self.slope * (d - self.center))

    def score_batch(self, key, candidates, focus):
        fk = self._features(key)
        return [PSSS.from_s_rel(self.s_rel(distance(fk, self._features(c)))) for c in candidates]
