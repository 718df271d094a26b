"""Scenario files: YAML -> validated pydantic models.

Every problem is reported as one line naming the file, the field path and
what is allowed, e.g.
``scenarios/x.yaml: schemes[1].modulation: Input should be 'bpsk', 'qpsk', ...``.
Component fields (``channel``, each scheme) are validated by the component
registered under their ``type``.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from ..link.channels import CHANNELS
from ..link.registry import UnknownComponentError
from .errors import UserError
from .metrics import METRICS
from .schemes import SCHEMES
from .video import VideoSpec


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelSpec(BaseModel):
    """``type`` plus that channel's own settings (checked by its constructor)."""

    model_config = ConfigDict(extra="allow")
    type: str
    snr_db: list[float] = Field(min_length=1, description="Es/N0 per complex channel use, dB")

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MonteCarloSpec(Strict):
    batch_blocks: int = Field(100, gt=0, description="blocks per batch (link)")
    max_batches: int = Field(100, gt=0, description="stop after this many batches")
    target_block_errors: int | None = Field(100, gt=0, description="stop once reached")
    trials: int = Field(1, gt=0, description="independent trials per unit (video)")


class StatisticsSpec(Strict):
    """How summaries are computed (not a parameter of any unit: changing it only
    rewrites the summary)."""

    confidence: float = Field(0.95, gt=0, lt=1, description="interval confidence level")
    interval: Literal["t", "bootstrap"] = Field(
        "t", description="quality intervals over per-video means: Student-t or a BCa bootstrap")


class ExecutorSpec(Strict):
    type: str = "local"
    workers: int = Field(1, gt=0)
    address: str | None = None


class Scenario(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["link", "video"]
    seed: int = 0
    description: str = ""
    device: Literal["cpu", "cuda"] = "cpu"
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
    executor: ExecutorSpec = ExecutorSpec()
    base_dir: str = Field("", description="folder relative paths resolve against "
                                          "(set from the scenario file; not a parameter)")

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.kind == "link":
            for key in ("videos", "metrics"):
                if getattr(self, key):
                    raise ValueError(f"{key}: only video scenarios take {key}")
            return self
        if not self.videos:
            raise ValueError("videos: a video scenario needs at least one video")
        labels = [v.label() for v in self.videos]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"videos: labels must be unique (set name:); repeated: {', '.join(dup)}")
        if not self.metrics:
            self.metrics = ["psnr", "ssim"]
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

    # -- derived -------------------------------------------------------------
    def scheme_configs(self) -> list[BaseModel]:
        return [SCHEMES.get(s["type"]).Config.model_validate(s) for s in self.schemes]

    def unit_parameters(self, scheme: str, video: str = "") -> dict[str, Any]:
        """What one unit of ``scheme`` (on ``video``) depends on. SNR and trial are part
        of the unit's identity; the SNR list, the trial count, the other schemes and
        videos are not, so a sweep can grow without recomputing what it holds. Neither
        are the name, description, executor, ``failure`` or ``statistics``, which only
        change how stored units are summarised."""
        d = self.model_dump(mode="json")
        ch = {k: v for k, v in d["channel"].items() if k != "snr_db"}
        out = {k: d[k] for k in ("kind", "seed", "device", "precision")}
        out.update(channel=ch, scheme=next(s for s in d["schemes"] if s["name"] == scheme))
        if self.kind == "link":
            out["monte_carlo"] = {k: v for k, v in d["monte_carlo"].items() if k != "trials"}
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


def _first_error(e: ValidationError, prefix: tuple = ()) -> str:
    err = e.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "missing required field"
    extra = f" (got {err['input']!r})" if err["type"] not in ("missing", "extra_forbidden") \
        and not isinstance(err.get("input"), (dict, list)) else ""
    loc = prefix + tuple(err["loc"])
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


def validate(data: Any, base_dir: str | Path | None = None) -> Scenario:
    """Validate a parsed YAML mapping; raises ``ValueError`` with a one-line message."""
    if not isinstance(data, dict):
        raise ValueError("the file must hold a YAML mapping (key: value pairs)")
    if base_dir is not None:
        data = {**data, "base_dir": str(base_dir)}
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise ValueError(_first_error(e)) from None
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
            raise ValueError(_first_error(e, ("schemes", i))) from None
        sc.schemes[i] = cfg.model_dump(mode="json")  # with defaults: the resolved entry
    return sc


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_variables(data: Any, loc: tuple = ()) -> Any:
    """Replace ``${NAME}`` in strings with environment variables (model paths are
    set per machine, never written into the file); an unset one names its field."""
    if isinstance(data, dict):
        return {k: expand_variables(v, loc + (k,)) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_variables(v, loc + (i,)) for i, v in enumerate(data)]
    if isinstance(data, str):
        def sub(m):
            if m.group(1) not in os.environ:
                raise ValueError(f"{_loc(loc)}: ${{{m.group(1)}}} is not set (export it, "
                                 "e.g. to a local model folder)")
            return os.environ[m.group(1)]
        return _VAR.sub(sub, data)
    return data


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every failure is a one-line :class:`UserError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    try:
        return validate(expand_variables(data), path.resolve().parent)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
