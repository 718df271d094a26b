"""``threshold: auto``: find SKEM's ``eta_th`` for a target keyframe count.

SKEM is rerun for every trial threshold, but each (keyframe, candidate)
score is computed once: the reruns share a table of scores by frame index
(:class:`~lgvsc.semantic.selectors.SKEM`'s ``memo``), and a rerun reads no
frame whose pairs are all in it, so the bisection costs little more than one
run, also on a clip decoded on demand.
The number of keyframes falls (weakly) as the threshold rises; bisection
over [-1, 1] returns the threshold whose count is closest to the target,
preferring counts not above it (the budget).
"""

from __future__ import annotations

import hashlib

import numpy as np

from .psss import PSSS
from .scorers import Scorer
from .selectors import SKEM, Selection


class MemoScorer(Scorer):
    """Wraps a scorer and remembers every (keyframe, candidate, focus) score.

    Frames are identified by their content (a BLAKE2b digest of their pixels and
    shape): a clip decoded on demand hands out a new array each time it is
    indexed, and a scorer's result depends on the pixels alone.
    """

    def __init__(self, inner: Scorer):
        super().__init__()
        self.inner = inner
        self.cost = inner.cost  # the work actually done
        self._table: dict[tuple, PSSS] = {}

    @staticmethod
    def _id(frame: np.ndarray) -> bytes:
        frame = np.ascontiguousarray(frame)
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((frame.shape, frame.dtype.str)).encode())
        h.update(memoryview(frame).cast("B"))
        return h.digest()

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
    memo: dict = {}  # (keyframe, candidate, focus) -> PSSS, shared by every rerun

    def run(eta):
        return SKEM(scorer, threshold=eta, memo=memo, **skem_options).select(frames)

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
