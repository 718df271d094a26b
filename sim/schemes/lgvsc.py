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

K never exceeds what the budget affords: the most keyframes whose codec
floors (:meth:`~lgvsc.semantic.keyframe_codecs.KeyframeCodec.min_uses`, e.g.
~10,150 channel uses per 320x576 keyframe for NTSCC) plus the captions and
side info of their segments fit ``target_cbr x 3HWF``. Preflight warns when
the configured K does not fit with empty captions; at run time the real
captions are counted, K is lowered until everything fits, and a SKEM
selection with a fixed threshold that picks more keyframes than that is cut
(:func:`~lgvsc.semantic.selectors.cap_keyframes`: first and last frame, then
the highest ``S_rel``). Either way the trial says so in its extras:
``keyframes_capped: {asked, affordable}`` (and ``dropped``, the keyframes cut).

Components are built once per scheme (the VLM scorer and captioner, the keyframe
codec, the world model) and load their weights lazily through the process's
model cache (:mod:`lgvsc.semantic.model_cache`), so schemes and components on
the same folder share one copy; :meth:`LGVSC.models` lists them without
loading. The scorer's cost is counted per clip (``selection_cost`` in the
extras).

SFA's fixed length (``sfa_length: auto``, the default) is the world model's valid
length for SKIM's segment length ``ceil((F - 1) / (K - 1)) + 1``: under SKIM with
equal segments SFA and DSA then generate the same frames, as the paper notes.
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
from ...semantic.adapters import SFA, make_adapter
from ...semantic.calibration import CalibratedSKEM, MemoScorer
from ...semantic.captioners import CAPTIONERS, GivenCaption, make_captioner
from ...semantic.frames import window
from ...semantic.keyframe_codecs import KEYFRAME_CODECS, make_keyframe_codec, transmit_exact
from ...semantic.psss import DEFAULT_FOCUS
from ...semantic.receiver import reconstruct_chunks
from ...semantic.scorers import SCORERS, make_scorer
from ...semantic.selectors import SKEM, SKIM
from ...semantic.side_info import SIDE_INFO, make_side_info
from ...semantic.text_bits import decode_texts, encode_texts
from ...semantic.transmitter import (TransmitPlan, Transmitter, keyframes_for_budget,
                                     keyframes_within)
from ...semantic.world_models import WORLD_MODELS, make_world_model
from ..errors import UserError
from . import SCHEMES, DecodingConfig
from .fields import Modulation, Rate
from .transmission import FrameStream, MeasuredBER, Transmission, VideoScheme

PRESETS = {"skim-sfa": dict(selector="skim", adapter="sfa"),
           "skem-dsa": dict(selector="skem", adapter="dsa")}


class LGVSCConfig(DecodingConfig):
    preset: Literal["skim-sfa", "skem-dsa"] | None = None
    target_cbr: float = Field(gt=0)
    keyframes: int = Field(4, ge=2, description="K keyframes per video (first and last included)")
    keyframe_cbr: float | None = Field(None, gt=0, description="if given, K is the most keyframes "
                                       "of this CBR each (3HW x it uses) that fit target_cbr")
    selector: Literal["skim", "skem"] | None = None
    adapter: Literal["dsa", "sfa"] | None = None
    sfa_length: Annotated[int, Field(ge=2, le=1024)] | Literal["auto"] = Field(
        "auto", description="sfa: the fixed generated length (<= 1024 frames), or auto: the "
        "world model's valid length for SKIM's segment length ceil((F-1)/(K-1))+1")
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


def model_infos(specs: list[tuple[dict, Registry]]) -> list:
    """The :class:`~lgvsc.semantic.model_cache.ModelInfo` of every component spec
    ``(spec, registry)``, each key once (a scorer and a captioner on one VLM share
    it), from the components' ``model_info`` classmethods (nothing is loaded)."""
    out, seen = [], set()
    for spec, registry in specs:
        params = {k: v for k, v in spec.items() if k != "type"}
        for info in registry.get(spec["type"]).model_info(**params):
            if info.key not in seen:
                seen.add(info.key)
                out.append(info)
    return out


