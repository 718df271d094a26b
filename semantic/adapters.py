"""Adapters between a world model's frame counts and a segment's (Sec. II-D).

* ``dsa`` (dynamic semantic-aware adapter): the latent length follows each
  segment. The segment's ``n`` frames are rounded up to the model's valid
  count, the last keyframe is placed at frame ``n - 1`` when the model can
  place keyframes anywhere (the frames after it are dropped), otherwise it
  sits at the end and the output is resampled in time to ``n`` frames.
* ``sfa`` (static feature adapter): one fixed frame count for every segment;
  generate it, then resample in time to the segment's length.

With SKIM's equal segments both behave the same, as the paper notes, when
the fixed length is the segment length: the ``lgvsc`` scheme's
``sfa_length: auto`` (its default) sets it to the world model's valid length
for SKIM's segment length ``ceil((F - 1) / (K - 1)) + 1``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..link.registry import Registry
from .world_models import SegmentRequest, WorldModel

ADAPTERS: Registry[type] = Registry("adapter", check_weights=True)


def resample(frames: np.ndarray, n: int) -> np.ndarray:
    """Nearest-frame resampling of [L, ...] to ``n`` frames, keeping both ends."""
    return frames[resample_indices(len(frames), n)]


def resample_indices(length: int, n: int) -> np.ndarray:
    """Which of ``length`` frames each of ``n`` resampled frames repeats (ascending)."""
    return np.rint(np.linspace(0, length - 1, n)).astype(int)


def resample_chunks(chunks, length: int, n: int, size: int = 16):
    """:func:`resample` of the ``length`` frames arriving as ``chunks``, emitted as
    chunks of at most ``size`` frames (one input chunk held at a time)."""
    idx = resample_indices(length, n)
    pos, j, buf = 0, 0, []
    for chunk in chunks:
        end = pos + len(chunk)
        while j < n and idx[j] < end:
            buf.append(chunk[idx[j] - pos])
            j += 1
            if len(buf) == size:
                yield np.stack(buf)
                buf = []
        pos = end
    if buf:
        yield np.stack(buf)


def _first(chunks, n: int):
    """The first ``n`` frames of ``chunks``."""
    for chunk in chunks:
        if n <= 0:
            return
        yield chunk[:n]
        n -= len(chunk)


class _Adapter:
    def frames(self, model: WorldModel, req: SegmentRequest, n: int,
               generator: torch.Generator) -> np.ndarray:
        """Exactly ``n`` frames for a segment, both keyframes included."""
        return np.concatenate(list(self.chunks(model, req, n, generator)))

    def chunks(self, model: WorldModel, req: SegmentRequest, n: int,
               generator: torch.Generator, size: int = 16):
        """:meth:`frames` as consecutive chunks of at most ``size`` frames, made as they
        are read (:meth:`~lgvsc.semantic.world_models.WorldModel.generate_chunks`)."""
        raise NotImplementedError


@ADAPTERS.register("dsa")
class DSA(_Adapter):
    def chunks(self, model, req, n, generator, size=16):
        if n < 1:
            raise ValueError(f"segment length must be >= 1, got {n}")
        m = model.valid_length(n)
        if model.places_keyframes_anywhere:
            return _first(model.generate_chunks(req, m, n - 1, generator, size), n)
        return resample_chunks(model.generate_chunks(req, m, m - 1, generator, size), m, n, size)


@ADAPTERS.register("sfa")
class SFA(_Adapter):
    """:param length: the fixed frame count (rounded up to a valid one)."""

    def __init__(self, length: int = 17):
        if length < 2:
            raise ValueError(f"length must be >= 2, got {length}")
        self.length = length

    def chunks(self, model, req, n, generator, size=16):
        if n < 1:
            raise ValueError(f"segment length must be >= 1, got {n}")
        if n == 1 or req.last is None:
            return model.generate_chunks(req, n, None, generator, size)
        m = model.valid_length(self.length)
        return resample_chunks(model.generate_chunks(req, m, m - 1, generator, size), m, n, size)


def make_adapter(type: str, **params):
    return ADAPTERS.get(type)(**params)
