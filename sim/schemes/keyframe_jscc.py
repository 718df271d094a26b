"""``keyframe-jscc``: every frame (or every k-th) through a keyframe codec.

Coded frames travel as analog symbols (plus their side-info bits over the
digital pipe); the frames between two coded ones repeat the last decoded
frame. ``target_cbr`` is the CBR of each *coded* frame: the codec gets
``target_cbr x 3 H W`` channel uses per frame, side info included. The
trial's CBR (channel uses / 3HWF) is therefore ``target_cbr / every``.
Gives PSNR-vs-SNR and PSNR-vs-CBR curves like NTSCC's paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from ...link.registry import UnknownComponentError
from ...semantic.keyframe_codecs import KEYFRAME_CODECS, make_keyframe_codec
from . import SCHEMES, SchemeConfig
from .transmission import Transmission, VideoScheme


class KeyframeJSCCConfig(SchemeConfig):
    codec: dict[str, Any] = Field(description="{type: <keyframe codec>, ...its settings}")
    every: int = Field(1, gt=0, description="code every k-th frame")
    target_cbr: float = Field(gt=0, description="CBR of each coded frame")

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

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        params = {k: v for k, v in cfg.codec.items() if k != "type"}
        try:
            self.codec = make_keyframe_codec(cfg.codec["type"], **params)
        except (TypeError, ValueError) as e:
            raise ValueError(f"codec {cfg.codec['type']!r}: {e}") from None

    def transmit(self, video, channel, snr_db, generator):
        f, h, w = video.shape
        idx = list(range(0, f, self.cfg.every))
        budget = int(self.cfg.target_cbr * 3 * h * w)
        coded = self.codec.transmit(video.frames[idx], budget, channel, snr_db, generator)
        out = np.empty_like(video.frames)
        for n, i in enumerate(idx):
            out[i:i + self.cfg.every] = coded.images[n]
        tx = Transmission(out, coded.analog_uses, extra=dict(
            coded_frames=len(idx), analog_uses=coded.analog_uses, side_bits=coded.side_bits))
        if coded.digital is not None:
            tx.add_digital(coded.digital, coded.side_bits, "codec side bits")
        return tx
