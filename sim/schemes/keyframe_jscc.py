"""``keyframe-jscc``: every frame (or every k-th) through a keyframe codec.

Coded frames travel as analog symbols (plus their side-info bits over the
digital pipe); the frames between two coded ones repeat the last decoded
frame. ``target_cbr`` is the CBR of the whole clip, as everywhere in lgvsc:
``target_cbr x 3HWF`` channel uses, split evenly over the coded frames (side
info included), spent by the codec to within [0.97, 1]. With ``every: 1``
each frame's own CBR equals ``target_cbr``. A budget that leaves a coded
frame too few channel uses is refused (:class:`BudgetError`), never sent as
black frames. Gives PSNR-vs-SNR and PSNR-vs-CBR curves like NTSCC's paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from ...link.cbr import BudgetError, cbr, channel_uses_for_cbr
from ...link.registry import UnknownComponentError
from ...semantic.keyframe_codecs import KEYFRAME_CODECS, make_keyframe_codec, transmit_exact
from . import SCHEMES, SchemeConfig
from .transmission import FrameStream, MeasuredBER, Transmission, VideoScheme, rechunk


class KeyframeJSCCConfig(SchemeConfig):
    codec: dict[str, Any] = Field(description="{type: <keyframe codec>, ...its settings}")
    every: int = Field(1, gt=0, description="code every k-th frame")
    target_cbr: float = Field(gt=0, description="CBR of the clip (channel uses / 3HWF)")

    @field_validator("codec")
    @classmethod
    def _known_codec(cls, v):
        if "type" not in v:
            raise ValueError(f"codec needs a type; valid: {', '.join(KEYFRAME_CODECS.names())}")
        try:
            KEYFRAME_CODECS.get(v["type"])
        except UnknownComponentError as e:
            raise ValueError(str(e)) from None
        return v


@SCHEMES.register("keyframe-jscc")
class KeyframeJSCC(VideoScheme):
    Config = KeyframeJSCCConfig
    measured_ber = MeasuredBER("the keyframe codec's side bits (the frames go analog)",
                               video=False)

    @classmethod
    def check(cls, cfg, where):
        KEYFRAME_CODECS.check_spec(cfg.codec, f"{where}.codec")

    @classmethod
    def check_video(cls, cfg, video, where):
        """Every coded frame needs at least one channel use of the clip's budget."""
        f, h, w = video.frames, video.height, video.width
        coded = -(-f // cfg.every)
        total = channel_uses_for_cbr(cfg.target_cbr, f, h, w)
        if total < coded:
            raise ValueError(f"{where}.target_cbr: {cfg.target_cbr:g} gives {total} channel uses "
                             f"on video {video.label!r} for {coded} coded frames: none per frame; "
                             f"target_cbr >= {cbr(coded, f, h, w):.3g} or a larger 'every' would")
        return []

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        params = {k: v for k, v in cfg.codec.items() if k != "type"}
        try:
            self.codec = make_keyframe_codec(cfg.codec["type"], **params)
        except (TypeError, ValueError) as e:
            raise ValueError(f"codec {cfg.codec['type']!r}: {e}") from None

    #: coded frames sent per keyframe-codec call (analog symbols, then their side bits)
    BATCH = 32

    def transmit(self, video, channel, snr_db, generator):
        """Streams: the coded frames go in batches of :data:`BATCH` (each batch's
        analog symbols, then its side bits; a clip with at most that many coded
        frames is one batch), and each batch's frames are emitted as it is decoded.
        Working set: one batch of coded frames and their decoded images, whatever F."""
        f, h, w = video.shape
        idx = list(range(0, f, self.cfg.every))
        total = self.target_uses(video)
        budget = total // len(idx)
        if budget <= 0:
            raise BudgetError(f"target_cbr {self.cfg.target_cbr:g} gives {total} channel uses "
                              f"for {len(idx)} coded frames: none per frame; target_cbr >= "
                              f"{cbr(len(idx), f, h, w):.3g} or a larger 'every' would")
        tx = Transmission(None, 0, extra=dict(coded_frames=len(idx), analog_uses=0, side_bits=0))
        tx.frames = FrameStream(rechunk(self._stream(video, idx, budget, channel, snr_db,
                                                     generator, tx)), f, h, w)
        return tx

    def _stream(self, video, idx, budget, channel, snr_db, generator, tx):
        f, h, w = video.shape
        every, spent = self.cfg.every, 0
        for b in range(0, len(idx), self.BATCH):
            part = idx[b:b + self.BATCH]
            try:
                coded = transmit_exact(self.codec, video.frames[part], budget, channel, snr_db,
                                       generator)
            except BudgetError as e:
                raise BudgetError(f"{len(idx)} coded frames get {budget} channel uses each "
                                  f"(target_cbr {self.cfg.target_cbr:g}): {e}") from None
            tx.channel_uses += coded.analog_uses
            tx.extra["analog_uses"] += coded.analog_uses
            tx.extra["side_bits"] += coded.side_bits
            spent += coded.channel_uses
            if coded.digital is not None:
                tx.add_digital(coded.digital, coded.side_bits, "codec side bits")
            for n, i in enumerate(part):
                img = coded.images[n][None]
                for s in range(i, min(i + every, f), 16):  # a long hold in pieces
                    yield np.repeat(img, min(16, i + every - s, f - s), axis=0)
        tx.extra["keyframe_cbr"] = cbr(spent, len(idx), h, w)
