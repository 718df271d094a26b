"""What a video scheme hands back, and the base class of video schemes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...link.digital import DigitalResult
from . import Scheme

COUNT_KEYS = ("bits", "bit_errors", "blocks", "block_errors", "raw_bits", "raw_bit_errors")


@dataclass
class Transmission:
    """Received video and the cost of sending it.

    ``frames``: uint8 [F, H, W, 3]; ``channel_uses``: every complex channel use
    spent (analog symbols, digital payloads, side info); ``payload_bits``:
    bits given to the digital pipe; ``counts``: the digital pipe's bit/block
    counts (:data:`COUNT_KEYS`); ``extra``: scheme-specific facts.
    """

    frames: np.ndarray
    channel_uses: int
    payload_bits: int = 0
    counts: dict = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    extra: dict = field(default_factory=dict)

    def add_digital(self, res: DigitalResult, payload_bits: int) -> None:
        """Account one digital-pipe transmission."""
        self.payload_bits += payload_bits
        self.channel_uses += res.channel_uses
        c = self.counts
        c["bits"] += payload_bits
        c["bit_errors"] += res.bit_errors
        c["blocks"] += res.num_blocks
        c["block_errors"] += res.block_errors
        c["raw_bits"] += res.coded_bits
        c["raw_bit_errors"] += res.raw_bit_errors


class VideoScheme(Scheme):
    """A scheme that sends a whole clip; implement :meth:`transmit`."""

    kind = "video"

    def transmit(self, video, channel, snr_db: float, generator) -> Transmission:
        """:input video: :class:`~lgvsc.sim.video.Video`; :input channel: a link
        channel; :input snr_db: Es/N0 (dB); :input generator: the unit's RNG."""
        raise NotImplementedError
