"""``lgvsc`` and ``text-only``: the paper's generative schemes.

``lgvsc`` = selector + captioner + side info + keyframe codec + digital pipe
+ world model + adapter. Presets (Sec. III-B): ``skim-sfa`` (fixed-interval
keyframes, static adapter) and ``skem-dsa`` (PSSS keyframes, dynamic
adapter). A preset picks the embedded components (classical scorer,
``softcast-image`` keyframes, ``interp`` world model) unless one is given,
e.g. ``scorer: {type: vlm, path: ...}`` or ``world_model: {type: diffusers, path: ...}``.

Budget: ``target_cbr x 3HWF`` channel uses in all, spent to within
[0.97, 1] (or the trial is refused with a one-line :class:`BudgetError`).
``keyframes`` (K, the paper's 3-4 per video) sets SKIM's segment count and
SKEM's calibrated threshold -- or, with ``keyframe_cbr``, K is the most
keyframes of that per-image CBR that fit ``target_cbr`` with their side info
(:func:`~lgvsc.semantic.transmitter.keyframes_for_budget`). Captions and side
info go over the digital pipe first, and the rest is split evenly over the K
keyframes as the keyframe codec's budget, which the codec spends.
CBR per trial = (keyframe uses + caption and side-info uses) / (3HWF); the
CBR per keyframe (keyframe uses / 3HW, ``keyframe_cbr`` in the summary) is
what the keyframe codec worked with (the paper's operating point gives
~0.04-0.18).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ...link.cbr import BudgetError, cbr, channel_uses_for_cbr
from ...link.channels import snr_db_to_no
from ...link.digital import DigitalPipe
from ...link.registry import Registry
from ...semantic.adapters import make_adapter
from ...semantic.calibration import CalibratedSKEM
from ...semantic.captioners import CAPTIONERS, GivenCaption, make_captioner
from ...semantic.keyframe_codecs import KEYFRAME_CODECS, make_keyframe_codec, transmit_exact
from ...semantic.psss import DEFAULT_FOCUS
from ...semantic.receiver import reconstruct
from ...semantic.scorers import SCORERS, make_scorer
from ...semantic.selectors import SKEM, SKIM
from ...semantic.side_info import SIDE_INFO, make_side_info
from ...semantic.text_bits import decode_texts, encode_texts
from ...semantic.transmitter import TransmitPlan, Transmitter, keyframes_for_budget
from ...semantic.world_models import WORLD_MODELS, make_world_model
from . import SCHEMES, SchemeConfig
from .fields import Modulation, Rate
from .transmission import Transmission, VideoScheme

PRESETS = {"skim-sfa": dict(selector="skim", adapter="sfa"),
           "skem-dsa": dict(selector="skem", adapter="dsa")}


class LGVSCConfig(SchemeConfig):
    preset: Literal["skim-sfa", "skem-dsa"] | None = None
    target_cbr: float = Field(gt=0)
    keyframes: int = Field(4, ge=2, description="K keyframes per video (first and last included)")
    keyframe_cbr: float | None = Field(None, gt=0, description="if given, K is the most keyframes "
                                       "of this CBR each (3HW x it uses) that fit target_cbr")
    selector: Literal["skim", "skem"] | None = None
    adapter: Literal["dsa", "sfa"] | None = None
    sfa_length: int = Field(17, ge=2, le=1024, description="sfa: the fixed generated length "
                            "(<= 1024 frames)")
    threshold: Annotated[float, Field(ge=-1, le=1)] | Literal["auto"] = Field(
        "auto", description="skem: eta_th in [-1, 1], or calibrated to K")
    focus: str = DEFAULT_FOCUS
    scorer: dict[str, Any] = Field(default_factory=lambda: {"type": "classical"})
    captioner: dict[str, Any] = Field(default_factory=lambda: {"type": "given"})
    side_info: dict[str, Any] = Field(default_factory=lambda: {"type": "scalar"})
    keyframe_codec: dict[str, Any] = Field(default_factory=lambda: {"type": "softcast-image"})
    world_model: dict[str, Any] = Field(default_factory=lambda: {"type": "interp"})
    rate: Rate = Field(1 / 3, description="LDPC rate of captions and side info")
    modulation: Modulation = "qpsk"

    @model_validator(mode="after")
    def _resolve_preset(self):
        p = PRESETS.get(self.preset or "", {})
        self.selector = self.selector or p.get("selector", "skem")
        self.adapter = self.adapter or p.get("adapter", "dsa")
        return self


def component_warnings(name: str, specs: dict[str, tuple[dict, Registry]]) -> list[str]:
    """Warnings for the components of scheme ``name`` that cannot run here because
    packages are not installed (their model files are checked by
    :func:`check_components`, which refuses what is missing)."""
    out = []
    for field, (spec, registry) in specs.items():
        kind = spec.get("type")
        if kind not in registry:
            continue
        missing = registry.requirements(kind).missing_packages()
        if missing:
            out.append(f"{name}: {field} {kind!r} cannot run here ({', '.join(missing)} not "
                       "installed)")
    return out


#: parameters a scheme fills in at run time, by component type
SUPPLIED = {"given": ("captions", "boundaries")}


def check_components(where: str, specs: dict[str, tuple[dict, Registry]]) -> None:
    """Check every nested spec ``{field: (spec, registry)}`` of the scheme at ``where``
    through its registry (type, parameters, model files; no weights are loaded)."""
    for field, (spec, registry) in specs.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        registry.check_spec(spec, f"{where}.{field}", supplied=SUPPLIED.get(kind, ()))


def _component(spec: dict, make, what: str):
    params = {k: v for k, v in spec.items() if k != "type"}
    try:
        return make(spec["type"], **params)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{what} {spec.get('type')!r}: {e}") from None


@SCHEMES.register("lgvsc")
class LGVSC(VideoScheme):
    Config = LGVSCConfig

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.digital = DigitalPipe(cfg.modulation, "ldpc5g", cfg.rate, precision=ctx.precision,
                                   device=ctx.device)
        self.side = _component(cfg.side_info, make_side_info, "side_info")
        self.codec = _component(cfg.keyframe_codec, make_keyframe_codec, "keyframe_codec")
        self.model = _component(cfg.world_model, make_world_model, "world_model")
        self.adapter = make_adapter("sfa", length=cfg.sfa_length) if cfg.adapter == "sfa" \
            else make_adapter("dsa")
        self._plans: dict = {}

    @classmethod
    def check(cls, cfg, where):
        check_components(where, {
            "scorer": (cfg.scorer, SCORERS), "captioner": (cfg.captioner, CAPTIONERS),
            "side_info": (cfg.side_info, SIDE_INFO),
            "keyframe_codec": (cfg.keyframe_codec, KEYFRAME_CODECS),
            "world_model": (cfg.world_model, WORLD_MODELS)})

    @classmethod
    def check_video(cls, cfg, video, where):
        """A keyframe count above the clip's frames is clamped (warned); a
        ``target_cbr`` below what K keyframes of one channel use each plus the side
        info and empty captions of K-1 segments need is refused: no clip could meet it."""
        f, h, w = video.frames, video.height, video.width
        out = []
        k = 2 if cfg.keyframe_cbr is not None else min(cfg.keyframes, f)
        if cfg.keyframe_cbr is None and cfg.keyframes > f:
            out.append(f"{cfg.name}: keyframes {cfg.keyframes} > the {f} frames of video "
                       f"{video.label!r}; clamped to {f}")
        digital = DigitalPipe(cfg.modulation, "ldpc5g", cfg.rate)
        side = _component(cfg.side_info, make_side_info, "side_info")
        segs = max(k - 1, 1)
        floor = (digital.channel_uses(side.num_bits * segs)
                 + digital.channel_uses(encode_texts([""] * segs).numel()) + k)
        total = channel_uses_for_cbr(cfg.target_cbr, f, h, w)
        if total < floor:
            raise ValueError(
                f"{where}.target_cbr: {cfg.target_cbr:g} gives {total} channel uses on video "
                f"{video.label!r} ({f}x{h}x{w}); side info and empty captions of {segs} "
                f"segment(s) plus one use per keyframe alone need {floor}: target_cbr >= "
                f"{cbr(floor, f, h, w):.3g} at the very least")
        return out

    @classmethod
    def warnings(cls, cfg, snrs):
        return component_warnings(cfg.name, {
            "scorer": (cfg.scorer, SCORERS), "captioner": (cfg.captioner, CAPTIONERS),
            "keyframe_codec": (cfg.keyframe_codec, KEYFRAME_CODECS),
            "world_model": (cfg.world_model, WORLD_MODELS)})

    # -- transmitter ---------------------------------------------------------
    def _captioner(self, video):
        spec = self.cfg.captioner
        if spec["type"] == "given":
            return GivenCaption(video.captions, video.boundaries) if video.captions \
                else make_captioner("none")
        return _component(spec, make_captioner, "captioner")

    def target_keyframes(self, frames) -> int:
        """K: ``keyframes``, or derived from ``target_cbr`` and ``keyframe_cbr``."""
        f, h, w = frames.shape[:3]
        if self.cfg.keyframe_cbr is None:
            return min(self.cfg.keyframes, f)
        per_kf = int(self.cfg.keyframe_cbr * 3 * h * w)
        return keyframes_for_budget(int(self.cfg.target_cbr * 3 * h * w * f), per_kf,
                                    self.side.num_bits, self.digital, f)

    def _selector(self, frames):
        k = self.target_keyframes(frames)
        if self.cfg.selector == "skim":
            return SKIM(max(k - 1, 1))
        scorer = _component(self.cfg.scorer, make_scorer, "scorer")
        if self.cfg.threshold == "auto":
            return CalibratedSKEM(scorer, k, focus=self.cfg.focus)
        return SKEM(scorer, threshold=self.cfg.threshold, focus=self.cfg.focus)

    def plan(self, video) -> TransmitPlan:
        """The transmitter's plan for a clip (deterministic, so cached per clip)."""
        key = (video.name, id(video.frames))
        if key not in self._plans:
            tx = Transmitter(self._selector(video.frames), self._captioner(video), self.side,
                             self.digital)
            self._plans[key] = tx.plan(video.frames)
        return self._plans[key]

    # -- one trial -----------------------------------------------------------
    def keyframe_budget(self, video, p: TransmitPlan) -> int:
        """Channel uses per keyframe: what ``target_cbr x 3HWF`` leaves after the
        captions and side info, split evenly over the keyframes."""
        total = self.target_uses(video)
        cap = self.digital.channel_uses(p.caption_bits.numel())
        side = self.digital.channel_uses(p.side_bits.numel())
        k = len(p.keyframes)
        per_kf = (total - cap - side) // k
        if per_kf <= 0:
            f, h, w = video.shape
            raise BudgetError(
                f"target_cbr {self.cfg.target_cbr:g} gives {total} channel uses, but the "
                f"captions ({cap} uses) and side info ({side}) alone take {cap + side}, "
                f"leaving nothing for the {k} keyframes; target_cbr > "
                f"{cbr(cap + side + k, f, h, w):.3g} is needed at the very least")
        return per_kf

    def transmit(self, video, channel, snr_db, generator):
        p = self.plan(video)
        f, h, w = video.shape
        no = snr_db_to_no(snr_db)
        kf_budget = self.keyframe_budget(video, p)
        cap_rx = self.digital(p.caption_bits, channel, no, generator)
        side_rx = self.digital(p.side_bits, channel, no, generator)
        try:
            coded = transmit_exact(self.codec, video.frames[p.keyframes], kf_budget, channel,
                                   snr_db, generator)
        except BudgetError as e:
            raise BudgetError(f"the {len(p.keyframes)} keyframes get {kf_budget} channel uses "
                              f"each (target_cbr {self.cfg.target_cbr:g} after captions and side "
                              f"info): {e}") from None
        decoded = dict(zip(p.keyframes, coded.images))
        captions = decode_texts(cap_rx.bits, len(p.segments))
        descs = self._side_from_bits(side_rx.bits, len(p.segments))
        flows = [self.side.dense(d, h, w) if hasattr(self.side, "dense") else None for d in descs]
        texts = [_motion_text(self.side, d) for d in descs]
        frames = reconstruct(decoded, p.segments, captions, texts, flows, self.model,
                             self.adapter, generator)
        tx = Transmission(frames, coded.analog_uses, extra=dict(
            keyframes=p.keyframes, threshold=p.selection.threshold, keyframe_budget=kf_budget,
            keyframe_uses=coded.channel_uses,
            keyframe_cbr=cbr(coded.channel_uses, len(p.keyframes), h, w),
            caption_uses=cap_rx.channel_uses, side_uses=side_rx.channel_uses,
            captions_sent=p.captions, captions_received=captions))
        for res, nbits, part in ((cap_rx, p.caption_bits.numel(), "captions"),
                                 (side_rx, p.side_bits.numel(), "side info")):
            tx.add_digital(res, int(nbits), part)
        if coded.digital is not None:
            tx.add_digital(coded.digital, coded.side_bits, "keyframe side bits")
        return tx

    def _side_from_bits(self, bits, n):
        k = self.side.num_bits
        bits = bits.reshape(-1)
        return [self.side.from_bits(bits[i * k:(i + 1) * k]) for i in range(n)]