def sfa_auto_length(frames: int, keyframes: int) -> int:
    """SKIM's longest segment, ``ceil((F - 1) / (K - 1)) + 1`` frames (both keyframes
    included), what ``sfa_length: auto`` generates (rounded up to a valid length)."""
    if keyframes < 2 or frames < 2:
        return 2
    return -(-(frames - 1) // (keyframes - 1)) + 1


def floor_uses(k: int, h: int, w: int, codec, side_bits: int, digital: DigitalPipe,
               caption_bits: int) -> int:
    """Channel uses of ``k`` keyframes at their codec's floor, the side info of
    ``k - 1`` segments (``side_bits`` each) and ``caption_bits`` of captions."""
    segs = max(k - 1, 1)
    return (k * codec.min_uses(h, w, k) + digital.channel_uses(side_bits * segs)
            + digital.channel_uses(caption_bits))


def _empty_caption_bits(k: int) -> int:
    return int(encode_texts([""] * max(k - 1, 1)).numel())


def affordable_keyframes(total: int, f: int, h: int, w: int, codec, side_bits: int,
                         digital: DigitalPipe, most: int) -> int:
    """Most keyframes (2..``most``) whose floors, side info and empty captions fit
    ``total`` channel uses on an ``f`` x ``h`` x ``w`` clip; 0 when not even 2 fit."""
    return keyframes_within(total, lambda k: floor_uses(
        k, h, w, codec, side_bits, digital, _empty_caption_bits(k)), most)


@SCHEMES.register("lgvsc")
class LGVSC(VideoScheme):
    Config = LGVSCConfig
    measured_ber = MeasuredBER("captions, side info and keyframe side bits (the keyframes "
                               "go analog)", video=False)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.digital = DigitalPipe(cfg.modulation, "ldpc5g", cfg.rate, decoding=cfg.decoding(),
                                   precision=ctx.precision, device=ctx.device)
        self.side = _component(cfg.side_info, make_side_info, "side_info")
        self.codec = _component(cfg.keyframe_codec, make_keyframe_codec, "keyframe_codec")
        self.model = _component(cfg.world_model, make_world_model, "world_model")
        # built once for every clip (lazy: the first use loads the weights)
        self.scorer = (_component(cfg.scorer, make_scorer, "scorer") if cfg.selector == "skem"
                       else None)
        self.captioner = (None if cfg.captioner["type"] == "given"
                          else _component(cfg.captioner, make_captioner, "captioner"))
        self._plans: dict = {}

    @classmethod
    def check(cls, cfg, where):
        check_components(where, {
            "scorer": (cfg.scorer, SCORERS), "captioner": (cfg.captioner, CAPTIONERS),
            "side_info": (cfg.side_info, SIDE_INFO),
            "keyframe_codec": (cfg.keyframe_codec, KEYFRAME_CODECS),
            "world_model": (cfg.world_model, WORLD_MODELS)})

    @classmethod
    def models(cls, cfg):
        """The scorer (SKEM only), the captioner (unless ``given``), the keyframe codec
        and the world model, each model once."""
        specs = [(cfg.scorer, SCORERS)] if cfg.selector == "skem" else []
        if cfg.captioner["type"] != "given":
            specs.append((cfg.captioner, CAPTIONERS))
        specs += [(cfg.keyframe_codec, KEYFRAME_CODECS), (cfg.world_model, WORLD_MODELS)]
        return model_infos(specs)

    @classmethod
    def check_video(cls, cfg, video, where):
        """A keyframe count above the clip's frames is clamped (warned); a ``target_cbr``
        below what 2 keyframes at the codec's floor plus the side info and an empty
        caption of their segment need is refused (no clip could meet it); fewer
        affordable keyframes than asked is warned (the run sends fewer)."""
        f, h, w = video.frames, video.height, video.width
        out = []
        if cfg.keyframe_cbr is None and cfg.keyframes > f:
            out.append(f"{cfg.name}: keyframes {cfg.keyframes} > the {f} frames of video "
                       f"{video.label!r}; clamped to {f}")
        digital = DigitalPipe(cfg.modulation, "ldpc5g", cfg.rate)
        side = _component(cfg.side_info, make_side_info, "side_info")
        codec = _component(cfg.keyframe_codec, make_keyframe_codec, "keyframe_codec")
        total = channel_uses_for_cbr(cfg.target_cbr, f, h, w)
        k = min(2, f)
        floor = floor_uses(k, h, w, codec, side.num_bits, digital, _empty_caption_bits(k))
        if total < floor:
            raise ValueError(
                f"{where}.target_cbr: {cfg.target_cbr:g} gives {total} channel uses on video "
                f"{video.label!r} ({f}x{h}x{w}); {k} keyframe(s) at the "
                f"{cfg.keyframe_codec['type']} floor ({codec.min_uses(h, w, k)} uses each) "
                f"with the side info and an empty caption of their segment alone need "
                f"{floor}: target_cbr >= {cbr(floor, f, h, w):.3g} at the very least")
        fixed = _fixed_threshold(cfg)
        asked = f if fixed else _asked_keyframes(cfg, f, h, w, side.num_bits, digital)
        can = affordable_keyframes(total, f, h, w, codec, side.num_bits, digital, asked)
        if 2 <= can < asked:
            head = (f"threshold {cfg.threshold:g}: the budget affords at most {can} keyframes"
                    if fixed else f"the budget affords {can} of the {asked} keyframes asked")
            tail = (f"a selection with more is cut to {can} (highest S_rel kept)" if fixed
                    else f"sending {can} (fewer if the captions take more)")
            out.append(f"{cfg.name}: {head} on video {video.label!r}: "
                       f"{cfg.keyframe_codec['type']} needs at least "
                       f"{codec.min_uses(h, w, can)} channel uses per {h}x{w} keyframe and "
                       f"target_cbr {cfg.target_cbr:g} gives {total} in all; {tail}")
        return out

    @classmethod
    def warnings(cls, cfg, snrs):
        return component_warnings(cfg.name, {
            "scorer": (cfg.scorer, SCORERS), "captioner": (cfg.captioner, CAPTIONERS),
            "keyframe_codec": (cfg.keyframe_codec, KEYFRAME_CODECS),
            "world_model": (cfg.world_model, WORLD_MODELS)})

    # -- transmitter ---------------------------------------------------------
    def _captioner(self, video):
        """The scheme's captioner, or for ``given`` the clip's own captions."""
        if self.captioner is not None:
            return self.captioner
        return GivenCaption(video.captions, video.boundaries) if video.captions \
            else make_captioner("none")

    def target_keyframes(self, frames) -> int:
        """K: ``keyframes`` (or derived from ``target_cbr`` and ``keyframe_cbr``; for SKEM
        with a fixed threshold, any count), at most what the budget affords at the
        codec's floor with empty captions."""
        f, h, w = frames.shape[:3]
        asked = f if _fixed_threshold(self.cfg) else _asked_keyframes(
            self.cfg, f, h, w, self.side.num_bits, self.digital)
        total = channel_uses_for_cbr(self.cfg.target_cbr, f, h, w)
        can = affordable_keyframes(total, f, h, w, self.codec, self.side.num_bits,
                                   self.digital, asked)
        return min(asked, max(can, 2))

    def _selector(self, k: int, scorer):
        if self.cfg.selector == "skim":
            return SKIM(max(k - 1, 1))
        if self.cfg.threshold == "auto":
            return CalibratedSKEM(scorer, k, focus=self.cfg.focus)
        return SKEM(scorer, threshold=self.cfg.threshold, focus=self.cfg.focus)

    def plan(self, video) -> TransmitPlan:
        """The transmitter's plan for a clip (deterministic, so cached per clip)."""
        key = (video.name, id(video.frames))
        if key not in self._plans:
            self._plans[key] = self._plan(video)
        return self._plans[key]

    def _plan(self, video) -> TransmitPlan:
        """Plan with the most keyframes that fit with the real captions: K from
        :meth:`target_keyframes`, lowered (and a larger SKEM selection cut) until
        the keyframe floors, captions and side info fit the budget."""
        frames = video.frames
        f, h, w = frames.shape[:3]
        total = self.target_uses(video)
        asked = _asked_keyframes(self.cfg, f, h, w, self.side.num_bits, self.digital)
        k = self.target_keyframes(frames)
        scorer = None
        if self.scorer is not None:  # this clip's cost only; every pair scored once
            self.scorer.reset_cost()
            scorer = MemoScorer(self.scorer)
        captioner = self._captioner(video)
        picked = None
        while True:
            tx = Transmitter(self._selector(k, scorer), captioner, self.side, self.digital,
                             max_keyframes=k if f >= 2 else None)
            p = tx.plan(frames)
            n = len(p.keyframes)
            picked = picked or n + len(p.selection.dropped)
            if n <= 2 or self._cost_floor(p, h, w) <= total:
                break
            k = n - 1
        if _fixed_threshold(self.cfg):
            asked = picked  # a fixed threshold asks for what it picked
        if f >= 2 and (k < asked or p.selection.dropped):  # the budget, not the clip, decided
            p.capped = dict(asked=asked, affordable=k, dropped=list(p.selection.dropped))
        return p

    def _cost_floor(self, p: TransmitPlan, h: int, w: int) -> int:
        """Channel uses of plan ``p`` with its keyframes at the codec's floor."""
        k = len(p.keyframes)
        return (k * self.codec.min_uses(h, w, k) + self.digital.channel_uses(p.side_bits.numel())
                + self.digital.channel_uses(p.caption_bits.numel()))

    def adapter(self, video, p: TransmitPlan):
        """DSA, or SFA with ``sfa_length`` (``auto``: from F and the plan's K)."""
        if self.cfg.adapter == "dsa":
            return make_adapter("dsa")
        length = self.cfg.sfa_length
        if length == "auto":
            length = self.model.valid_length(sfa_auto_length(video.shape[0], len(p.keyframes)))
        return make_adapter("sfa", length=max(int(length), 2))

    # -- one trial -----------------------------------------------------------
    def keyframe_budget(self, video, p: TransmitPlan) -> int:
        """Channel uses per keyframe: what ``target_cbr x 3HWF`` leaves after the
        captions and side info, split evenly over the keyframes; refused when that is
        below the keyframe codec's floor."""
        total = self.target_uses(video)
        cap = self.digital.channel_uses(p.caption_bits.numel())
        side = self.digital.channel_uses(p.side_bits.numel())
        k = len(p.keyframes)
        per_kf = (total - cap - side) // k
        f, h, w = video.shape
        least = self.codec.min_uses(h, w, k)
        if per_kf < least:
            raise BudgetError(
                f"target_cbr {self.cfg.target_cbr:g} gives {total} channel uses, but the "
                f"captions ({cap} uses) and side info ({side}) alone take {cap + side}, "
                f"leaving {max(per_kf, 0)} per keyframe for the {k} keyframes, which need at "
                f"least {least} each ({self.cfg.keyframe_codec['type']} at {h}x{w}); target_cbr > "
                f"{cbr(cap + side + k * least, f, h, w):.3g} is needed at the very least")
        return per_kf

    #: keyframes sent per keyframe-codec call (analog symbols, then their side bits)
    KEYFRAME_BATCH = 32

    def transmit(self, video, channel, snr_db, generator):
        """Captions and side info first; then the keyframes in batches of
        :data:`KEYFRAME_BATCH` while the receiver rebuilds, segment by segment, every
        segment whose keyframes have arrived (a plan with at most that many
        keyframes: one batch, then the world model, as a whole-clip receiver would).
        Working set: one batch of keyframes (and their decoded images), the flows
        of one segment and one chunk of frames, whatever F; the plan keeps the
        keyframe indices, captions and side info."""
        p = self.plan(video)
        f, h, w = video.shape
        no = snr_db_to_no(snr_db)
        kf_budget = self.keyframe_budget(video, p)
        cap_rx = self.digital(p.caption_bits, channel, no, generator)
        side_rx = self.digital(p.side_bits, channel, no, generator)
        captions = decode_texts(cap_rx.bits, len(p.segments))
        descs = self._side_from_bits(side_rx.bits, len(p.segments))
        flows = _DenseFlows(self.side, descs, h, w)
        texts = [_motion_text(self.side, d) for d in descs]
        adapter = self.adapter(video, p)
        extra = dict(
            keyframes=p.keyframes, threshold=p.selection.threshold, keyframe_budget=kf_budget,
            keyframe_uses=0, keyframe_cbr=None, caption_uses=cap_rx.channel_uses,
            side_uses=side_rx.channel_uses, captions_sent=p.captions, captions_received=captions)
        if p.capped:
            extra["keyframes_capped"] = p.capped
        if isinstance(adapter, SFA):
            extra["sfa_length"] = self.model.valid_length(adapter.length)
        if p.selection.cost:
            extra["selection_cost"] = p.selection.cost
        tx = Transmission(None, 0, extra=extra, keyframes=[int(k) for k in p.keyframes])
        for res, nbits, part in ((cap_rx, p.caption_bits.numel(), "captions"),
                                 (side_rx, p.side_bits.numel(), "side info")):
            tx.add_digital(res, int(nbits), part)
        receive = self._receive(video, p, kf_budget, (captions, texts, flows), adapter, channel,
                                snr_db, generator, tx)
        tx.frames = FrameStream(receive, f, h, w)
        return tx

    def _receive(self, video, p, kf_budget, side, adapter, channel, snr_db, generator, tx):
        """Send the keyframes batch by batch and rebuild the segments they close."""
        captions, texts, flows = side
        h, w = video.shape[1:]
        keys, decoded, done = p.keyframes, {}, 0
        for s in range(0, len(keys), self.KEYFRAME_BATCH):
            part = keys[s:s + self.KEYFRAME_BATCH]
            try:
                coded = transmit_exact(self.codec, video.frames[part], kf_budget, channel,
                                       snr_db, generator)
            except BudgetError as e:
                raise BudgetError(f"the {len(keys)} keyframes get {kf_budget} channel uses "
                                  f"each (target_cbr {self.cfg.target_cbr:g} after captions and "
                                  f"side info): {e}") from None
            tx.channel_uses += coded.analog_uses
            tx.extra["keyframe_uses"] += coded.channel_uses
            if coded.digital is not None:
                tx.add_digital(coded.digital, coded.side_bits, "keyframe side bits")
            decoded.update(zip(part, coded.images))
            ready = done
            while ready < len(p.segments) and p.segments[ready][1] in decoded:
                ready += 1
            yield from reconstruct_chunks(decoded, p.segments, captions, texts, flows,
                                          self.model, adapter, generator, lo=done, hi=ready)
            done = ready
            decoded = {k: v for k, v in decoded.items() if k >= part[-1]}  # the next's first
        tx.extra["keyframe_cbr"] = cbr(tx.extra["keyframe_uses"], len(keys), h, w)

    def _side_from_bits(self, bits, n):
        k = self.side.num_bits
        bits = bits.reshape(-1)
        return [self.side.from_bits(bits[i * k:(i + 1) * k]) for i in range(n)]


class _DenseFlows:
    """The dense motion prior of each segment (float32 [H, W, 2], or None for a side
    info form without one), made when the receiver asks for it: one segment's at a
    time, not K of them."""

    def __init__(self, side, descs, h: int, w: int):
        self.side, self.descs, self.h, self.w = side, descs, h, w

    def __len__(self) -> int:
        return len(self.descs)

    def __getitem__(self, n: int):
        if not hasattr(self.side, "dense"):
            return None
        return self.side.dense(self.descs[n], self.h, self.w)


def _fixed_threshold(cfg) -> bool:
    """SKEM with a fixed ``threshold``: the clip decides how many keyframes it picks."""
    return cfg.selector == "skem" and cfg.threshold != "auto"


def _asked_keyframes(cfg, f: int, h: int, w: int, side_bits: int, digital: DigitalPipe) -> int:
    """The K a config asks for on an ``f`` x ``h`` x ``w`` clip: ``keyframes`` clamped
    to ``f``, or the most of ``keyframe_cbr`` each that fit ``target_cbr``."""
    if cfg.keyframe_cbr is None:
        return min(cfg.keyframes, f)
    per_kf = int(cfg.keyframe_cbr * 3 * h * w)
    return keyframes_for_budget(int(cfg.target_cbr * 3 * h * w * f), per_kf, side_bits,
                                digital, f)


def _motion_text(side, desc) -> str:
    if hasattr(side, "text"):
        return side.text(desc)
    mean = getattr(desc, "mean", None)
    return "" if mean is None else f"motion score: {float(np.linalg.norm(mean)):.1f}"


class TextOnlyConfig(DecodingConfig):
    world_model: dict[str, Any] = Field(default_factory=lambda: {"type": "interp"},
                                        description="a text-to-video world model (real tier)")
    captioner: dict[str, Any] = Field(default_factory=lambda: {"type": "given"})
    frames_per_call: Annotated[int, Field(ge=2)] | Literal["clip"] = Field(
        33, description="frames generated per text-to-video call, each chunk with its own "
        "caption; clip: one caption and one call for the whole clip")
    rate: Rate = 1 / 3
    modulation: Modulation = "qpsk"


@SCHEMES.register("text-only", weights="a text-to-video world model "
                  "(world_model: {type: diffusers, path: ...})")
class TextOnly(VideoScheme):
    """The caption alone, rebuilt by a text-to-video model (real tier only).

    The clip is cut into chunks of ``frames_per_call`` frames (the last one shorter);
    the captioner describes each chunk from its frames, the captions go over the
    digital pipe as one payload (counted), and the world model generates each chunk
    from its received caption; the chunks concatenate to exactly F frames.

    A chunk with an empty caption is refused (:class:`~lgvsc.sim.errors.UserError`,
    one line naming the scheme, the clip and the chunk): a Text-Only trial with
    nothing to send is no transmission, and storing it as a failed trial would
    count the captioner's silence as the channel's outage. Preflight refuses
    ``captioner: none`` and a ``given`` captioner on a clip without captions.
    """

    Config = TextOnlyConfig
    measured_ber = MeasuredBER("the captions (the video is generated from them)", video=False)

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        reason = self.unavailable_reason(cfg)
        if reason:
            raise ValueError(f"text-only is unavailable: {reason}")
        self.model = _component(cfg.world_model, make_world_model, "world_model")
        self.captioner = (None if cfg.captioner["type"] == "given"
                          else _component(cfg.captioner, make_captioner, "captioner"))
        self.digital = DigitalPipe(cfg.modulation, "ldpc5g", cfg.rate, decoding=cfg.decoding(),
                                   precision=ctx.precision, device=ctx.device)
        self._captions: dict = {}

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
        if cfg.captioner.get("type") == "none":
            raise ValueError(f"{where}.captioner: 'none' sends no caption, and Text-Only sends "
                             "nothing else; use given (the clips' captions) or vlm")
        check_components(where, {"captioner": (cfg.captioner, CAPTIONERS),
                                 "world_model": (cfg.world_model, WORLD_MODELS)})

    @classmethod
    def check_video(cls, cfg, video, where):
        if cfg.captioner["type"] == "given" and not any(c.strip() for c in video.captions):
            raise ValueError(f"{where}.captioner: 'given' but video {video.label!r} has no "
                             "caption (give it caption: or captions:, or use captioner: "
                             "{type: vlm, ...})")
        return []

    @classmethod
    def models(cls, cfg):
        specs = [] if cfg.captioner["type"] == "given" else [(cfg.captioner, CAPTIONERS)]
        return model_infos(specs + [(cfg.world_model, WORLD_MODELS)])

    @classmethod
    def warnings(cls, cfg, snrs):
        return component_warnings(cfg.name, {"captioner": (cfg.captioner, CAPTIONERS),
                                             "world_model": (cfg.world_model, WORLD_MODELS)})

    def chunks(self, frames: int) -> list[tuple[int, int]]:
        """``[start, end)`` of every generation call: ``frames_per_call`` frames each,
        the last one shorter (the whole clip for ``clip``)."""
        n = frames if self.cfg.frames_per_call == "clip" else self.cfg.frames_per_call
        return [(s, min(s + n, frames)) for s in range(0, frames, n)]

    def captions(self, video) -> list[str]:
        """One caption per chunk (deterministic, so cached per clip); an empty one is
        refused."""
        key = (video.name, id(video.frames))
        if key not in self._captions:
            captioner = self.captioner or (GivenCaption(video.captions, video.boundaries)
                                           if video.captions else make_captioner("none"))
            chunks = self.chunks(len(video.frames))
            out = [captioner.caption(window(video.frames, s, e), s, e) for s, e in chunks]
            for (s, e), text in zip(chunks, out):
                if not text.strip():
                    raise UserError(
                        f"scheme {self.cfg.name!r}, video {video.name!r}: the "
                        f"{self.cfg.captioner['type']} captioner gave an empty caption for "
                        f"frames [{s}, {e}); Text-Only has nothing to send (give the clip a "
                        "caption, or use captioner: {type: vlm, ...})")
            self._captions[key] = out
        return self._captions[key]

    def transmit(self, video, channel, snr_db, generator):
        f, h, w = video.shape
        chunks = self.chunks(f)
        sent = self.captions(video)
        bits = encode_texts(sent)
        rx = self.digital(bits, channel, snr_db_to_no(snr_db), generator)
        received = decode_texts(rx.bits, len(chunks))
        tx = Transmission(None, 0, extra=dict(
            chunks=[list(c) for c in chunks], captions_sent=sent, captions_received=received,
            caption_uses=rx.channel_uses))
        tx.add_digital(rx, int(bits.numel()), "captions")
        tx.frames = FrameStream((self.model.generate_from_text(text, e - s, (h, w), generator)
                                 for (s, e), text in zip(chunks, received)), f, h, w)
        return tx


def _model_class(spec):
    from ...semantic.world_models import WORLD_MODELS

    return WORLD_MODELS.get(spec["type"])
