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


class FrameStream:
    """Received frames, made while they are read: ``count`` frames of ``height`` x
    ``width`` as uint8 chunks ``[n, H, W, 3]`` in display order, drawn from the
    iterator ``chunks``. A scheme returns one so that a trial holds one chunk of
    received video at a time: its receiver runs as the runner scores the chunks.
    It can be read once; reading it is checked (a chunk of the wrong size, too
    many or too few frames raise ``RuntimeError``: a bug in the scheme).
    ``np.asarray(stream)`` reads it whole into one array (kept: for tests and
    short clips; the runner never does)."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, chunks, count: int, height: int, width: int):
        self._chunks, self.count = iter(chunks), int(count)
        self.shape = (self.count, int(height), int(width), 3)
        self._read = False
        self._array = None
        self._active = False  # the scheme's code is running (making the next chunk)
        self.done = False

    @property
    def pending(self) -> bool:
        """True until the stream has been read to its end, except while the scheme's
        own code runs to make a chunk (it accounts as it goes)."""
        return not self.done and not self._active

    def __len__(self) -> int:
        return self.count

    def __array__(self, dtype=None, copy=None):
        if self._array is None:
            chunks = list(self)
            self._array = (np.concatenate(chunks) if chunks
                           else np.zeros(self.shape, np.uint8))
        return self._array if dtype is None else self._array.astype(dtype)

    def __getitem__(self, key):
        return np.asarray(self)[key]

    def __iter__(self):
        if self._array is not None:
            yield from (self._array[s:s + 16] for s in range(0, self.count, 16))
            return
        if self._read:
            raise RuntimeError("a FrameStream can be read once")
        self._read = True
        seen = 0
        while True:
            self._active = True
            try:
                chunk = next(self._chunks, None)
            finally:
                self._active = False
            if chunk is None:
                break
            if chunk.dtype != np.uint8 or chunk.shape[1:] != self.shape[1:]:
                raise RuntimeError(f"received chunk {chunk.dtype} {chunk.shape}, expected uint8 "
                                   f"[n, {self.shape[1]}, {self.shape[2]}, 3]")
            seen += len(chunk)
            if seen > self.count:
                raise RuntimeError(f"the stream holds more than its {self.count} frames")
            yield chunk
        if seen != self.count:
            raise RuntimeError(f"the stream ended after {seen} of its {self.count} frames")
        self.done = True


def rechunk(chunks, size: int = 16):
    """The frames of ``chunks`` (uint8 arrays ``[n, H, W, 3]``, any ``n``) regrouped into
    chunks of exactly ``size`` frames (the last one shorter); one output chunk held."""
    buf, have = [], 0
    for chunk in chunks:
        while len(chunk):
            take = chunk[:size - have]
            buf.append(take)
            have += len(take)
            chunk = chunk[len(take):]
            if have == size:
                yield buf[0] if len(buf) == 1 else np.concatenate(buf)
                buf, have = [], 0
    if buf:
        yield np.concatenate(buf)


def received_chunks(frames, size: int = 16):
    """Chunks of received ``frames``: an array (cut into ``size``-frame chunks) or a
    :class:`FrameStream` (its own chunks)."""
    if isinstance(frames, FrameStream):
        return iter(frames)
    return (frames[s:s + size] for s in range(0, len(frames), size))


#: fields of a :class:`Transmission` that a streaming receiver completes as it is read
_ACCOUNTING = frozenset({"channel_uses", "payload_bits", "counts", "extra", "failures",
                         "decoder_iterations", "decoded_blocks"})


@dataclass(repr=False)
class Transmission:
    """Received video and the cost of sending it.

    ``frames``: uint8 [F, H, W, 3], an array or a :class:`FrameStream` (then
    ``channel_uses``, ``counts``, ``extra`` and ``failures`` are final once it has
    been read: a streaming receiver adds what it finds); ``channel_uses``: every complex channel use
    spent (analog symbols, digital payloads, side info); ``payload_bits``:
    bits given to the digital pipe; ``counts``: the digital pipe's bit/block
    counts (:data:`COUNT_KEYS`); ``extra``: scheme-specific facts;
    ``failures``: {part: why} for every part that failed (empty = success);
    ``keyframes``: the frame indices the scheme sent as keyframes, known before
    the frames are read (None: the scheme sends no keyframes).
    """

    frames: "np.ndarray | FrameStream | None"
    channel_uses: int
    payload_bits: int = 0
    counts: dict = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    extra: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    #: LDPC decoder iterations summed over the decoded blocks, and those blocks
    decoder_iterations: int = 0
    decoded_blocks: int = 0
    keyframes: list[int] | None = None

    def __getattribute__(self, name):
        """The accounting of a streaming receiver is refused until its frames have been
        read (:attr:`FrameStream.pending`): a partial count would pass for the trial's."""
        if name in _ACCOUNTING:
            frames = object.__getattribute__(self, "frames")
            if isinstance(frames, FrameStream) and frames.pending:
                raise RuntimeError(f"Transmission.{name} is known once its frames are read "
                                   "(iterate tx.frames or np.asarray(tx.frames) first)")
        return object.__getattribute__(self, name)

    def __repr__(self) -> str:
        frames = object.__getattribute__(self, "frames")
        if isinstance(frames, FrameStream) and frames.pending:
            return f"Transmission(frames=FrameStream{frames.shape}, pending)"
        return (f"Transmission(frames={getattr(frames, 'shape', None)}, channel_uses="
                f"{self.channel_uses}, counts={self.counts}, failures={self.failures}, "
                f"extra={self.extra})")

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

    def absorb(self, other: "Transmission", label: str) -> None:
        """Add the channel uses, payload, digital counts, decoder iterations and
        failures of ``other`` (a part of this trial, e.g. a window of the clip; its
        frames read) to this one; a failure keeps its part's name, ``label`` goes
        before the reason."""
        self.channel_uses += other.channel_uses
        self.payload_bits += other.payload_bits
        for k in COUNT_KEYS:
            self.counts[k] += other.counts[k]
        self.decoder_iterations += other.decoder_iterations
        self.decoded_blocks += other.decoded_blocks
        for part, why in other.failures.items():
            self.fail(part, f"{label}: {why}")

    def fail(self, part: str, why: str) -> None:
        """Mark the trial failed because of ``part``."""
        self.failures[part] = why if part not in self.failures else f"{self.failures[part]}; {why}"

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def failure_text(self) -> str:
        """One line, e.g. ``"bitstream: 3 of 12 code blocks failed their CRC"``."""
        return "; ".join(f"{p}: {w}" for p, w in self.failures.items())


@dataclass(frozen=True)
class MeasuredBER:
    """What a video scheme's measured BER is the BER of (the summary's ``raw_ber`` and
    ``ber``: the bit counts of everything it sent over the digital pipe): ``part``
    names those bits; ``video`` is True when they carry the video itself (a codec's
    bitstream, whose errors are what the viewer sees), False when the video goes
    analog or is generated and the bits are side parts (metadata, captions)."""

    part: str
    video: bool


class VideoScheme(Scheme):
    """A scheme that sends a whole clip; implement :meth:`transmit`."""

    kind = "video"
    #: what the digital pipe's measured BER describes (quality-vs-BER plots show only
    #: schemes whose BER is the video's); a scheme that declares nothing is not one
    measured_ber = MeasuredBER("its digital parts", video=False)

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
