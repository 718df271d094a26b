"""Transmission schemes, registered by name (``type:`` in a scenario).

A scheme class declares ``kind`` (the scenario kind it serves) and a pydantic
``Config`` model holding its YAML entry (``name``, ``type`` and its settings).
Configs derive from :class:`SchemeConfig`, an
:class:`~lgvsc.sim.limits.InputModel` (finite numbers, no booleans for numbers);
every ``*_cbr`` field is at most :data:`~lgvsc.sim.schemes.fields.MAX_CBR`.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from ...link.registry import Registry
from ..limits import InputModel
from .fields import MAX_CBR

SCHEMES: Registry[type["Scheme"]] = Registry("scheme")


class SchemeConfig(InputModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[^|]+$")
    type: str

    @field_validator("*")
    @classmethod
    def _cbr_bound(cls, v, info: ValidationInfo):
        """A channel bandwidth ratio (``*_cbr``: channel uses per pixel value) above
        :data:`MAX_CBR` is no operating point of any scheme here."""
        if (info.field_name or "").endswith("_cbr") and isinstance(v, (int, float)) \
                and v > MAX_CBR:
            raise ValueError(f"a CBR must be <= {MAX_CBR:g} channel uses per pixel value")
        return v


class Scheme:
    kind: str = ""
    Config: type[SchemeConfig] = SchemeConfig

    def __init__(self, cfg: SchemeConfig, ctx):
        self.cfg, self.ctx = cfg, ctx

    @classmethod
    def unavailable_reason(cls, cfg: SchemeConfig) -> str | None:
        """None when the scheme can run with ``cfg`` here, else why not; the runner
        says so once and skips its units (no made-up results)."""
        return None

    @classmethod
    def check(cls, cfg: SchemeConfig, where: str) -> None:
        """Check ``cfg``'s nested component specs (type, parameters, model paths)
        without loading weights; raise ``ValueError`` with one line starting with the
        field path, e.g. ``schemes[1].scorer.path: ...``. ``where`` is the scheme's path
        (``schemes[1]``). Default: nothing nested."""

    @classmethod
    def check_video(cls, cfg: SchemeConfig, video, where: str) -> list[str]:
        """Whether ``cfg`` can send the clip ``video`` (a :class:`~lgvsc.sim.video.VideoInfo`:
        frames, size, captions, known before anything is decoded): raise ``ValueError``
        (one line) for a clip it cannot send at all, return one-line warnings for a
        setting it clamps or that may not mean what the user thinks. Default: any clip."""
        return []

    @classmethod
    def models(cls, cfg: SchemeConfig) -> list:
        """The models a unit of ``cfg`` loads, as
        :class:`~lgvsc.semantic.model_cache.ModelInfo` (key + estimated memory),
        computed from the config without loading anything. The runner prints them
        before a run and releases each after the last unit that needs it. Default:
        none (the embedded tier loads no weights)."""
        return []

    @classmethod
    def warnings(cls, cfg: SchemeConfig, snrs: list[float]) -> list[str]:
        """One-line warnings about ``cfg`` at the scenario's SNRs ``snrs`` (dB): settings
        that run but are unlikely to mean what the user thinks. ``lgvsc validate``
        and ``lgvsc run`` print them; they never stop a run."""
        return []


from . import codec_ldpc, keyframe_jscc, lgvsc, link, softcast  # noqa: E402,F401  (register the schemes)
