"""Frame sequences that need not be in memory.

A stage of the semantic chain takes its frames as a *frame sequence*: a uint8
``[F, H, W, 3]`` array, or any read-only object with ``len``, ``shape``,
``dtype``, ``ndim``, ``frames[i]`` (one frame) and ``frames[a:b]`` (an array
of those frames), such as a clip decoded on demand from a file. A stage reads
the frames it needs by index and never asks for the whole clip at once.
:func:`window` cuts a segment out of a sequence without reading it.
"""

from __future__ import annotations

import numpy as np


class FrameWindow:
    """Frames ``[lo, hi)`` of a frame sequence, read only when indexed.

    ``window[i]`` is ``frames[lo + i]``; ``window[a:b]`` reads those frames into an
    array; iterating reads one frame at a time."""

    ndim = 4

    def __init__(self, frames, lo: int, hi: int):
        n = len(frames)
        lo, hi = max(0, min(lo, n)), max(0, min(hi, n))
        self.frames, self.lo, self.hi = frames, lo, max(lo, hi)
        self.shape = (self.hi - self.lo, *frames.shape[1:])
        self.dtype = frames.dtype

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, key):
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"frame {key} out of range for {n} frames")
            return self.frames[self.lo + i]
        if isinstance(key, slice):
            idx = range(*key.indices(n))
            if idx.step == 1:
                return self.frames[self.lo + idx.start:self.lo + max(idx.stop, idx.start)]
            key = list(idx)
        return np.stack([self[int(i)] for i in key]) if len(key) else \
            np.empty((0, *self.shape[1:]), self.dtype)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        out = self.frames[self.lo:self.hi]
        return np.asarray(out) if dtype is None else np.asarray(out, dtype)


def window(frames, lo: int, hi: int):
    """Frames ``[lo, hi)`` of ``frames``: a view of an array, else a :class:`FrameWindow`
    (nothing is read)."""
    if isinstance(frames, np.ndarray):
        return frames[lo:hi]
    return FrameWindow(frames, lo, hi)

