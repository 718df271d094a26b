"""Transmission schemes, registered by name (``type:`` in a scenario).

A scheme class declares ``kind`` (the scenario kind it serves) and a pydantic
``Config`` model holding its YAML entry (``name``, ``type`` and its settings).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ...link.registry import Registry

SCHEMES: Registry[type["Scheme"]] = Registry("scheme")


class SchemeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[^|]+$")
    type: str


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
    def warnings(cls, cfg: SchemeConfig, snrs: list[float]) -> list[str]:
        """One-line warnings about ``cfg`` at the scenario's SNRs ``snrs`` (dB): settings
        that run but are unlikely to mean what the user thinks. ``lgvsc validate``
        and ``lgvsc run`` print them; they never stop a run."""
        return []


from . import codec_ldpc, keyframe_jscc, lgvsc, link, softcast  # noqa: E402,F401  (register the schemes)
