"""``threshold: auto``: find SKEM's ``eta_th`` for a target keyframe count.

SKEM is rerun for every trial threshold, but each (keyframe, candidate)
score is computed once: a memoising wrapper around the scorer serves
repeats from a table, so the bisection costs little more than one run.
The number of keyframes falls (weakly) as the threshold rises; bisection
over [-1, 1] returns the threshold whose count is closest to the target,
preferring counts not above it (the budget).
"""

from __future__ import annotations

import numpy as np

from .psss import PSSS
from .scorers import Scorer
from .selectors import SKEM, Selection


class MemoScorer(Scorer):
    """Wraps a scorer and remembers every (keyframe, candidate, focus) score.

    Frames are identified by where their pixels live (the data address of the
    ``frames[i]`` view), which is the same every time SKEM indexes the clip.
    """

    def __init__(self, inner: Scorer):
        super().__init__()
        self.inner = inner
        self.cost = inner.cost  # the work actually done
        self._table: dict[tuple, PSSS] = {}

    @staticmethod
    def _id(frame: np.ndarray) -> int:
        return frame.__array_interface__["data"][0]

    def score(self, key, candidates, focus=None):
        k = self._id(key)
        todo = [c for c in candidates if (k, self._id(c), focus) not in self._table]
        if todo:
            for c, p in zip(todo, self.inner.score(key, todo, focus)):
                self._table[(k, self._id(c), focus)] = p
        return [self._table[(k, self._id(c), focus)] for c in candidates]


def calibrate_threshold(frames: np.ndarray, scorer: Scorer, target_keyframes: int,
                        iterations: int = 30, **skem_options) -> tuple[float, Selection]:
    """(eta_th, selection) whose keyframe count best meets ``target_keyframes``.

    ``frames`` uint8 [F, H, W, 3]; ``skem_options`` are :class:`SKEM`'s other settings.
    """
    if target_keyframes < 1:
        raise ValueError(f"target_keyframes must be >= 1, got {target_keyframes}")
    memo = MemoScorer(scorer)

    def run(eta):
        return SKEM(memo, threshold=eta, **skem_options).select(frames)

    lo, hi = -1.0, 1.0
    best = (1.0, run(1.0))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        sel = run(mid)
        n = len(sel.keyframes)
        if _better(n, len(best[1].keyframes), target_keyframes):
            best = (mid, sel)
        if n == target_keyframes:
            break
        lo, hi = (mid, hi) if n > target_keyframes else (lo, mid)
    return best


def _better(n: int, m: int, target: int) -> bool:
    """Is a count of ``n`` a better match than ``m``? Closest first, then not above."""
    return (abs(n - target), n > target) < (abs(m - target), m > target)


class CalibratedSKEM:
    """SKEM with ``threshold: auto``: ``eta_th`` calibrated per clip so that it
    yields ``target_keyframes`` (the closest count reachable)."""

    def __init__(self, scorer: Scorer, target_keyframes: int, **skem_options):
        if target_keyframes < 1:
            raise ValueError(f"target_keyframes must be >= 1, got {target_keyframes}")
        self.scorer, self.target, self.options = scorer, target_keyframes, skem_options

    def select(self, frames: np.ndarray) -> Selection:
        return calibrate_threshold(frames, self.scorer, self.target, **self.options)[1]
