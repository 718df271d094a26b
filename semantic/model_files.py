"""Model files on disk: where a checkpoint is and whether it looks right, without loading it.

The ``check_weights`` classmethods of the real-tier components (VLM scorer and
captioner, diffusers and Open-Sora world models, NTSCC) use these helpers.
They read directory listings, small JSON files and a few header bytes only:
no weights, no optional package, no network. Every failure is a one-line
``ValueError`` that starts with the spec key it is about (``"path: ..."``).

Hugging Face repo ids are looked up in the local cache only, as
``local_files_only=True`` / ``HF_HUB_OFFLINE=1`` loading does: the cache
directory is ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``, read
when called (so a changed environment is honoured), and a repo's files are
those of the snapshot ``refs/main`` points to.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

#: the dtype names every real-tier component takes (besides "auto")
DTYPE_NAMES = ("bfloat16", "float16", "float32")
#: tokenizer files, any one of which makes a tokenizer (vocab.json needs merges.txt)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.txt",
                   "sentencepiece.bpe.model")
_REPO_ID = re.compile(r"^\w[\w.-]{0,95}(/\w[\w.-]{0,95})?$")


# -- Hugging Face cache --------------------------------------------------------
def hf_cache_dir() -> Path:
    """The Hub cache directory, from the environment as huggingface_hub computes it."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def is_repo_id(text: str) -> bool:
    """Whether ``text`` has the form of a Hub model id (``name`` or ``org/name``)."""
    return (bool(_REPO_ID.match(text)) and "--" not in text and ".." not in text
            and not text.endswith((".", "-")))


def cached_file(repo_id: str, filename: str) -> Path | None:
    """``filename`` of ``repo_id``'s ``main`` snapshot in the local cache, or None.

    Uses ``huggingface_hub.try_to_load_from_cache`` when installed (it never goes
    online), else reads the cache layout (``models--org--name/refs/main`` ->
    ``snapshots/<commit>/<filename>``) directly.
    """
    if not is_repo_id(repo_id):
        return None
    cache = hf_cache_dir()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        try_to_load_from_cache = None
    if try_to_load_from_cache is not None:
        try:
            hit = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache))
        except Exception:  # HFValidationError and kin: not a usable id
            return None
        return Path(hit) if isinstance(hit, str) and Path(hit).is_file() else None
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    try:
        commit = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    hit = repo / "snapshots" / commit / filename
    return hit if hit.is_file() else None


def cached_repo(repo_id: str) -> bool:
    """Whether the cache has any folder for ``repo_id`` (complete or not)."""
    if not is_repo_id(repo_id):
        return False
    return (hf_cache_dir() / f"models--{repo_id.replace('/', '--')}").is_dir()


