"""``softcast-image``: the embedded keyframe codec (no weights).

Per image: RGB -> YCbCr -> 2-D DCT of each plane (orthonormal) -> SoftCast
linear coding (:mod:`~lgvsc.semantic.linear_coding`): the plane means as
digital metadata, a staircase of chunks per plane on a grid picked per image
from the ``chunks`` candidates (expected distortion at ``design_snr_db``, 5 dB),
power allocation ``lambda^-1/4``, LLSE at the receiver. Degrades gracefully
with SNR (no cliff) and runs through the same analog pipe and channels as
NTSCC.

Budget: every image spends [0.97, 1] x ``budget_uses`` channel uses, its
analog symbols, the analog pipe's power-scale side info and its own metadata
payload included (each image's metadata is its own digital payload, whose
length the receiver knows from the framing, like any packet length), or
:meth:`encode` raises :class:`~lgvsc.link.cbr.BudgetError`. A budget below
the metadata header's cost sends the lowest-frequency coefficients without
metadata (an empty payload); one that leaves no analog symbol is an error,
never a black image. So the floor (:meth:`SoftCastImage.min_uses`) is the
power scale plus one analog symbol, at any image size.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from scipy.fft import dctn, idctn

from ...link.cbr import BUDGET_FLOOR, BudgetError
from ...link.channels import snr_db_to_no
from ...link.digital import DigitalResult
from .. import linear_coding as lin
from . import KEYFRAME_CODECS, CodedImages, Encoded, KeyframeCodec

_CACHE_SIZE = 64


def merge_digital(results: list[DigitalResult]) -> DigitalResult:
    """Several digital-pipe transmissions as one (bits and block flags concatenated,
    counts summed)."""
    return DigitalResult(
        torch.cat([r.bits for r in results]) if results else torch.zeros(0, dtype=torch.uint8),
        torch.cat([r.crc_ok for r in results]) if results else torch.zeros(0, dtype=torch.bool),
        *(sum(getattr(r, k) for r in results) for k in
          ("channel_uses", "coded_bits", "raw_bit_errors", "bit_errors", "block_errors")))


@KEYFRAME_CODECS.register("softcast-image")
class SoftCastImage(KeyframeCodec):
    """:param chunks: chunk grid per colour plane (rows, cols), or 1 to 4 candidates
        picked per image.
    :param design_snr_db: Es/N0 (dB, AWGN) at which the grid is picked."""

    #: ``**pipes`` (analog, digital) are objects, not spec values
    spec_extra_keys = ()

    def __init__(self, chunks=lin.DEFAULT_GRIDS, design_snr_db: float = 5.0, **pipes):
        super().__init__(**pipes)
        self.coder = lin.LinearCoder(chunks, self.analog, self.digital, design_snr_db)
        self._plans: dict = {}

    def min_uses(self, height: int, width: int, batch: int = 1) -> int:
        """The power scale and one analog symbol (two DCT coefficients, no metadata):
        ``analog.symbols_for(1)``, whatever the image size or batch."""
        return self.analog.symbols_for(1)

    def plan(self, image: np.ndarray, budget_uses: int) -> lin.Plan:
        """The plan of one uint8 [H, W, 3] image (cached by content and budget)."""
        key = (budget_uses, image.shape, hashlib.sha1(image.tobytes()).hexdigest())
        if key not in self._plans:
            sets = [dctn(p, norm="ortho")[None] for p in
                    np.moveaxis(lin.to_ycc(image), -1, 0)]
            try:
                plan = self.coder.plan(sets, budget_uses, lin.RGB_WEIGHTS)
            except lin.BudgetUnfit as e:
                raise BudgetError(_budget_message(image.shape, budget_uses, e)) from None
            if len(self._plans) >= _CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = plan
        return self._plans[key]

    def encode(self, images, budget_uses, snr_db=None):
        plans = [self.plan(img, int(budget_uses)) for img in images]
        side = (torch.from_numpy(np.concatenate([p.bits for p in plans])) if plans
                else torch.zeros(0, dtype=torch.uint8))
        return Encoded([torch.from_numpy(p.values).float() for p in plans], side,
                       dict(shape=images.shape[1:3], lengths=[int(p.bits.size) for p in plans]))

    def transmit(self, images, budget_uses, channel, snr_db, generator) -> CodedImages:
        """As :meth:`KeyframeCodec.transmit`, with one metadata payload per image so
        that each image's spend is exact."""
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [B, H, W, 3], got {images.dtype} "
                             f"{images.shape}")
        enc = self.encode(images, budget_uses, snr_db)
        no = snr_db_to_no(snr_db)
        rx = [self.analog(s, channel, no, generator) for s in enc.symbols]
        parts = torch.split(enc.side_bits, enc.state["lengths"])
        dig = merge_digital([self.digital(b, channel, no, generator) for b in parts])
        out = self.decode(rx, dig.bits, enc.state, snr_db)
        return CodedImages(out, sum(r.channel_uses for r in rx), dig.channel_uses,
                           int(enc.side_bits.numel()), dig)

    def decode(self, received, side_bits, state, snr_db=None):
        """``state["lengths"]``: the metadata bits of each image (its payload length)."""
        h, w = state["shape"]
        bits = np.asarray(side_bits, dtype=np.uint8)
        ends = np.cumsum(state["lengths"])
        out = []
        for rx, end, n in zip(received, ends, state["lengths"]):
            sets = self.coder.decode(bits[end - n:end], [(1, h, w)] * 3,
                                     rx.x_hat.double().numpy(), rx.noise_var.double().numpy())
            ycc = np.stack([idctn(s[0], norm="ortho") for s in sets], axis=-1)
            out.append(lin.to_rgb(ycc))
        return np.stack(out)


def _budget_message(shape, budget_uses: int, e: lin.BudgetUnfit) -> str:
    h, w = shape[:2]
    return e.explain(f"softcast-image: budget_uses {budget_uses} per {h}x{w} image", budget_uses,
                     f"budget_uses >= {e.needed}",
                     f"budget_uses <= {int(e.usable / BUDGET_FLOOR)}")
