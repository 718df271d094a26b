"""Keyframe codecs: images <-> analog channel symbols (+ side-info bits).

Registry ``keyframe_codec``. A codec encodes an image batch (uint8
[B, H, W, 3]) into real-valued channel symbols for the analog pipe plus a
side-info bit payload for the digital pipe, and decodes what comes back. It
meets a channel-use budget per image (``budget_uses``, side info included)
and takes the SNR where the model supports it. :meth:`KeyframeCodec.transmit`
runs the whole trip through the pipes; its :class:`CodedImages` reports the
channel uses spent. :meth:`KeyframeCodec.min_uses` is the smallest per-image
budget a codec can meet at an image size (its structure's floor: what the
shortest code of one image costs), which schemes use to decide how many
keyframes a budget affords before any image is coded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...link.analog import AnalogPipe
from ...link.cbr import BUDGET_FLOOR, BudgetError
from ...link.channels import Channel, snr_db_to_no
from ...link.digital import DigitalPipe, DigitalResult
from ...link.registry import Registry

KEYFRAME_CODECS: Registry[type["KeyframeCodec"]] = Registry("keyframe_codec", check_weights=True)


@dataclass
class Encoded:
    """``symbols``: one real 1-D float32 tensor per image (analog values, two per
    complex channel use); ``side_bits``: uint8 bits for the digital pipe;
    ``state``: whatever the decoder needs that the receiver also knows (shapes)."""

    symbols: list[torch.Tensor]
    side_bits: torch.Tensor
    state: dict = field(default_factory=dict)


@dataclass
class CodedImages:
    """Decoded images (uint8 [B, H, W, 3]) and the cost of sending them."""

    images: np.ndarray
    analog_uses: int
    side_uses: int
    side_bits: int
    digital: DigitalResult | None = None

    @property
    def channel_uses(self) -> int:
        return self.analog_uses + self.side_uses


class KeyframeCodec:
    """Base class: implement :meth:`encode` and :meth:`decode`.

    ``budget_uses``: complex channel uses allowed per image, side info included.
    """

    def __init__(self, analog: AnalogPipe | None = None, digital: DigitalPipe | None = None):
        self.analog = analog or AnalogPipe("zf")
        self.digital = digital or DigitalPipe("qpsk", "ldpc5g", 1 / 3)

    @classmethod
    def model_info(cls, **params) -> list:
        """The models an instance built with ``params`` loads, as
        :class:`~lgvsc.semantic.model_cache.ModelInfo`, computed without loading
        anything. Default: none (a codec without weights)."""
        return []

    def min_uses(self, height: int, width: int, batch: int = 1) -> int:
        """Smallest ``budget_uses`` per image this codec can meet for ``batch`` images
        of ``height`` x ``width`` sent in one :meth:`transmit` call (complex channel
        uses, side info included), from the codec's structure alone (no image is
        looked at). Default: one channel use (a codec that does not know better)."""
        return 1

    def encode(self, images: np.ndarray, budget_uses: int, snr_db: float | None) -> Encoded:
        raise NotImplementedError

    def decode(self, received: list, side_bits: torch.Tensor, state: dict,
               snr_db: float | None) -> np.ndarray:
        """``received``: one :class:`~lgvsc.link.analog.AnalogResult` per image."""
        raise NotImplementedError

    def transmit(self, images: np.ndarray, budget_uses: int, channel: Channel, snr_db: float,
                 generator: torch.Generator) -> CodedImages:
        """Encode, send symbols (analog) and side info (digital), decode."""
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [B, H, W, 3], got {images.dtype} {images.shape}")
        enc = self.encode(images, budget_uses, snr_db)
        no = snr_db_to_no(snr_db)
        rx = [self.analog(s, channel, no, generator) for s in enc.symbols]
        dig = self.digital(enc.side_bits, channel, no, generator)
        out = self.decode(rx, dig.bits, enc.state, snr_db)
        return CodedImages(out, sum(r.channel_uses for r in rx), dig.channel_uses,
                           int(enc.side_bits.numel()), dig)


def transmit_exact(codec: KeyframeCodec, images: np.ndarray, budget_uses: int, channel: Channel,
                   snr_db: float, generator: torch.Generator) -> CodedImages:
    """:meth:`KeyframeCodec.transmit` for a scheme whose budget must be met: the images
    spend [BUDGET_FLOOR, 1] x ``budget_uses`` each on average, or :class:`BudgetError`
    (e.g. every token of a learned codec already at its longest length)."""
    coded = codec.transmit(images, budget_uses, channel, snr_db, generator)
    total = budget_uses * len(images)
    if not BUDGET_FLOOR * total <= coded.channel_uses <= total:
        most = coded.channel_uses // len(images)
        raise BudgetError(f"{type(codec).__name__} spends {most} of the {budget_uses} channel "
                          f"uses per image it is given ({coded.channel_uses / total:.3f} x); a "
                          f"budget of at most {int(most / BUDGET_FLOOR)} per image would be spent")
    return coded


def make_keyframe_codec(type: str, **params) -> KeyframeCodec:
    return KEYFRAME_CODECS.get(type)(**params)


from . import softcast_image  # noqa: E402,F401  (registers "softcast-image")


from . import ntscc  # noqa: E402,F401  (registers "ntscc")
