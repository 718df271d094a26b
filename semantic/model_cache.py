"""One loaded copy of each model per process, and what a model will cost before it loads.

Real-tier components (the VLM scorer and captioner, the diffusers and Open-Sora
world models, NTSCC, the deep metrics) never load weights themselves: they ask
the process's :class:`ModelCache` (:func:`model_cache`) for a :class:`ModelKey`
-- (kind, path, dtype, device, options) -- with a loader, and the first request
loads. Two schemes that name the same VLM or world-model folder, or a scorer
and a captioner on the same VLM, share one loaded copy. Components are lazy:
building one loads nothing; the first call that needs the model does.

Release is explicit (:meth:`ModelCache.release`): the runner frees a model
after the last unit that needs it (units run scheme by scheme), Ray actors do
the same on the driver's word. Loads are counted per key
(:attr:`ModelCache.load_counts`), so tests can assert "loaded once".

:func:`estimate_bytes` reads safetensors headers (a few kB each, no weights)
to say how much memory a folder's weights take in a given dtype.
"""

from __future__ import annotations

import gc
import json
import struct
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: bytes per element of the safetensors dtypes
_ST_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
             "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_FLOAT = {"F64", "F32", "F16", "BF16"}
#: bytes per element of the dtype names the real tier takes
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class ModelKey:
    """What identifies one loaded model in a process.

    ``kind``: the loader (``"vlm"``, ``"diffusers:LTXConditionPipeline"``,
    ``"opensora"``, ``"ntscc"``, ``"lpips"`` ...); ``path``: the resolved folder or
    file (absolute) or a repo id; ``dtype``: ``"bfloat16"`` | ``"float16"`` |
    ``"float32"``; ``device``: ``"cpu"`` | ``"cuda:N"``; ``options``: sorted
    ``(name, value)`` pairs of other settings that change the loaded object (e.g.
    ``(("offload", "model"),)``).
    """

    kind: str
    path: str
    dtype: str
    device: str
    options: tuple = ()

    def label(self) -> str:
        """One line: ``vlm /models/InternVL3-8B-hf (bfloat16, cuda:0)``."""
        opts = "".join(f", {k}={v}" for k, v in self.options)
        return f"{self.kind} {self.path} ({self.dtype}, {self.device}{opts})"


@dataclass(frozen=True)
class ModelInfo:
    """A model a component will load: its key and estimated memory (bytes of its
    weights in the key's dtype; None when the folder does not say)."""

    key: ModelKey
    bytes: int | None = None
    note: str = ""

    def line(self) -> str:
        size = "size unknown" if self.bytes is None else f"~{self.bytes / 2**30:.1f} GiB"
        return f"{self.key.label()}: {size} of weights" + (f" ({self.note})" if self.note else "")


@dataclass
class _Entry:
    value: object
    bytes: int | None = None


@dataclass
class ModelCache:
    """Loaded models of this process, by :class:`ModelKey` (thread-safe).

    :attr:`load_counts` counts the loads of each key (a released and reloaded
    model counts twice); :attr:`log` (a callable taking one line, default stderr)
    hears every load and release.
    """

    log: Callable[[str], None] | None = None
    load_counts: Counter = field(default_factory=Counter)
    _models: dict = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def get(self, key: ModelKey, load: Callable[[], object], bytes: int | None = None):
        """The model for ``key``, calling ``load()`` only when it is not loaded yet."""
        with self._lock:
            hit = self._models.get(key)
            if hit is not None:
                return hit.value
            self._say(f"loading {key.label()}" + (
                "" if bytes is None else f", ~{bytes / 2**30:.1f} GiB of weights"))
            value = load()
            self._models[key] = _Entry(value, bytes)
            self.load_counts[key] += 1
            return value

    def loaded(self) -> list[ModelKey]:
        """Keys loaded now, in load order."""
        with self._lock:
            return list(self._models)

    def release(self, keys=None) -> list[ModelKey]:
        """Drop the models of ``keys`` (all when None) and free their memory (garbage
        collection, then the CUDA caching allocator's unused blocks); returns the keys
        dropped. A component that asks again reloads."""
        with self._lock:
            keys = list(self._models) if keys is None else [k for k in keys if k in self._models]
            for k in keys:
                del self._models[k]
                self._say(f"released {k.label()}")
        if keys:
            gc.collect()
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.empty_cache()
        return keys

    def _say(self, line: str) -> None:
        (self.log or _stderr)(f"lgvsc: {line}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


_CACHE: list[ModelCache] = []


def model_cache() -> ModelCache:
    """This process's model cache (made on first use)."""
    if not _CACHE:
        _CACHE.append(ModelCache())
    return _CACHE[0]


# -- memory estimates -----------------------------------------------------------------
def safetensors_bytes(path: Path, dtype: str | None) -> int:
    """Bytes the tensors of one ``.safetensors`` file take once loaded, floating tensors
    cast to ``dtype`` (None: as stored). Reads the header only."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 100 << 20:
            raise ValueError(f"{path}: safetensors header of {n} bytes")
        header = json.loads(f.read(n))
    total = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        numel = 1
        for d in t["shape"]:
            numel *= int(d)
        st = t["dtype"]
        per = DTYPE_BYTES[dtype] if dtype and st in _FLOAT else _ST_BYTES.get(st, 4)
        total += numel * per
    return total


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files a loader reads from ``folder`` and its subfolders: the
    shards an index lists, else every ``*.safetensors`` that is not a variant
    (``*.fp16.safetensors``) of another file there."""
    out = []
    for d in sorted({p.parent for p in folder.rglob("*.safetensors")}):
        indexes = sorted(d.glob("*.safetensors.index.json"))
        if indexes:
            try:
                shards = set(json.loads(indexes[0].read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError):
                shards = set()
            out += [d / s for s in sorted(shards) if (d / s).is_file()]
            continue
        files = sorted(d.glob("*.safetensors"))
        plain = {p.name for p in files if p.name.count(".") == 1}
        out += [p for p in files if p.name.count(".") == 1 or not plain]
    return out


def estimate_bytes(folder, dtype: str | None) -> int | None:
    """Memory of the weights in ``folder`` (a model or pipeline folder, or one
    checkpoint file) in ``dtype``; None when there is nothing it can read
    (``.bin`` / ``.pt`` files: their size on disk, as stored)."""
    folder = Path(folder)
    if folder.is_file():
        if folder.suffix == ".safetensors":
            return safetensors_bytes(folder, dtype)
        return folder.stat().st_size
    if not folder.is_dir():
        return None
    files = weight_files(folder)
    if files:
        try:
            return sum(safetensors_bytes(p, dtype) for p in files)
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None
    bins = [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    return sum(p.stat().st_size for p in bins) or None
