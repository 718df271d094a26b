"""Captioners: one caption per segment. Registered by name in :data:`CAPTIONERS`.

:meth:`Captioner.caption` gets the segment's frames (uint8 [L, H, W, 3]), its
frame range ``[start, end)`` in the clip and its keyframe index, and returns
a string. ``given`` uses captions known in advance (a sidecar file or a
synthetic scene's ground truth); ``none`` sends nothing; ``vlm`` runs a
multimodal model from local weights.
"""

from __future__ import annotations

import numpy as np

from ...link.registry import Registry

CAPTIONERS: Registry[type["Captioner"]] = Registry("captioner", check_weights=True)


class Captioner:
    @classmethod
    def model_info(cls, **params) -> list:
        """The models an instance built with ``params`` loads, as
        :class:`~lgvsc.semantic.model_cache.ModelInfo`, computed without loading
        anything. Default: none (a captioner without weights)."""
        return []

    def caption(self, frames: np.ndarray, start: int, end: int) -> str:
        raise NotImplementedError


@CAPTIONERS.register("none")
class NoCaption(Captioner):
    """Sends no caption (an empty string costs no bits)."""

    def caption(self, frames, start, end):
        return ""


@CAPTIONERS.register("given")
class GivenCaption(Captioner):
    """Captions known in advance.

    :param captions: one caption per reference segment.
    :param boundaries: first frame of every reference segment after the
        first (empty for a single clip-level caption).

    A transmitted segment ``[start, end)`` gets the captions of the reference
    segments it overlaps, in order, joined by ``"; then "``.
    """

    def __init__(self, captions: list[str] | tuple[str, ...], boundaries=()):
        captions = list(captions)
        if len(captions) != len(boundaries) + 1:
            raise ValueError(f"captions must have len(boundaries) + 1 = {len(boundaries) + 1} "
                             f"entries, got {len(captions)}")
        self.captions, self.starts = captions, [0, *boundaries]

    def caption(self, frames, start, end):
        ends = [*self.starts[1:], float("inf")]
        hit = [c for c, s, e in zip(self.captions, self.starts, ends) if s < end and e > start]
        return "; then ".join(dict.fromkeys(hit))


def make_captioner(type: str, **params) -> Captioner:
    return CAPTIONERS.get(type)(**params)


from . import vlm  # noqa: E402,F401  (registers "vlm")
