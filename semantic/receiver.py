"""The LGVSC receiver: decoded keyframes + captions + side info -> F frames.

Segment ``n`` spans keyframes ``k_n .. k_{n+1}`` (inclusive). Each segment is
rebuilt by the world model through the adapter with exactly
``k_{n+1} - k_n + 1`` frames; consecutive segments share their boundary
keyframe, so the duplicate is dropped when they are concatenated and the
output has exactly ``k_last + 1 = F`` frames.
"""

from __future__ import annotations

import numpy as np
import torch

from .world_models import SegmentRequest, WorldModel


def reconstruct(keyframes: dict[int, np.ndarray], segments: list[tuple[int, int]],
                captions: list[str], motion_texts: list[str], flows: list, model: WorldModel,
                adapter, generator: torch.Generator) -> np.ndarray:
    """uint8 [F, H, W, 3] with F = last keyframe + 1.

    ``keyframes``: decoded keyframe per frame index; ``captions``,
    ``motion_texts``, ``flows`` (dense prior or None): one per segment.
    """
    parts = []
    for n, (a, b) in enumerate(segments):
        req = SegmentRequest(keyframes[a], keyframes[b] if b != a else None,
                             captions[n] if n < len(captions) else "",
                             motion_texts[n] if n < len(motion_texts) else "",
                             flows[n] if n < len(flows) else None)
        seg = adapter.frames(model, req, b - a + 1, generator)
        parts.append(seg if n == 0 else seg[1:])
    return np.concatenate(parts)