# -- what a folder holds -------------------------------------------------------
def read_json(path: Path, key: str, shown: str) -> dict:
    """A JSON object from ``path``; ValueError ``key: 'shown' is not valid JSON``."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{key}: {shown!r} is not a valid JSON file ({_short(e)})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{key}: {shown!r} holds a JSON {type(obj).__name__}, not an object")
    return obj


def describe(path: Path) -> str:
    """What ``path`` holds, for a hint: a diffusers pipeline, a transformers model..."""
    if not path.exists():
        return "it does not exist"
    if path.is_file():
        kind = sniff_checkpoint(path)
        return f"it is a file ({kind} checkpoint)" if kind else "it is a file"
    try:
        if (path / "model_index.json").is_file():
            cls = json.loads((path / "model_index.json").read_text()).get("_class_name")
            return f"it holds a diffusers pipeline ({cls})"
        if (path / "config.json").is_file():
            cfg = json.loads((path / "config.json").read_text())
            kind = cfg.get("model_type") or cfg.get("_class_name")
            return f"it holds a model of type {kind!r}"
        if not any(path.iterdir()):
            return "it is empty"
    except (OSError, ValueError, AttributeError):
        return "it holds unreadable files"
    return "it holds neither"


def weight_files(folder: Path) -> list[Path]:
    """``*.safetensors`` / ``*.bin`` weight files and ``*.index.json`` shard indexes."""
    return sorted(p for p in folder.iterdir() if p.is_file() and (
        p.suffix in (".safetensors", ".bin") or p.name.endswith(".index.json")))


def check_weight_files(folder: Path, key: str, shown: str) -> None:
    """``folder`` has weights; a shard index lists only shards that exist."""
    found = weight_files(folder)
    if not found:
        raise ValueError(f"{key}: {shown!r} has no weight files (*.safetensors, *.bin or a "
                         "*.index.json shard index)")
    for index in (p for p in found if p.name.endswith(".index.json")):
        wmap = read_json(index, key, f"{shown}/{index.name}").get("weight_map")
        if not isinstance(wmap, dict):
            raise ValueError(f"{key}: {shown}/{index.name} has no weight_map")
        shards = sorted(set(map(str, wmap.values())))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ValueError(f"{key}: {shown!r} is incomplete: {index.name} lists {len(shards)} "
                             f"shard files, {len(missing)} missing (first: {missing[0]})")


def has_tokenizer(folder: Path) -> bool:
    return any((folder / f).is_file() for f in TOKENIZER_FILES) or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())


def model_folder(value, key: str, marker: str = "config.json",
                 what: str = "Hugging Face model") -> tuple[Path, str]:
    """(folder, shown name) of a local folder, or of a repo id's cached snapshot,
    that holds ``marker``; ValueError naming ``key`` otherwise."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError(f"{key}: must be a local folder or a Hugging Face repo id, got "
                         f"{value!r}")
    text = str(value)
    p = Path(text).expanduser()
    if p.exists():
        if not (p.is_dir() and (p / marker).is_file()):
            raise ValueError(f"{key}: {text!r} has no {marker} (not a {what} folder; "
                             f"{describe(p)})")
        return p, text
    hit = cached_file(text, marker)
    if hit is None:
        where = hf_cache_dir()
        if cached_repo(text):
            raise ValueError(f"{key}: {text!r} is in the Hugging Face cache ({where}) but its "
                             f"main snapshot has no {marker} (an incomplete download?)")
        raise ValueError(f"{key}: {text!r} is not a local folder and not in the Hugging Face "
                         f"cache ({where})")
    return hit.parent, text


# -- checkpoint files ------------------------------------------------------------
def sniff_checkpoint(path: Path) -> str | None:
    """``"zip"`` (torch.save), ``"pickle"`` (legacy torch.save), ``"safetensors"`` or None,
    from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80" and len(head) >= 2 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9:
        n = int.from_bytes(head[:8], "little")
        if 2 <= n < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    return None


def check_torch_file(value, key: str, what: str = "checkpoint",
                     kinds: tuple[str, ...] = ("zip", "pickle")) -> tuple[Path, str]:
    """An existing file whose header is one of ``kinds``; returns (path, kind)."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError(f"{key}: must be a file path, got {value!r}")
    p = Path(str(value)).expanduser()
    if not p.exists():
        raise ValueError(f"{key}: {str(value)!r} does not exist")
    if not p.is_file():
        raise ValueError(f"{key}: {str(value)!r} is not a file ({describe(p)})")
    kind = sniff_checkpoint(p)
    if kind not in kinds:
        names = {"zip": "torch.save zip", "pickle": "legacy torch.save pickle",
                 "safetensors": "safetensors"}
        raise ValueError(f"{key}: {str(value)!r} is not a {what} (its header is not "
                         f"{' or '.join(names[k] for k in kinds)})")
    return p, kind


# -- plain settings ----------------------------------------------------------------
def check_device(device, key: str = "device") -> None:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (the form only: CUDA may be on the
    machine that runs the units, not this one)."""
    if not (isinstance(device, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", device)):
        raise ValueError(f"{key}: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def check_dtype(dtype, key: str = "dtype") -> None:
    if dtype != "auto" and dtype not in DTYPE_NAMES:
        raise ValueError(f"{key}: must be 'auto' or one of {', '.join(DTYPE_NAMES)}, "
                         f"got {dtype!r}")


def check_int(name: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: must be an integer >= {low}, got {value!r}")


def check_finite(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:120]
