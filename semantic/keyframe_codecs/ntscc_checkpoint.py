"""NTSCC checkpoints: our own format and the public NTSCC_JSAC22 state dicts.

Our format (``torch.save`` of a dict): ``{"format": "lgvsc-ntscc/1", "arch":
NTSCCArch.to_dict(), "model": state dict without derived buffers, ...}``; the
training CLI adds ``optimizer``, ``aux_optimizer``, ``step``, ``generator``.

Public format: a plain state dict of ``NTSCC_Hyperprior`` (optionally wrapped
in ``{"state_dict": ...}`` / ``{"model": ...}``, keys optionally prefixed
``module.``), read with the ``"paper"`` arch unless overridden. Key mapping
(theirs -> ours), applied to the leading prefix:

====================================  ====================================
``ga.``                               ``g_a.``
``gs.``                               ``g_s.``
``ha.``                               ``h_a.``
``hs.``                               ``h_s.``
``fe.``                               ``f_e.``
``fd.``                               ``f_d.``
``hyprior_refinement.``               ``hyper_refine.``
``entropy_bottleneck._matrixK`` /     ``entropy_bottleneck.matrices.K``
``._matrices.K`` (also bias/factor)   (``biases.K``, ``factors.K``)
``entropy_bottleneck.*``,             unchanged
``gaussian_conditional.*``
====================================  ====================================

Below those prefixes the names are the same (``layers.i.blocks.j.attn.qkv``,
``layers.i.downsample.reduction``, ``layers.i.upsample.increment``,
``patch_embed.proj``, ``outconv``, ``rate_adaption.weight``, ``rate_token``,
``refine.fc1`` ...). Dropped on load (derived or not part of the network):
``*.attn_mask``, ``*.relative_position_index``, ``*.rate_adaption.mask``,
``*.rate_choice_tensor`` (checked against ``arch.rate_choices`` first),
entropy-coder tables and constants (``_offset``, ``_quantized_cdf``,
``_cdf_length``, ``scale_table``, ``scale_bound``, ``target``, ``*.bound``),
and the ``distortion.*`` / ``channel.*`` modules of the reference code.
Every other key must match the model exactly (names and shapes), else
ValueError naming the file.

Checked against the reference code (built from its ``config.py`` with random
weights, outside the test suite): the mapped key set and shapes equal ours
for the ``"paper"`` arch (380 tensors, 31.36 M values; the tests pin a hash
of that layout), and with the same weights g_a, g_s, h_a, h_s, the length
indexes, f_e and f_d agree to ~1e-6 at 256x256 and 128x192.
"""

from __future__ import annotations

import os
import re

import torch

from .ntscc_arch import NTSCCArch, make_arch
from .ntscc_model import NTSCCModel

FORMAT = "lgvsc-ntscc/1"
PUBLIC_PREFIXES = {"ga.": "g_a.", "gs.": "g_s.", "ha.": "h_a.", "hs.": "h_s.", "fe.": "f_e.",
                   "fd.": "f_d.", "hyprior_refinement.": "hyper_refine."}
DERIVED_SUFFIXES = ("attn_mask", "relative_position_index", "rate_adaption.mask",
                    "rate_choice_tensor", "_offset", "_quantized_cdf", "_cdf_length",
                    "scale_table", "scale_bound", "target", ".bound")
IGNORED_PREFIXES = ("distortion.", "channel.")
_EB_LEGACY = re.compile(r"^entropy_bottleneck\.(?:_(matrix|bias|factor)(\d+)|"
                        r"_(matrices|biases|factors)\.(\d+))$")
_EB_PLURAL = {"matrix": "matrices", "bias": "biases", "factor": "factors"}
SHOW = 5  # keys listed in an error message


def is_derived(key: str) -> bool:
    return key.endswith(DERIVED_SUFFIXES) or key.startswith(IGNORED_PREFIXES)


def model_state(model: NTSCCModel) -> dict:
    """The model's state dict without derived buffers (what we save and compare)."""
    return {k: v for k, v in model.state_dict().items() if not is_derived(k)}


def map_public_key(key: str) -> str:
    """A public NTSCC_JSAC22 key -> ours (see the module docstring)."""
    if key.startswith("module."):
        key = key[len("module."):]
    m = _EB_LEGACY.match(key)
    if m:
        name = _EB_PLURAL.get(m.group(1)) or m.group(3)
        return f"entropy_bottleneck.{name}.{m.group(2) or m.group(4)}"
    for theirs, ours in PUBLIC_PREFIXES.items():
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return key


