"""The LGVSC receiver: decoded keyframes + captions + side info -> F frames.

Segment ``n`` spans keyframes ``k_n .. k_{n+1}`` (inclusive). Each segment is
rebuilt by the world model through the adapter with exactly
``k_{n+1} - k_n + 1`` frames; consecutive segments share their boundary
keyframe, so the duplicate is dropped when they are concatenated and the
output has exactly ``k_last + 1 = F`` frames. :func:`reconstruct_chunks` emits
them chunk by chunk (a segment at a time at most).
"""

from __future__ import annotations

import numpy as np
import torch

from .world_models import SegmentRequest, WorldModel


def reconstruct_chunks(keyframes: dict[int, np.ndarray], segments: list[tuple[int, int]],
                       captions: list[str], motion_texts: list[str], flows: list,
                       model: WorldModel, adapter, generator: torch.Generator,
                       size: int = 16, lo: int = 0, hi: int | None = None):
    """uint8 frames of the clip (F = last keyframe + 1) as consecutive chunks
    ``[<= size, H, W, 3]``. ``keyframes``: decoded keyframe per frame index;
    ``captions``, ``motion_texts``, ``flows`` (dense prior or None): one per segment;
    made segment by segment as they are read: the adapter's
    :meth:`~lgvsc.semantic.adapters.DSA.chunks` asks the world model for its frames
    chunk by chunk (a model that generates a segment whole holds that segment).
    ``lo``, ``hi``: only segments ``lo .. hi - 1`` (``keyframes`` needs just theirs),
    so that a receiver can rebuild the clip as its keyframes arrive."""
    hi = len(segments) if hi is None else hi
    for n in range(lo, hi):
        a, b = segments[n]
        req = SegmentRequest(keyframes[a], keyframes[b] if b != a else None,
                             captions[n] if n < len(captions) else "",
                             motion_texts[n] if n < len(motion_texts) else "",
                             flows[n] if n < len(flows) else None)
        skip = 0 if n == 0 else 1  # the shared boundary keyframe, already sent
        for chunk in adapter.chunks(model, req, b - a + 1, generator, size):
            if skip:
                chunk, skip = chunk[skip:], 0
            if len(chunk):
                yield chunk
