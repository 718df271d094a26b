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
    idx = np.rint(np.linspace(0, len(frames) - 1, n)).astype(int)
    return frames[idx]


@ADAPTERS.register("dsa")
class DSA:
    def frames(self, model: WorldModel, req: SegmentRequest, n: int,
               generator: torch.Generator) -> np.ndarray:
        """Exactly ``n`` frames for a segment, both keyframes included."""
        if n < 1:
            raise ValueError(f"segment length must be >= 1, got {n}")
        m = model.valid_length(n)
        if model.places_keyframes_anywhere:
            return model.generate(req, m, n - 1, generator)[:n]
        return resample(model.generate(req, m, m - 1, generator), n)


@ADAPTERS.register("sfa")
class SFA:
    """:param length: the fixed frame count (rounded up to a valid one)."""

    def __init__(self, length: int = 17):
        if length < 2:
            raise ValueError(f"length must be >= 2, got {length}")
        self.length = length

    def frames(self, model, req, n, generator):
        if n < 1:
            raise ValueError(f"segment length must be >= 1, got {n}")
        if n == 1 or req.last is None:
            return model.generate(req, n, None, generator)
        m = model.valid_length(self.length)
        return resample(model.generate(req, m, m - 1, generator), n)


def make_adapter(type: str, **params):
    return ADAPTERS.get(type)(**params)