def save_checkpoint(path: str | os.PathLike, model: NTSCCModel, **extra) -> None:
    """Write our format atomically (``extra``: optimizer states, step, ...)."""
    payload = {"format": FORMAT, "arch": model.arch.to_dict(), "model": model_state(model)}
    payload.update(extra)
    tmp = f"{path}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load`` a checkpoint file; ValueError naming the file if unreadable."""
    if not os.path.isfile(path):
        raise ValueError(f"NTSCC checkpoint file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / not a torch file
        raise ValueError(f"cannot read NTSCC checkpoint {path}: {e}") from e
    if not isinstance(obj, dict):
        raise ValueError(f"NTSCC checkpoint {path} holds a {type(obj).__name__}, not a dict")
    return obj


def _split(obj: dict, path, arch_preset, overrides: dict) -> tuple[NTSCCArch, dict, bool]:
    """(arch, raw state dict, is_public) from a loaded checkpoint."""
    if obj.get("format") == FORMAT:
        return make_arch(obj["arch"], **overrides), obj["model"], False
    for wrap in ("state_dict", "model", "net"):
        if isinstance(obj.get(wrap), dict):
            obj = obj[wrap]
            break
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"NTSCC checkpoint {path} is neither {FORMAT!r} nor a state dict")
    return make_arch(arch_preset, **overrides), obj, True


def _check_rate_choices(state: dict, arch: NTSCCArch, path) -> None:
    for key, value in state.items():
        if key.endswith("rate_choice_tensor"):
            found = tuple(int(v) for v in value.reshape(-1).tolist())
            if found != arch.rate_choices:
                raise ValueError(f"NTSCC checkpoint {path}: {key} = {list(found)} differs from "
                                 f"arch rate_choices {list(arch.rate_choices)}")


def _check_keys(got: dict, want: dict, path) -> None:
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    if missing or unexpected:
        raise ValueError(
            f"NTSCC checkpoint {path} does not match the model: {len(missing)} missing keys "
            f"(first: {missing[:SHOW]}), {len(unexpected)} unexpected keys "
            f"(first: {unexpected[:SHOW]})")
    bad = [(k, tuple(got[k].shape), tuple(want[k].shape)) for k in want
           if got[k].shape != want[k].shape]
    if bad:
        raise ValueError(f"NTSCC checkpoint {path}: {len(bad)} shape mismatches "
                         f"(first: {bad[:SHOW]}, as (key, file, model))")


def check_checkpoint(path: str | os.PathLike, arch: str | dict | NTSCCArch = "paper",
                     compare_keys: bool = True, **overrides) -> NTSCCArch:
    """What :func:`load_model` checks, without reading the tensors: the file is mapped
    (``torch.load(mmap=True)``, a torch.save zip file only), its format and rate
    choices are checked, and -- with ``compare_keys`` -- its key names and shapes
    are compared with a model built on the meta device (no memory, no init).
    Returns the arch; ValueError as :func:`load_model`'s.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # corrupt / not a torch file
        raise ValueError(f"cannot read NTSCC checkpoint {path}: {' '.join(str(e).split())[:200]}") \
            from None
    if not isinstance(obj, dict):
        raise ValueError(f"NTSCC checkpoint {path} holds a {type(obj).__name__}, not a dict")
    arch_, raw, public = _split(obj, path, arch, overrides)
    _check_rate_choices(raw, arch_, path)
    if compare_keys:
        state = {(map_public_key(k) if public else k): v for k, v in raw.items()}
        state = {k: v for k, v in state.items() if not is_derived(k)}
        with torch.device("meta"):
            want = model_state(NTSCCModel(arch_))
        _check_keys(state, want, path)
    return arch_


def load_model(path: str | os.PathLike, arch: str | dict | NTSCCArch = "paper",
               **overrides) -> tuple[NTSCCModel, dict]:
    """Build and load a model from ``path`` (ours or public format).

    :param arch: base arch for public state dicts (ours carry their arch).
    :param overrides: arch settings to replace (e.g. ``use_side_info=True``).
    :return: (model in eval mode on CPU, the raw checkpoint dict).
    """
    obj = read_checkpoint(path)
    arch_, raw, public = _split(obj, path, arch, overrides)
    _check_rate_choices(raw, arch_, path)
    state = {(map_public_key(k) if public else k): v for k, v in raw.items()}
    state = {k: v for k, v in state.items() if not is_derived(k)}
    model = NTSCCModel(arch_)
    _check_keys(state, model_state(model), path)
    model.load_state_dict(state, strict=False)
    return model.eval(), obj
