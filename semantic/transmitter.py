"""The LGVSC transmitter (Sec. II-A, II-C): video -> what goes on the air.

A :class:`Transmitter` composes a keyframe selector, a captioner and a side
information form, and turns a clip (uint8 [F, H, W, 3]) into a
:class:`TransmitPlan`: keyframe indices, segments, one caption and one
motion descriptor per segment, the bit payloads of the digital part, and
the channel-use budget of every part. Keyframes themselves go through a
keyframe codec (analog JSCC, its own module); its channel uses per keyframe
enter the budget when known.

Digital payloads: all captions in one compressed text payload
(:mod:`~lgvsc.semantic.text_bits`), all side information in one fixed-size
payload (``num_bits`` per segment), each through the digital pipe.

Captions describe a segment from all of its frames: the captioner gets the
segment's frames ``[first keyframe, next keyframe)`` (the clip's last frame
included in the last segment), and decides how many of them it looks at.

A budget: ``max_keyframes`` caps the selection
(:func:`~lgvsc.semantic.selectors.cap_keyframes`), and
:func:`keyframes_within` finds the most keyframes a cost function affords.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..link.digital import DigitalPipe
from .captioners import Captioner
from .frames import window
from .selectors import Selection, cap_keyframes
from .text_bits import encode_texts


@dataclass
class TransmitPlan:
    """Everything the transmitter decided, and what it costs.

    ``segments``: (first, last) keyframe of each segment, inclusive.
    ``budget``: channel uses of the ``keyframes`` (None when no codec cost is
    given), ``captions`` and ``side_info``, their bits, and ``total``.
    ``capped``: set by a scheme whose budget afforded fewer keyframes than asked,
    ``{"asked", "affordable", "dropped"}`` (None otherwise).
    """

    keyframes: list[int]
    segments: list[tuple[int, int]]
    captions: list[str]
    side_info: list
    caption_bits: torch.Tensor
    side_bits: torch.Tensor
    budget: dict
    selection: Selection = field(repr=False, default=None)
    capped: dict | None = None


class Transmitter:
    """:param selector: ``SKIM`` / ``SKEM`` (anything with ``select(frames)``).
    :param captioner: a :class:`~lgvsc.semantic.captioners.Captioner`.
    :param side_info: a motion descriptor form (``MotionScalar`` / ``MotionGrid``).
    :param digital: the digital pipe captions and side info travel through.
    :param keyframe_uses: channel uses of one coded keyframe (None = unknown).
    :param max_keyframes: the most keyframes the budget affords (>= 2; None = no
        cap); a selection with more is cut by
        :func:`~lgvsc.semantic.selectors.cap_keyframes` (``selection.dropped``).
    """

    def __init__(self, selector, captioner: Captioner, side_info, digital: DigitalPipe,
                 keyframe_uses: int | None = None, max_keyframes: int | None = None):
        if keyframe_uses is not None and keyframe_uses < 0:
            raise ValueError(f"keyframe_uses must be >= 0, got {keyframe_uses}")
        if max_keyframes is not None and max_keyframes < 2:
            raise ValueError(f"max_keyframes must be >= 2 or None, got {max_keyframes}")
        self.selector, self.captioner, self.side = selector, captioner, side_info
        self.digital, self.keyframe_uses = digital, keyframe_uses
        self.max_keyframes = max_keyframes

    def plan(self, frames: np.ndarray) -> TransmitPlan:
        """:input frames: uint8 [F, H, W, 3], a frame sequence
        (:mod:`~lgvsc.semantic.frames`). One caption per segment, from the segment's
        frames; the selector, captioner and side info read the frames they use by
        index (a segment is handed over as a window, not read whole)."""
        sel = self.selector.select(frames)
        if self.max_keyframes is not None:
            sel = cap_keyframes(sel, self.max_keyframes)
        segs = sel.segments()
        last = len(frames) - 1
        # a segment's own frames are [first, last keyframe); the clip's final frame belongs
        # to the last segment
        spans = [(a, b + 1 if b == last else max(b, a + 1)) for a, b in segs]
        captions = [self.captioner.caption(window(frames, s, e), s, e) for s, e in spans]
        side = [self.side.encode(window(frames, a, b + 1)) for a, b in segs]
        cap_bits = encode_texts(captions)
        side_bits = (torch.cat([self.side.to_bits(d) for d in side]) if side
                     else torch.zeros(0, dtype=torch.uint8))
        return TransmitPlan(sel.keyframes, segs, captions, side, cap_bits, side_bits,
                            self.budget(len(sel.keyframes), cap_bits.numel(), side_bits.numel()),
                            sel)

    def budget(self, keyframes: int, caption_bits: int, side_bits: int) -> dict:
        kf = None if self.keyframe_uses is None else keyframes * self.keyframe_uses
        cap = self.digital.channel_uses(caption_bits)
        side = self.digital.channel_uses(side_bits)
        return dict(keyframes=kf, captions=cap, side_info=side, caption_bits=caption_bits,
                    side_bits=side_bits, total=(kf or 0) + cap + side)


def keyframes_within(channel_uses: int, cost, most: int) -> int:
    """Most keyframes K in [2, ``most``] with ``cost(K) <= channel_uses`` (``cost``:
    K -> channel uses, non-decreasing in K); 0 when not even 2 fit."""
    best = 0
    for k in range(2, most + 1):
        if cost(k) > channel_uses:
            break
        best = k
    return best


def keyframes_for_budget(channel_uses: int, keyframe_uses: int, per_segment_bits: int,
                         digital: DigitalPipe, max_keyframes: int) -> int:
    """Most keyframes K (2 <= K <= max) whose cost fits ``channel_uses``:
    ``K * keyframe_uses + uses(K - 1 segments x per_segment_bits)``; at least 2
    (first and last frame) even when that overshoots."""
    best = 2
    for k in range(2, max_keyframes + 1):
        if k * keyframe_uses + digital.channel_uses((k - 1) * per_segment_bits) > channel_uses:
            break
        best = k
    return min(best, max_keyframes)
