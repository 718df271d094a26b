"""Scenario files: YAML -> validated pydantic models.

Every problem is reported as one line naming the file, the field path and
what is allowed, e.g.
``scenarios/x.yaml: schemes[1].modulation: Input should be 'bpsk', 'qpsk', ...``.
Component fields (``channel``, each scheme) are validated by the component
registered under their ``type``.

What a file may hold (:mod:`lgvsc.sim.limits`): UTF-8 text of at most 1 MiB,
nested at most 50 levels, at most 100,000 values once YAML aliases are
expanded; finite numbers only (``.nan``, ``.inf``, ``1e400`` are refused, also
inside component settings) and no ``true``/``false`` where a number is due;
at most 1,000,000 units; clips and link batches that fit in memory.

Environment variables: ``${NAME}`` is replaced by the variable NAME only in
the fields that name files, folders or services set per machine, the keys
:data:`EXPAND_KEYS`: ``path``, ``checkpoint``, ``source``, ``captions``,
``address`` (``executor.address``) and the OpenSora world model's ``model``,
``vae`` and ``text_encoder``. A ``${`` anywhere else is refused (so a secret
cannot leak into names, descriptions, results or error messages); ``$${``
writes a literal ``${`` everywhere. An error about an expanded field shows
the ``${NAME}`` text, never the value.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StrictBool,
                      ValidationError, field_validator, model_validator)

from ..link.channels import CHANNELS
from ..link.registry import UnknownComponentError
from . import limits
from .errors import UserError
from .limits import InputModel
from .metrics import METRICS
from .schemes import SCHEMES
from .video import BUILTIN_FILES, VideoSpec, builtin_shots

#: Es/N0 range (dB) a scenario's ``snr_db`` takes: below -50 dB every scheme here
#: receives noise (QAM capacity < 2e-5 bit per use), above 60 dB nothing measured
#: changes any more; beyond both, float32 noise powers and LLRs head for
#: overflow / underflow (the link layer's own limit is [-100, 100] dB)
SNR_DB_RANGE = (-50.0, 60.0)


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid")


def _snr_in_range(v: float) -> float:
    lo, hi = SNR_DB_RANGE
    if not lo <= v <= hi:
        raise ValueError(f"Es/N0 must be in [{lo:g}, {hi:g}] dB")
    return v


class ChannelSpec(InputModel):
    """``type`` plus that channel's own settings (checked by its constructor)."""

    model_config = ConfigDict(extra="allow")
    type: str
    snr_db: list[Annotated[float, AfterValidator(_snr_in_range)]] = Field(
        min_length=1, description="Es/N0 per complex channel use, dB: distinct finite numbers "
        "in [-50, 60] (below, every scheme receives noise; above, nothing measured changes; "
        "beyond both, float32 noise powers overflow or underflow)")

    @field_validator("snr_db")
    @classmethod
    def _distinct(cls, v):
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            shown = ", ".join(f"{x:g}" for x in dup)
            raise ValueError(f"SNRs must be distinct; repeated: {shown} dB")
        return v

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MonteCarloSpec(Strict):
    batch_blocks: int = Field(100, gt=0, description="blocks per batch (link)")
    max_batches: int = Field(100, gt=0, description="stop after this many batches")
    target_block_errors: int | None = Field(100, gt=0, description="stop once reached")
    trials: int = Field(1, gt=0, description="independent trials per unit (video)")
    stop_at_zero_errors: StrictBool = Field(
        False, description="link: once a point of a scheme saw no block error in its whole "
        "budget, that scheme's higher SNR points are skipped (as Sionna's sim_ber)")
    min_bler: float | None = Field(
        None, gt=0, lt=1, description="link: once a point's BLER falls below this, that "
        "scheme's higher SNR points are skipped")

    #: how a sweep is cut short, not what any unit computes: outside unit fingerprints
    SWEEP_STOP: ClassVar[tuple[str, ...]] = ("stop_at_zero_errors", "min_bler")

    def stops_early(self) -> bool:
        """Whether a link sweep may skip SNR points (:data:`SWEEP_STOP`)."""
        return self.stop_at_zero_errors or self.min_bler is not None

    def link_parameters(self) -> dict[str, Any]:
        """What a link unit's result depends on: everything but the video ``trials``
        and the sweep stop options."""
        return {k: v for k, v in self.model_dump(mode="json").items()
                if k != "trials" and k not in self.SWEEP_STOP}


