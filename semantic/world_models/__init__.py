"""World-model decoders: rebuild a segment from its keyframes, caption and side info.

Registry ``world_model``. A :class:`WorldModel` generates the frames of one
segment given a :class:`SegmentRequest`: the decoded first and last keyframes
(uint8 [H, W, 3]), the caption, the motion side info (as prompt text and,
when sent, a dense flow prior in px/frame), and the number of frames wanted
(both keyframes included). Models have valid frame counts (LTX 8k+1, Wan
4k+1): :meth:`WorldModel.valid_length` rounds a count up to one; the
adapters (:mod:`lgvsc.semantic.adapters`) map generated frames to the
segment's exact length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...link.registry import Registry

WORLD_MODELS: Registry[type["WorldModel"]] = Registry("world_model", check_weights=True)


@dataclass
class SegmentRequest:
    """What the receiver knows about one segment.

    ``first``/``last``: decoded keyframes, uint8 [H, W, 3] (``last`` None for a
    one-frame segment); ``caption``: text (may be empty); ``motion_text``: the
    side info as prompt text (e.g. ``"motion score: 3.2"``, may be empty);
    ``flow``: dense motion prior float32 [H, W, 2] in px/frame, or None.
    """

    first: np.ndarray
    last: np.ndarray | None
    caption: str = ""
    motion_text: str = ""
    flow: np.ndarray | None = None

    @property
    def prompt(self) -> str:
        """The caption plus the motion score, as the authors prompt their generator."""
        return ". ".join(p for p in (self.caption.strip().rstrip("."), self.motion_text) if p)


class WorldModel:
    """Base class: implement :meth:`generate`.

    ``generate(request, length, last_index, generator)`` returns uint8
    [length, H, W, 3] whose frame 0 reproduces ``request.first`` and whose frame
    ``last_index`` (default ``length - 1``) reproduces ``request.last``.
    ``places_keyframes_anywhere`` says whether ``last_index < length - 1`` is
    supported (LTX conditions at any index; Wan's first/last-frame model does not).
    """

    places_keyframes_anywhere = True

    @classmethod
    def model_info(cls, **params) -> list:
        """The models an instance built with ``params`` loads, as
        :class:`~lgvsc.semantic.model_cache.ModelInfo`, computed without loading
        anything. Default: none (a world model without weights)."""
        return []

    def valid_length(self, n: int) -> int:
        """Smallest frame count >= n the model can generate (every count >= 1 here)."""
        return max(1, n)

    def generate(self, request: SegmentRequest, length: int, last_index: int | None,
                 generator: torch.Generator) -> np.ndarray:
        raise NotImplementedError

    def generate_chunks(self, request: SegmentRequest, length: int, last_index: int | None,
                        generator: torch.Generator, size: int = 16):
        """The frames of :meth:`generate` as consecutive chunks ``[<= size, H, W, 3]``,
        made as they are read. Default: :meth:`generate` whole, then cut (a model
        that makes a segment in one call holds that segment, at most the lengths it
        generates); a model that can make its frames a few at a time overrides it."""
        out = self.generate(request, length, last_index, generator)
        for s in range(0, len(out), size):
            yield out[s:s + size]


def make_world_model(type: str, **params) -> WorldModel:
    return WORLD_MODELS.get(type)(**params)


from . import diffusers_wm, interp, opensora  # noqa: E402,F401  (register the world models)
