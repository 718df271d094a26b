"""``lgvsc doctor PATHS...``: what each local model folder is, without loading a weight.

For every path the config files (``config.json`` ``model_type``,
``model_index.json`` ``_class_name``, the scheduler and transformer configs, a
checkpoint's header) say which lgvsc component loads it, which version limits
apply, and how much memory its weights take (safetensors headers,
:func:`~lgvsc.semantic.model_cache.estimate_bytes`, in bfloat16 and float32).
The checks are the components' own (:func:`~lgvsc.semantic.vlm_backend.check_folder`,
:func:`~lgvsc.semantic.world_models.diffusers_wm.check_pipeline_folder`, Open-Sora's
and NTSCC's ``check_weights``), so the doctor refuses exactly what a run would.

:data:`INSPECTORS` is the table: the first whose ``matches`` accepts a path
inspects it. Exit status 0 when every path is usable, 2 otherwise (one line per
problem).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..semantic.model_cache import estimate_bytes

DTYPES = ("bfloat16", "float32")


@dataclass
class Finding:
    """What one path is: ``what`` (one line), how a scenario names it (``spec``),
    ``notes`` (version limits, hints), memory of its weights by dtype name."""

    what: str
    spec: str = ""
    notes: list[str] = field(default_factory=list)
    memory: dict[str, int | None] = field(default_factory=dict)

    def lines(self, path: str) -> list[str]:
        out = [f"{path}: {self.what}"]
        if self.spec:
            out.append(f"  use as: {self.spec}")
        out += [f"  note: {n}" for n in self.notes]
        if self.memory:
            out.append("  memory: " + ", ".join(
                f"{'unknown' if b is None else f'~{b / 2**30:.2f} GiB'} in {d}"
                for d, b in self.memory.items()) + " (weights)")
        return out


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path.name} is not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def _memory(path: Path) -> dict[str, int | None]:
    return {d: estimate_bytes(path, d) for d in DTYPES}


def _model_type(path: Path) -> str | None:
    return _json(path / "config.json").get("model_type") if (path / "config.json").is_file() \
        else None


# -- the inspectors ------------------------------------------------------------------------
def _is_pipeline(p: Path) -> bool:
    return (p / "model_index.json").is_file()


def _pipeline(p: Path) -> Finding:
    """A diffusers pipeline folder: the world model ``diffusers`` (LTX / Wan)."""
    from ..semantic.world_models.diffusers_wm import (PIPELINES, DiffusersWorldModel,
                                                      check_pipeline_folder, pipeline_info,
                                                      version_limits)

    cls = _json(p / "model_index.json").get("_class_name")
    kind = check_pipeline_folder(str(p))
    notes = version_limits(p)
    t2v = DiffusersWorldModel.text_to_video_reason(p)
    notes.append("text-to-video (text-only scheme): " + ("yes, with LTXPipeline" if t2v is None
                                                          else f"no ({t2v})"))
    memory = {d: pipeline_info(p.resolve(), kind, d, "cuda", "none").bytes for d in DTYPES}
    return Finding(f"diffusers {cls} -> world model 'diffusers', pipeline {kind!r} "
                   f"(loaded as {PIPELINES[kind]})",
                   f"world_model: {{type: diffusers, path: {p}}}", notes, memory)


def _is_vlm(p: Path) -> bool:
    from ..semantic.vlm_backend import SUPPORTED, UNSUPPORTED_HINTS

    return _model_type(p) in set(SUPPORTED) | set(UNSUPPORTED_HINTS)


def _vlm(p: Path) -> Finding:
    """A VLM checkpoint: the ``vlm`` scorer and captioner."""
    from ..semantic.vlm_backend import SUPPORTED, check_folder

    mt = check_folder(str(p))
    notes = []
    if mt == "internvl":
        notes.append("InternVL -hf (transformers format): stands in for the paper's "
                     "InternVL2-8B (remote code, not supported); use mode: direct with "
                     "threshold: auto (eta_th 0.35 belongs to paper mode on InternVL2-8B)")
    return Finding(f"VLM model_type {mt!r} -> VLM backend ({SUPPORTED[mt]})",
                   f"scorer: {{type: vlm, path: {p}}} / captioner: {{type: vlm, path: {p}}}",
                   notes, _memory(p))


#: Open-Sora v1.2's Hugging Face model types -> the world model key that takes them
OPENSORA_KEYS = {"STDiT3": "model", "VideoAutoencoderPipeline": "vae"}


def _is_opensora(p: Path) -> bool:
    if p.is_dir() and not (p / "config.json").is_file() and (p / "model").is_dir():
        return True  # a ColossalAI training checkpoint
    return _model_type(p) in OPENSORA_KEYS


def _opensora(p: Path) -> Finding:
    """STDiT3 / VAE v1.2 weights of Open-Sora (the world model ``opensora``)."""
    from ..semantic.world_models import opensora

    mt = _model_type(p)
    key = OPENSORA_KEYS.get(mt, "model")
    opensora._check_opensora_weights(str(p), key, True)
    what = (f"Open-Sora {mt}" if mt else "Open-Sora ColossalAI checkpoint (a 'model' subfolder)")
    notes = [f"supported Open-Sora tag: {opensora.SUPPORTED_TAG} (STDiT3 + VAE v1.2 + T5)"]
    if importlib.util.find_spec("opensora") is None:
        notes.append(opensora.NOT_INSTALLED)
    return Finding(f"{what} -> world model 'opensora' ({key}:)",
                   f"world_model: {{type: opensora, {key}: {p}, ...}}", notes, _memory(p))


def _is_t5(p: Path) -> bool:
    return _model_type(p) in ("t5", "umt5", "mt5")


def _t5(p: Path) -> Finding:
    from ..semantic.world_models import opensora

    opensora._check_text_encoder(str(p), True)
    return Finding(f"T5 text encoder (model_type {_model_type(p)!r}) -> Open-Sora text_encoder",
                   f"world_model: {{type: opensora, text_encoder: {p}, ...}}",
                   ["T5 runs in float32"], {"float32": estimate_bytes(p, "float32")})


def _is_clip(p: Path) -> bool:
    return _model_type(p) == "clip"


def _clip(p: Path) -> Finding:
    if not (p / "preprocessor_config.json").is_file():
        raise ValueError("CLIP folder without preprocessor_config.json (the clip metric loads "
                         "its image processor from it)")
    return Finding("CLIPModel -> metric 'clip'", f"LGVSC_CLIP={p}", ["runs in float32"],
                   {"float32": estimate_bytes(p, "float32")})


def _is_checkpoint(p: Path) -> bool:
    return p.is_file() and p.suffix in (".pt", ".pth", ".ckpt", ".tar", ".safetensors")


def _vgg_keys(p: Path) -> bool:
    """Whether the torch file ``p`` is a torchvision vgg16 state dict (mapped, not read)."""
    import torch

    from ..semantic.model_files import sniff_checkpoint

    if sniff_checkpoint(p) != "zip":
        return False
    try:
        state = torch.load(p, map_location="meta", weights_only=True, mmap=True)
    except (RuntimeError, OSError, ValueError):
        return False
    return isinstance(state, dict) and "features.0.weight" in state and "features.28.weight" in state


def _checkpoint(p: Path) -> Finding:
    """A torch checkpoint file: VGG16 (lpips / dists) or NTSCC."""
    if _vgg_keys(p):
        return Finding("torchvision VGG16 state dict -> metrics 'lpips' and 'dists'",
                       f"LGVSC_VGG16={p}", ["only features.* is used; runs in float32"],
                       {"float32": estimate_bytes(p, "float32")})
    from ..semantic.keyframe_codecs.ntscc import NTSCC

    NTSCC.check_weights(checkpoint=str(p))
    return Finding("NTSCC checkpoint (arch 'paper' unless it carries its own) -> keyframe "
                   "codec 'ntscc'", f"keyframe_codec: {{type: ntscc, checkpoint: {p}}}",
                   ["float32; ~10,150 channel uses per 320x576 keyframe at its floor"],
                   {"float32": estimate_bytes(p, "float32")})


@dataclass(frozen=True)
class Inspector:
    name: str
    matches: Callable[[Path], bool]
    inspect: Callable[[Path], Finding]


#: the first inspector whose ``matches`` accepts a path inspects it
INSPECTORS = [
    Inspector("diffusers pipeline", _is_pipeline, _pipeline),
    Inspector("VLM", _is_vlm, _vlm),
    Inspector("Open-Sora", _is_opensora, _opensora),
    Inspector("T5 text encoder", _is_t5, _t5),
    Inspector("CLIP", _is_clip, _clip),
    Inspector("checkpoint file", _is_checkpoint, _checkpoint),
]


def diagnose(path: str) -> tuple[list[str], list[str]]:
    """(report lines, problem lines) for one path."""
    p = Path(path).expanduser()
    if not p.exists():
        return [], [f"{path}: does not exist (the doctor reads local folders and files only)"]
    try:
        for ins in INSPECTORS:
            if ins.matches(p):
                return ins.inspect(p).lines(path), []
    except ValueError as e:
        return [], [f"{path}: {' '.join(str(e).split())}"]
    mt = _model_type(p) if p.is_dir() else None
    why = (f"config.json model_type {mt!r} is loaded by no lgvsc component" if mt else
           "no config.json, model_index.json or checkpoint file lgvsc loads")
    return [], [f"{path}: {why}"]


def doctor(paths: list[str], out=None) -> int:
    """Print what each of ``paths`` is (``out``: default stdout) and one line per problem;
    0 when all are usable, 2 otherwise."""
    out = out or sys.stdout
    bad = 0
    for path in paths:
        lines, problems = diagnose(path)
        for line in lines:
            print(line, file=out)
        for line in problems:
            print(f"problem: {line}", file=out)
        bad += bool(problems)
    return 2 if bad else 0