class StatisticsSpec(Strict):
    """How summaries are computed (not a parameter of any unit: changing it only
    rewrites the summary)."""

    confidence: float = Field(0.95, gt=0, lt=1, description="interval confidence level")
    interval: Literal["t", "bootstrap"] = Field(
        "t", description="quality intervals over per-video means: Student-t or a BCa bootstrap")


class ExecutorSpec(Strict):
    type: str = "local"
    workers: int = Field(1, gt=0, le=1024, description="parallel worker processes (<= 1024)")
    address: str | None = None


FrameChoice = Annotated[int, Field(ge=-(2 ** 31), lt=2 ** 31)] | Literal["keyframes", "middle"]


class FigureSpec(Strict):
    """The Fig. 1 grid: one frame of each video, original + one column per saved
    scheme, one row per SNR, from trial ``save.trials[0]``."""

    frame: Annotated[int, Field(ge=-(2 ** 31), lt=2 ** 31)] | Literal["middle"] = Field(
        "middle", description="frame index (negative: from the end) or middle")
    snr_db: list[Annotated[float, AfterValidator(_snr_in_range)]] | None = Field(
        None, min_length=1, description="rows (SNRs of the sweep); default: its lowest, "
                                        "middle and highest")


class SaveSpec(Strict):
    """What a video run saves under ``<results>/media/`` (PNG frames, H.264 videos)
    for the units of ``schemes`` x ``trials`` (:mod:`lgvsc.sim.media`). Media are no
    part of a unit's parameters: changing ``save`` recomputes nothing stored."""

    frames: list[FrameChoice] = Field(
        default_factory=lambda: [0, "middle", -1], max_length=1000,
        description="frame indices (negative: from the end), middle, or keyframes (the "
                    "frames a scheme sent as keyframes; none for schemes without)")
    videos: StrictBool | list[Annotated[float, AfterValidator(_snr_in_range)]] = Field(
        False, description="save received videos: false, true (every SNR) or SNRs")
    schemes: list[str] | None = Field(None, min_length=1,
                                      description="scheme names (default: all)")
    trials: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    figure: FigureSpec = FigureSpec()

    def check(self, sc: "Scenario") -> None:
        """Names, SNRs and trials that ``sc`` has (``ValueError`` naming the field)."""
        names = [e["name"] for e in sc.schemes]
        for i, n in enumerate(self.schemes or []):
            if n not in names:
                raise ValueError(f"save.schemes[{i}]: unknown scheme {n!r}; valid: "
                                 f"{', '.join(map(repr, names))}")
        sweep = [float(x) for x in sc.channel.snr_db]
        lists = [("save.videos", self.videos if isinstance(self.videos, list) else []),
                 ("save.figure.snr_db", self.figure.snr_db or [])]
        for where, values in lists:
            for i, v in enumerate(values):
                if float(v) not in sweep:
                    raise ValueError(f"{where}[{i}]: {v:g} dB is not an SNR of the sweep "
                                     f"(channel.snr_db: {', '.join(f'{x:g}' for x in sweep)})")
        for i, t in enumerate(self.trials):
            if t >= sc.monte_carlo.trials:
                raise ValueError(f"save.trials[{i}]: trial {t} is not run (monte_carlo.trials "
                                 f"is {sc.monte_carlo.trials}; trials count from 0)")


