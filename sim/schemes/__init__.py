"""Transmission schemes, registered by name (``type:`` in a scenario).

A scheme class declares ``kind`` (the scenario kind it serves) and a pydantic
``Config`` model holding its YAML entry (``name``, ``type`` and its settings).
Configs derive from :class:`SchemeConfig`, an
:class:`~lgvsc.sim.limits.InputModel` (finite numbers, no booleans for numbers);
every ``*_cbr`` field is at most :data:`~lgvsc.sim.schemes.fields.MAX_CBR`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (ConfigDict, Field, SerializerFunctionWrapHandler, StrictBool,
                      ValidationInfo, field_validator, model_serializer, model_validator)

from ...link.code import LDPCDecoding
from ...link.registry import Registry
from ..limits import InputModel
from .fields import MAX_CBR

SCHEMES: Registry[type["Scheme"]] = Registry("scheme")


class Resources(InputModel):
    """What one unit of a scheme occupies on a Ray cluster (``executor: ray``).

    ``num_gpus`` > 0: the scheme's units run in long-lived Ray actors, each holding
    ``num_gpus`` of a GPU (a fraction below 1 shares a GPU between actors, above 1 a
    whole number of GPUs), that keep their models loaded from unit to unit;
    ``num_gpus: 0``: they run as Ray tasks of ``num_cpus`` CPUs. Not a parameter of
    any unit: results do not depend on it (nor on the executor)."""

    model_config = ConfigDict(extra="forbid")
    num_gpus: float = Field(0.0, ge=0, le=1024, description="GPUs per unit (Ray)")
    num_cpus: float = Field(1.0, gt=0, le=1024, description="CPUs per unit (Ray)")

    @field_validator("num_gpus")
    @classmethod
    def _whole_above_one(cls, v):
        if v > 1 and v != int(v):
            raise ValueError("more than one GPU must be a whole number of GPUs")
        return v


class SchemeConfig(InputModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[^|]+$")
    type: str
    resources: Resources | None = Field(
        None, description="Ray resources of one unit (not a unit parameter); default: "
                          "one GPU when the scheme's models are on CUDA, else one CPU")

    @model_serializer(mode="wrap")
    def _drop_unset_resources(self, handler: SerializerFunctionWrapHandler):
        """An entry without ``resources`` dumps as before the field existed."""
        out = handler(self)
        if isinstance(out, dict) and out.get("resources", 0) is None:
            del out["resources"]
        return out

    @field_validator("*")
    @classmethod
    def _cbr_bound(cls, v, info: ValidationInfo):
        """A channel bandwidth ratio (``*_cbr``: channel uses per pixel value) above
        :data:`MAX_CBR` is no operating point of any scheme here."""
        if (info.field_name or "").endswith("_cbr") and isinstance(v, (int, float)) \
                and v > MAX_CBR:
            raise ValueError(f"a CBR must be <= {MAX_CBR:g} channel uses per pixel value")
        return v


class DecodingConfig(SchemeConfig):
    """A scheme that sends bits over 5G LDPC: how its codewords are decoded
    (:class:`~lgvsc.link.code.LDPCDecoding`)."""

    decoder: Literal["auto", "fast", "sionna"] = Field(
        "auto", description="LDPC decoder: fast (compiled, CPU), sionna (PyTorch, the GPU "
                            "path) or auto: fast on a CPU device, sionna on CUDA")
    iterations: int = Field(20, gt=0, le=1000, description="most BP iterations (<= 1000)")
    cn_update: str | None = Field(
        None, description="check-node rule; fast: sum-product (default), normalized-min-sum, "
                          "offset-min-sum; sionna: boxplus-phi (default), boxplus, minsum, "
                          "offset-minsum (sum-product and boxplus-phi name the same rule)")
    schedule: Literal["flooding", "layered"] | None = Field(
        None, description="fast decoder: layered (default) or flooding (Sionna's schedule)")
    alpha: float | None = Field(None, gt=0, le=1, description="normalized min-sum factor")
    beta: float | None = Field(None, ge=0, lt=20, description="offset min-sum offset")
    early_stop: StrictBool = Field(True, description="fast decoder: stop a codeword at a "
                                                     "zero syndrome")

    @model_validator(mode="after")
    def _decoder_settings(self):
        devices = {"auto": ("cpu", "cuda"), "fast": ("cpu",), "sionna": ("cuda",)}[self.decoder]
        for device in devices:  # auto: valid whichever device resolves it
            self.decoding().resolved(device)
        return self

    def decoding(self) -> LDPCDecoding:
        return LDPCDecoding(self.decoder, self.iterations, self.cn_update, self.schedule,
                            self.alpha, self.beta, self.early_stop)


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
