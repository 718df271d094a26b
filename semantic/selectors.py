"""Keyframe selectors (Sec. II-C of the paper), registered by name.

* ``skim``: N equal segments; each keyframe is the first frame of its
  segment, and the last frame is a keyframe too.
* ``skem``: autoregressive. Candidate ``i`` is scored against the latest
  keyframe ``k``; it becomes a keyframe when ``S_rel > threshold``. The first
  and the last frames are always keyframes.

A budget that affords fewer keyframes than a selection holds cuts it with
:func:`cap_keyframes`: the first and last frames stay, and of the others the
ones SKEM found most different from their preceding keyframe (highest
``S_rel``, the earlier on ties) are kept.

Keyframe ``k_n`` and ``k_{n+1}`` bound segment ``n``: its frames are
``k_n .. k_{n+1}`` (the boundary frame is shared; the receiver drops the
duplicate), so K keyframes make K - 1 segments (one segment of one frame
for a 1-frame clip).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..link.registry import Registry
from .psss import DEFAULT_FOCUS
from .scorers import Scorer

SELECTORS: Registry[type] = Registry("selector", check_weights=True)


@dataclass
class Selection:
    """Keyframe indices (0-based, ascending, first and last frame included),
    every score computed: (candidate, keyframe it was compared with, s_rel),
    the scorers' cost, the threshold used (None for SKIM) and the keyframes a
    budget cap dropped (:func:`cap_keyframes`)."""

    keyframes: list[int]
    scores: list[tuple[int, int, float]] = field(default_factory=list)
    cost: dict = field(default_factory=dict)
    threshold: float | None = None
    dropped: list[int] = field(default_factory=list)

    def segments(self) -> list[tuple[int, int]]:
        """(first, last) frame of every segment, both keyframes, inclusive."""
        k = self.keyframes
        return [(k[0], k[0])] if len(k) == 1 else list(zip(k[:-1], k[1:]))


def _check_frames(frames: np.ndarray) -> int:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if len(frames) < 1:
        raise ValueError("frames must hold at least one frame")
    return len(frames)


@SELECTORS.register("skim")
class SKIM:
    """:param segments: number of equal segments N (fewer if the clip is shorter)."""

    def __init__(self, segments: int = 4):
        if segments < 1:
            raise ValueError(f"segments must be >= 1, got {segments}")
        self.n = segments

    def select(self, frames: np.ndarray) -> Selection:
        f = _check_frames(frames)
        n = min(self.n, max(f - 1, 1))
        starts = sorted({(i * f) // n for i in range(n)})
        return Selection(sorted(set(starts) | {f - 1}))


@SELECTORS.register("skem")
class SKEM:
    """Semantic keyframe extraction with a scorer.

    :param scorer: a :class:`~lgvsc.semantic.scorers.Scorer` (``vlm``, ``classical``...).
    :param threshold: ``eta_th``; a candidate with ``S_rel > threshold`` becomes a keyframe.
    :param stride: candidate stride in frames.
    :param min_len: smallest distance between consecutive keyframes (the last frame excepted).
    :param max_len: a keyframe is forced this many frames after the last one (None = never).
    :param focus: the semantic focus text of the PSSS prompt.
    :param batch: candidates scored per scorer call (later ones are discarded, but
        counted, once a keyframe is found).
    :param prefilter: optional cheap scorer; candidates it scores at or below
        ``prefilter_threshold`` are taken as similar without asking ``scorer``
        (candidate pruning). Its cost is in ``Selection.cost["prefilter"]``.
    :param memo: optional dict ``{(keyframe, candidate, focus): PSSS}`` of the
        ``scorer``'s results by frame index, read and filled (reruns on the same
        clip share it: a pair in it is not scored again and its frames are not read).

    ``frames`` may be any frame sequence (:mod:`~lgvsc.semantic.frames`): SKEM reads
    the latest keyframe and the candidates of one batch at a time.
    """

    def __init__(self, scorer: Scorer, threshold: float = 0.35, stride: int = 1, min_len: int = 1,
                 max_len: int | None = None, focus: str = DEFAULT_FOCUS, batch: int = 1,
                 prefilter: Scorer | None = None, prefilter_threshold: float | None = None,
                 memo: dict | None = None):
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [-1, 1], got {threshold}")
        for name, v in (("stride", stride), ("min_len", min_len), ("batch", batch)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if max_len is not None and max_len < min_len:
            raise ValueError(f"max_len must be >= min_len ({min_len}), got {max_len}")
        if (prefilter is None) != (prefilter_threshold is None):
            raise ValueError("prefilter and prefilter_threshold go together")
        self.scorer, self.threshold, self.stride = scorer, threshold, stride
        self.min_len, self.max_len, self.focus, self.batch = min_len, max_len, focus, batch
        self.prefilter, self.prefilter_threshold = prefilter, prefilter_threshold
        self.memo = memo

    def _candidates(self, key: int, start: int, last: int) -> list[int]:
        """Next batch of candidates after ``key``, from ``start``, below the last frame."""
        out, i = [], max(start, key + self.min_len)
        while i < last and len(out) < self.batch:
            if self.max_len is not None and i - key > self.max_len:
                break
            out.append(i)
            i += self.stride
        return out

    def _first_change(self, frames, key, cands, scores) -> int | None:
        kept = cands
        if self.prefilter is not None:
            pre = self.prefilter.score(frames[key], [frames[c] for c in cands], self.focus)
            kept = [c for c, p in zip(cands, pre) if p.s_rel > self.prefilter_threshold]
        if not kept:
            return None
        for c, p in zip(kept, self._scores(frames, key, kept)):
            scores.append((c, key, p.s_rel))
            if p.s_rel > self.threshold:
                return c
        return None

    def _scores(self, frames, key: int, cands: list[int]) -> list:
        """The scorer's PSSS of every candidate against ``key``; with a ``memo``,
        only the pairs not in it are scored (their frames alone are read)."""
        if self.memo is None:
            return self.scorer.score(frames[key], [frames[c] for c in cands], self.focus)
        todo = [c for c in cands if (key, c, self.focus) not in self.memo]
        if todo:
            res = self.scorer.score(frames[key], [frames[c] for c in todo], self.focus)
            self.memo.update({(key, c, self.focus): p for c, p in zip(todo, res)})
        return [self.memo[(key, c, self.focus)] for c in cands]

    def select(self, frames: np.ndarray) -> Selection:
        f = _check_frames(frames)
        keys, scores, key, nxt = [0], [], 0, self.stride
        while True:
            cands = self._candidates(key, nxt, f - 1)
            forced = self.max_len is not None and key + self.max_len < f - 1 and (
                not cands or cands[-1] >= key + self.max_len)
            hit = self._first_change(frames, key, cands, scores) if cands else None
            if hit is None and forced:
                hit = key + self.max_len
            if hit is not None:
                keys.append(hit)
                key, nxt = hit, hit + self.stride
            elif not cands:
                break
            else:
                nxt = cands[-1] + self.stride
        if keys[-1] != f - 1:
            keys.append(f - 1)
        cost = {"scorer": self.scorer.cost.as_dict()}
        if self.prefilter is not None:
            cost["prefilter"] = self.prefilter.cost.as_dict()
        return Selection(keys, scores, cost, self.threshold)


def cap_keyframes(sel: Selection, most: int) -> Selection:
    """``sel`` with at most ``most`` (>= 2) keyframes: the first and last frames are
    kept, and of the others the ``most - 2`` with the highest ``S_rel`` against the
    keyframe before them when they were selected (a keyframe forced by ``max_len``
    without such a score ranks last), the earlier on ties. The dropped ones are in
    :attr:`Selection.dropped`; ``sel`` itself is not changed."""
    if most < 2:
        raise ValueError(f"most must be >= 2 (first and last frame), got {most}")
    keys = sel.keyframes
    if len(keys) <= most:
        return sel
    score = {(c, k): s for c, k, s in sel.scores}
    inner = [(score.get((c, prev), -np.inf), -i, c)
             for i, (prev, c) in enumerate(zip(keys[:-2], keys[1:-1]))]
    kept = {c for _, _, c in sorted(inner, reverse=True)[:most - 2]}
    new = [keys[0], *sorted(kept), keys[-1]]
    return Selection(new, sel.scores, sel.cost, sel.threshold,
                     sel.dropped + [c for c in keys if c not in new])


def boundary_f1(predicted, truth, tol: int = 1) -> float:
    """F1 of predicted segment starts against true ones, matched one-to-one within
    +-``tol`` frames (1.0 when both are empty)."""
    used, tp = set(), 0
    for t in truth:
        hit = next((p for p in predicted if abs(p - t) <= tol and p not in used), None)
        if hit is not None:
            used.add(hit)
            tp += 1
    if not predicted and not truth:
        return 1.0
    if tp == 0:
        return 0.0
    prec, rec = tp / len(predicted), tp / len(truth)
    return 2 * prec * rec / (prec + rec)