class Scenario(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["link", "video"]
    seed: int = Field(0, ge=-(2 ** 63), lt=2 ** 63, description="a 64-bit integer")
    description: str = ""
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="where the link layer computes: every unit's random generator "
        "(channel noise and fading are drawn on it, then moved to the tensors' device), "
        "the digital pipe's code/modem tensors and link-level blocks. Real-tier components "
        "(scorer, captioner, world model, keyframe codec) have their own `device:` setting "
        "(default auto: CUDA when available), independent of this one; deep metrics run "
        "here")
    precision: Literal["single", "double"] = "single"
    channel: ChannelSpec
    schemes: list[dict[str, Any]] = Field(min_length=1)
    videos: list[VideoSpec] = Field(default_factory=list, description="video scenarios only")
    metrics: list[str] = Field(default_factory=list, description="video metrics (registry)")
    monte_carlo: MonteCarloSpec = MonteCarloSpec()
    failure: Literal["drop", "conceal"] = Field(
        "drop", description="video: failed trials are left out of quality numbers (drop, the "
                            "paper's convention) or scored as the concealed video (conceal)")
    statistics: StatisticsSpec = StatisticsSpec()
    save: SaveSpec | None = Field(
        None, description="video: frames and videos to save (default: 3 frames of every "
                          "unit of trial 0, no videos; see lgvsc.sim.media)")
    executor: ExecutorSpec = ExecutorSpec()
    base_dir: str = Field("", description="folder relative paths resolve against "
                                          "(set from the scenario file; not a parameter)")
    #: {field location: (``${NAME}`` text, value)} filled in by :func:`load_scenario`
    _expanded: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.kind == "link":
            for key in ("videos", "metrics", "save"):
                if getattr(self, key):
                    raise ValueError(f"{key}: only video scenarios take {key}")
            return self
        for key in MonteCarloSpec.SWEEP_STOP:  # set to anything but its default
            if getattr(self.monte_carlo, key) not in (False, None):
                raise ValueError(f"monte_carlo.{key}: only link scenarios take {key} (a video "
                                 "sweep runs every SNR point)")
        if not self.videos:
            raise ValueError("videos: a video scenario needs at least one video")
        labels = [v.label() for v in self.videos]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"videos: labels must be unique (set name:); repeated: {', '.join(dup)}")
        if not self.metrics:
            self.metrics = ["psnr", "ssim"]
        if self.save is None:
            self.save = SaveSpec()
        self.save.check(self)
        for i, m in enumerate(self.metrics):
            if m not in METRICS:
                raise ValueError(f"metrics[{i}]: unknown metric {m!r}; valid: {', '.join(METRICS.names())}")
        return self

    @field_validator("schemes")
    @classmethod
    def _unique_names(cls, v):
        names = [s.get("name") for s in v if isinstance(s, dict)]
        dup = sorted({n for n in names if names.count(n) > 1 and n is not None})
        if dup:
            raise ValueError(f"scheme names must be unique; repeated: {', '.join(map(str, dup))}")
        return v

    def hide_expanded(self, msg: str) -> str:
        """``msg`` with the value of every ``${NAME}`` field put back as its ``${NAME}``
        text: for messages about this scenario's fields (preflight, warnings)."""
        return _scrub(msg, self._expanded)

    # -- derived -------------------------------------------------------------
    def unit_count(self) -> int:
        """Number of units, schemes x SNRs (x videos x trials), without building them."""
        n = len(self.schemes) * len(self.channel.snr_db)
        return n if self.kind == "link" else n * len(self.videos) * self.monte_carlo.trials

    def scheme_configs(self) -> list[BaseModel]:
        return [SCHEMES.get(s["type"]).Config.model_validate(s) for s in self.schemes]

    def unit_parameters(self, scheme: str, video: str = "") -> dict[str, Any]:
        """What one unit of ``scheme`` (on ``video``) depends on. SNR and trial are part
        of the unit's identity; the SNR list, the trial count, the other schemes and
        videos are not, so a sweep can grow without recomputing what it holds. Neither
        are the name, description, executor, ``failure`` or ``statistics``, which only
        change how stored units are summarised, nor the sweep stop options
        (``monte_carlo.stop_at_zero_errors`` / ``min_bler``), which only decide which
        units run."""
        d = self.model_dump(mode="json")
        ch = {k: v for k, v in d["channel"].items() if k != "snr_db"}
        out = {k: d[k] for k in ("kind", "seed", "device", "precision")}
        entry = next(s for s in d["schemes"] if s["name"] == scheme)
        # where a unit runs (Ray resources) is no parameter of its result
        out.update(channel=ch, scheme={k: v for k, v in entry.items() if k != "resources"})
        if self.kind == "link":
            out["monte_carlo"] = self.monte_carlo.link_parameters()
        else:
            out.update(video=self.video(video).model_dump(mode="json"), metrics=d["metrics"])
        return out

    def video(self, label: str) -> VideoSpec:
        return next(v for v in self.videos if v.label() == label)


