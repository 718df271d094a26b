"""What a video scheme hands back, and the base class of video schemes.

Failure (the paper's "-" cells): a trial *fails* when any digital part it
needed arrived with residual errors that the receiver detects (a code block
failed its CRC): the H.26x bitstream, SoftCast's chunk metadata, LGVSC's
captions, side info or keyframe side bits. Every digital part of every
shipped scheme is essential, so one failed block fails the trial. The
receiver still builds F frames from what arrived (concealment); the summary
decides, by the scenario's ``failure: drop | conceal``, whether those frames
are scored. A scheme may also fail a trial for its own reasons
(:meth:`Transmission.fail`, e.g. a video decoder that crashed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...link.cbr import channel_uses_for_cbr
from ...link.digital import DigitalResult
from . import Scheme

COUNT_KEYS = ("bits", "bit_errors", "blocks", "block_errors", "raw_bits", "raw_bit_errors")


@dataclass
class Transmission:
    """Received video and the cost of sending it.

    ``frames``: uint8 [F, H, W, 3]; ``channel_uses``: every complex channel use
    spent (analog symbols, digital payloads, side info); ``payload_bits``:
    bits given to the digital pipe; ``counts``: the digital pipe's bit/block
    counts (:data:`COUNT_KEYS`); ``extra``: scheme-specific facts;
    ``failures``: {part: why} for every part that failed (empty = success).
    """

    frames: np.ndarray
    channel_uses: int
    payload_bits: int = 0
    counts: dict = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    extra: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    #: LDPC decoder iterations summed over the decoded blocks, and those blocks
    decoder_iterations: int = 0
    decoded_blocks: int = 0

    @property
    def iterations_mean(self) -> float | None:
        """Mean LDPC decoder iterations per code block (None: nothing decoded)."""
        return self.decoder_iterations / self.decoded_blocks if self.decoded_blocks else None

    def add_digital(self, res: DigitalResult, payload_bits: int, part: str) -> None:
        """Account one digital-pipe transmission of the part named ``part``; a
        CRC failure in any of its blocks fails the trial."""
        self.payload_bits += payload_bits
        self.channel_uses += res.channel_uses
        c = self.counts
        c["bits"] += payload_bits
        c["bit_errors"] += res.bit_errors
        c["blocks"] += res.num_blocks
        c["block_errors"] += res.block_errors
        c["raw_bits"] += res.coded_bits
        c["raw_bit_errors"] += res.raw_bit_errors
        if res.iterations is not None:
            self.decoder_iterations += res.iterations
            self.decoded_blocks += res.num_blocks
        bad = int((~res.crc_ok).sum())
        if bad:
            self.fail(part, f"{bad} of {res.num_blocks} code blocks failed their CRC")

    def fail(self, part: str, why: str) -> None:
        """Mark the trial failed because of ``part``."""
        self.failures[part] = why if part not in self.failures else f"{self.failures[part]}; {why}"

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def failure_text(self) -> str:
        """One line, e.g. ``"bitstream: 3 of 12 code blocks failed their CRC"``."""
        return "; ".join(f"{p}: {w}" for p, w in self.failures.items())


class VideoScheme(Scheme):
    """A scheme that sends a whole clip; implement :meth:`transmit`."""

    kind = "video"

    def target_uses(self, video) -> int | None:
        """The trial's channel-use budget on ``video``, ``target_cbr x 3HWF`` (None when
        the scheme has no ``target_cbr``). The runner checks that a trial spends
        [:data:`~lgvsc.link.cbr.BUDGET_FLOOR`, 1] x it."""
        target = getattr(self.cfg, "target_cbr", None)
        if target is None:
            return None
        f, h, w = video.shape
        return channel_uses_for_cbr(target, f, h, w)

    def transmit(self, video, channel, snr_db: float, generator) -> Transmission:
        """:input video: :class:`~lgvsc.sim.video.Video`; :input channel: a link
        channel; :input snr_db: Es/N0 (dB); :input generator: the unit's RNG."""
        raise NotImplementedError