def _motion_text(side, desc) -> str:
    if hasattr(side, "text"):
        return side.text(desc)
    mean = getattr(desc, "mean", None)
    return "" if mean is None else f"motion score: {float(np.linalg.norm(mean)):.1f}"


class TextOnlyConfig(SchemeConfig):
    world_model: dict[str, Any] = Field(default_factory=lambda: {"type": "interp"},
                                        description="a text-to-video world model (real tier)")
    captioner: dict[str, Any] = Field(default_factory=lambda: {"type": "given"})
    frames_per_call: int = Field(33, ge=2)
    rate: Rate = 1 / 3
    modulation: Modulation = "qpsk"


@SCHEMES.register("text-only", weights="a text-to-video world model "
                  "(world_model: {type: diffusers, path: ...})")
class TextOnly(VideoScheme):
    """The caption alone, rebuilt by a text-to-video model (real tier only)."""

    Config = TextOnlyConfig

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        reason = self.unavailable_reason(cfg)
        if reason:
            raise ValueError(f"text-only is unavailable: {reason}")
        self.model = _component(cfg.world_model, make_world_model, "world_model")
        self.digital = DigitalPipe(cfg.modulation, "ldpc5g", cfg.rate, precision=ctx.precision,
                                   device=ctx.device)

    @classmethod
    def unavailable_reason(cls, cfg) -> str | None:
        spec = cfg.world_model
        model = _model_class(spec)
        check = getattr(model, "text_to_video_reason", None)
        if check is None:
            return (f"world model {spec['type']!r} cannot make video from text alone; set "
                    "world_model: {type: diffusers, path: <an LTX pipeline>} (the embedded tier "
                    "has no text-to-video model)")
        return check(spec.get("path"), spec.get("pipeline", "auto"))

    @classmethod
    def check(cls, cfg, where):
        check_components(where, {"captioner": (cfg.captioner, CAPTIONERS),
                                 "world_model": (cfg.world_model, WORLD_MODELS)})

    @classmethod
    def warnings(cls, cfg, snrs):
        return component_warnings(cfg.name, {"captioner": (cfg.captioner, CAPTIONERS),
                                             "world_model": (cfg.world_model, WORLD_MODELS)})

    def transmit(self, video, channel, snr_db, generator):
        f, h, w = video.shape
        caption = " ".join(video.captions)  # one prompt for the clip: every shot, in order
        bits = encode_texts([caption])
        rx = self.digital(bits, channel, snr_db_to_no(snr_db), generator)
        text = decode_texts(rx.bits, 1)[0]
        frames = self.model.generate_from_text(text, f, (h, w), generator)
        tx = Transmission(frames, 0, extra=dict(caption_received=text))
        tx.add_digital(rx, int(bits.numel()), "caption")
        return tx


def _model_class(spec):
    from ...semantic.world_models import WORLD_MODELS

    return WORLD_MODELS.get(spec["type"])