# -- loading -----------------------------------------------------------------
def _loc(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


_TYPE_TAGS = {"int", "float", "str", "bool", "none", "list", "tuple", "dict"}


def _field_loc(loc: tuple) -> tuple:
    """A pydantic error location without the union-member tags it adds
    (``threshold.constrained-float`` -> ``threshold``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and (
        p in _TYPE_TAGS or any(c in p for c in "[]-'"))))


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 400-digit number stays short)."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def _original(loc: tuple, expanded: dict | None) -> str | None:
    """The ``${NAME}`` text of the expanded field ``loc`` is at or inside, else None."""
    for where, (original, _) in (expanded or {}).items():
        if tuple(loc[:len(where)]) == where:
            return original
    return None


def _first_error(e: ValidationError, prefix: tuple = (), expanded: dict | None = None) -> str:
    err = e.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "missing required field"
    elif err["type"] == "int_parsing_size":
        msg = "too large for an integer"
    loc = prefix + _field_loc(tuple(err["loc"]))
    original = _original(loc, expanded)
    shown = repr(original) if original is not None else _shown(err.get("input"))
    extra = f" (got {shown})" if err["type"] not in ("missing", "extra_forbidden") \
        and (original is not None or not isinstance(err.get("input"), (dict, list))) else ""
    return f"{_loc(loc)}: {msg}{extra}" if loc else f"{msg}{extra}"


def _check_channel(ch: ChannelSpec) -> None:
    try:
        cls = CHANNELS.get(ch.type)
    except UnknownComponentError as e:
        raise ValueError(f"channel.type: {e}") from None
    sig = inspect.signature(cls).parameters
    for key in ch.params():
        if key not in sig:
            raise ValueError(f"channel.{key}: unknown key for channel {ch.type!r}; "
                             f"allowed: type, snr_db{''.join(', ' + a for a in sig)}")
    try:
        cls(**ch.params())
    except (TypeError, ValueError) as e:
        raise ValueError(f"channel: {e}") from None
    for name, p in sig.items():  # resolve defaults so the stored scenario is complete
        if name not in ch.model_extra and p.default is not inspect.Parameter.empty:
            ch.model_extra[name] = p.default


def _check_unit_count(sc: Scenario) -> None:
    """Refuse more than :data:`~lgvsc.sim.limits.MAX_UNITS` units (counted, not built)."""
    n = sc.unit_count()
    if n <= limits.MAX_UNITS:
        return
    parts = f"{len(sc.schemes)} schemes x {len(sc.channel.snr_db)} SNRs"
    video = sc.kind == "video"
    if video:
        parts += f" x {len(sc.videos)} videos x {sc.monte_carlo.trials} trials"
    where = "monte_carlo.trials" if video and sc.monte_carlo.trials > 1 else "channel.snr_db"
    raise limits.LimitError(f"{where}: {n:,} units ({parts}) are more than the "
                            f"{limits.MAX_UNITS:,} one scenario may hold; split the sweep")


def validate(data: Any, base_dir: str | Path | None = None, *,
             expanded: dict | None = None) -> Scenario:
    """Validate a parsed YAML mapping; raises ``ValueError`` with a one-line message.

    ``expanded``: {field location: (``${NAME}`` text, value)} of the fields
    :func:`expand_variables` filled in; errors there show the text, not the value.
    """
    if not isinstance(data, dict):
        raise ValueError("the file must hold a YAML mapping (key: value pairs)")
    bad = limits.find_non_finite(data)
    if bad:
        raise ValueError(f"{_loc(bad[0])}: must be a finite number (got {_shown(bad[1])})")
    if base_dir is not None:
        data = {**data, "base_dir": str(base_dir)}
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise ValueError(_first_error(e, expanded=expanded)) from None
    _check_channel(sc.channel)
    for i, s in enumerate(sc.schemes):
        if "type" not in s:
            raise ValueError(f"schemes[{i}].type: missing required field; valid: {', '.join(SCHEMES.names())}")
        try:
            cls = SCHEMES.get(s["type"])
        except UnknownComponentError as e:
            raise ValueError(f"schemes[{i}].type: {e}") from None
        if cls.kind != sc.kind:
            raise ValueError(f"schemes[{i}].type: {s['type']!r} is a {cls.kind} scheme, "
                             f"not usable in a {sc.kind} scenario")
        try:
            cfg = cls.Config.model_validate(s)
        except ValidationError as e:
            raise ValueError(_first_error(e, ("schemes", i), expanded)) from None
        sc.schemes[i] = cfg.model_dump(mode="json")  # with defaults: the resolved entry
    _check_unit_count(sc)
    return sc


# -- resources ---------------------------------------------------------------
def _block_bits(cfg: BaseModel) -> tuple[int, int]:
    """(coded bits per block, working factor) of a link scheme config: ``k`` uncoded,
    the rate-matched codeword length with a ``rate`` and BP decoding
    (see :mod:`lgvsc.sim.schemes.link`)."""
    from ..link.code import ldpc_codeword_length
    from ..link.modem import bits_per_symbol

    k = int(getattr(cfg, "k", 0) or 0)
    rate = getattr(cfg, "rate", None)
    if k and rate:
        n = ldpc_codeword_length(k, rate, bits_per_symbol(cfg.modulation))
        return n, limits.LDPC_WORKING_FACTOR
    return k, limits.LINK_WORKING_FACTOR


def clip_extent(v: VideoSpec) -> tuple[int | None, tuple[int, int] | None]:
    """(frames, (H, W)) of a clip as far as the spec tells without opening a file."""
    kind, _, rest = v.source.partition(":")
    if kind == "synthetic":
        return v.frames or 32, tuple(v.size) if v.size else (128, 128)
    frames = v.frames
    if kind == "builtin" and rest in BUILTIN_FILES:
        total = builtin_shots(rest)[0]
        have = max(0, -(-(total - v.start) // v.stride))
        frames = min(frames, have) if frames else have
    return frames, tuple(v.size) if v.size else None


def check_resources(sc: Scenario) -> None:
    """Refuse (:class:`~lgvsc.sim.limits.LimitError`) a link batch or a clip that
    cannot fit in this machine's memory. Not part of :func:`validate`: a stored
    scenario stays readable on a smaller machine."""
    if sc.kind == "link":
        for cfg in sc.scheme_configs():
            bits, factor = _block_bits(cfg)
            limits.check_link_batch(f"monte_carlo.batch_blocks (scheme {cfg.name!r})",
                                    sc.monte_carlo.batch_blocks, bits,
                                    4 if sc.precision == "single" else 8, factor)
    for i, v in enumerate(sc.videos):
        frames, size = clip_extent(v)
        if size:
            limits.check_video_memory(f"videos[{i}]", frames, *size,
                                      streamed=not v.source.startswith("synthetic:"))


# -- environment variables ---------------------------------------------------
#: keys whose string values may name ``${VARIABLES}``: files, folders and services
#: set per machine (model weights, clips, caption sidecars, a Ray address)
EXPAND_KEYS = ("path", "checkpoint", "source", "captions", "address", "model", "vae",
               "text_encoder")
_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")
_HINT = "write $${ for a literal ${"


def _expand_text(text: str, loc: tuple) -> tuple[str, bool]:
    """``text`` with ``$${`` -> ``${`` and, in an :data:`EXPAND_KEYS` field, ``${NAME}``
    -> the variable; (result, whether a variable was used)."""
    allowed = bool(loc) and loc[-1] in EXPAND_KEYS
    used = False

    def sub(m):
        nonlocal used
        if m.group(0) == "$${":
            return "${"
        name = m.group(1)
        if name is None:
            raise ValueError(f"{_loc(loc)}: '${{' must start a variable ${{NAME}}; {_HINT}")
        if not allowed:
            raise ValueError(f"{_loc(loc)}: ${{{name}}} is only expanded in path fields "
                             f"({', '.join(EXPAND_KEYS)}); {_HINT}")
        if name not in os.environ:
            raise ValueError(f"{_loc(loc)}: ${{{name}}} is not set (export it, "
                             "e.g. to a local model folder)")
        used = True
        return os.environ[name]

    return _REF.sub(sub, text), used


def expand_variables(data: Any, loc: tuple = (), expanded: dict | None = None) -> Any:
    """Replace ``${NAME}`` with environment variables in the :data:`EXPAND_KEYS` fields
    (model paths are set per machine, never written into the file) and ``$${`` with
    ``${`` everywhere; a ``${`` elsewhere, or an unset variable, names its field.
    ``expanded`` (if given) receives {location: (original text, value)}."""
    if isinstance(data, dict):
        return {k: expand_variables(v, loc + (k,), expanded) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_variables(v, loc + (i,), expanded) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        out, used = _expand_text(data, loc)
        if used and expanded is not None:
            expanded[loc] = (data, out)
        return out
    return data


def _scrub(msg: str, expanded: dict) -> str:
    """``msg`` with every expanded value (4+ characters) put back as its ``${NAME}`` text."""
    for original, value in expanded.values():
        if len(value) >= 4 and value != original:
            msg = msg.replace(repr(value), repr(original)).replace(value, original)
    return msg


# -- reading -----------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than
    :data:`~lgvsc.sim.limits.MAX_DEPTH` while composing (before recursion overflows)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > limits.MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise limits.LimitError(f"nested deeper than {limits.MAX_DEPTH} levels "
                                        f"(line {line})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    return []


def _measure(root) -> None:
    """Refuse a composed YAML graph that expands (aliases followed) to more than
    :data:`~lgvsc.sim.limits.MAX_NODES` values, nests deeper than ``MAX_DEPTH`` or
    holds itself. Each node is counted once (memoised), so this is linear in the file."""
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)
    active: set[int] = set()
    deep = f"nested deeper than {limits.MAX_DEPTH} levels once YAML aliases are expanded"

    def walk(node, level: int) -> tuple[int, int]:
        key = id(node)
        if key not in memo:
            if key in active:
                raise limits.LimitError(f"a YAML alias refers to a collection that holds it "
                                        f"(line {node.start_mark.line + 1})")
            if level > limits.MAX_DEPTH:
                raise limits.LimitError(deep)
            active.add(key)
            count, height = 1, 1
            for child in _children(node):
                n, h = walk(child, level + 1)
                count, height = count + n, max(height, h + 1)
                if count > limits.MAX_NODES:
                    raise limits.LimitError(
                        f"YAML aliases expand to more than {limits.MAX_NODES:,} values "
                        f"(line {node.start_mark.line + 1}); write the values out")
            active.discard(key)
            memo[key] = (count, height)
        count, height = memo[key]
        if level - 1 + height > limits.MAX_DEPTH:
            raise limits.LimitError(deep)
        return count, height

    walk(root, 1)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document within :mod:`~lgvsc.sim.limits`' size limits; raises
    :class:`~lgvsc.sim.limits.LimitError` or ``yaml.YAMLError``."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """The UTF-8 text of scenario file ``path``, at most
    :data:`~lgvsc.sim.limits.MAX_FILE_BYTES`; every failure a one-line :class:`UserError`."""
    limit = limits.MAX_FILE_BYTES
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw) > limit:
        raise UserError(f"{path}: larger than the {limits.format_bytes(limit)} a scenario file "
                        "may hold (a scenario is a few kB of YAML)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                        f"{e.start})") from None
    nul = raw.find(b"\0")
    if nul >= 0:
        raise UserError(f"{path}: a binary file, not YAML text (NUL byte at offset {nul})")
    return text


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every failure is a one-line :class:`UserError`."""
    path = Path(path)
    text = read_text(path)
    try:
        data = parse_yaml(text)
    except limits.LimitError as e:
        raise UserError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    expanded: dict = {}
    try:
        sc = validate(expand_variables(data, expanded=expanded), path.resolve().parent,
                      expanded=expanded)
        check_resources(sc)
        sc._expanded = expanded
        return sc
    except ValueError as e:
        raise UserError(f"{path}: {_scrub(str(e), expanded)}") from None
