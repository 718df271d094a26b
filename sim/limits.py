"""Input limits: what a scenario may ask for, checked before anything is built.

Every limit below is refused with one line naming the file or field, the value
and the limit, in well under a second (nothing is allocated to find out):

* scenario files: at most :data:`MAX_FILE_BYTES` (1 MiB; a real scenario is a
  few kB), nesting at most :data:`MAX_DEPTH` (50) levels deep, at most
  :data:`MAX_NODES` (100,000) values once YAML aliases are expanded (a
  "billion laughs" alias bomb is a few hundred bytes that expand to 10^9);
* a sweep has at most :data:`MAX_UNITS` (1,000,000) units (schemes x SNRs
  (x videos x trials)): a million units is already days of simulation, and the
  planner, the store and the summary all hold one row per unit;
* a clip's working set must fit in memory: a clip read from a file streams
  through every stage, so its window of :data:`STREAM_WINDOW_FRAMES` raw uint8
  frames (a SoftCast GOP) times :data:`VIDEO_WORKING_FACTOR`; a synthetic clip
  (rendered whole) all its frames times it (:func:`check_video_memory`); and a
  link batch:
  blocks x coded bits per block x bytes per value times
  :data:`LINK_WORKING_FACTOR` (:data:`LDPC_WORKING_FACTOR` with BP decoding;
  :func:`check_link_batch`), against
  :func:`available_memory_bytes` (host memory, also for ``device: cuda``).

:class:`InputModel` is the base of every scenario model: numbers must be
finite (``.nan``, ``.inf``, ``1e400`` are refused) and a boolean is never
taken for a number (pydantic would read ``true`` as 1); :func:`find_non_finite`
does the same for free-form mappings (component settings).
"""

from __future__ import annotations

import math
import os
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

#: largest scenario file read, bytes
MAX_FILE_BYTES = 1 << 20
#: deepest nesting of YAML collections
MAX_DEPTH = 50
#: most YAML values (scalars and collections) after alias expansion
MAX_NODES = 100_000
#: most units (schemes x SNRs (x videos x trials)) in one scenario
MAX_UNITS = 1_000_000
#: peak memory of a clip's processing as a multiple of its raw uint8 frames: float64
#: YCbCr and 3-D DCT copies (8x each), the received copy and the metrics' float copies.
#: A lower bound, so that only what surely cannot fit is refused: SoftCast measured
#: ~40x at CBR 0.02 and ~75x at 0.5 (64-128 frames of 256x256)
VIDEO_WORKING_FACTOR = 16
#: frames a streamed clip's stages hold at once, at most (SoftCast's default GOP; the
#: other schemes hold a chunk of 16 frames, a batch of keyframes or the decoder's
#: pictures)
STREAM_WINDOW_FRAMES = 32
#: bytes per coded bit and byte of value, uncoded link batch: info and coded bits,
#: symbols, channel output and gains, LLRs (measured ~18x, QPSK)
LINK_WORKING_FACTOR = 16
#: the same with BP decoding: the decoder's edge messages (~3-5 edges per bit, both
#: directions, with temporaries; measured ~70x, 5G LDPC k=1024 rate 1/2)
LDPC_WORKING_FACTOR = 64


class LimitError(ValueError):
    """An input above one of this module's limits (message: one line)."""


# -- memory ------------------------------------------------------------------
def available_memory_bytes() -> int:
    """Memory available to a new allocation, bytes: ``MemAvailable`` from
    ``/proc/meminfo``, else free pages x page size (``os.sysconf``)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def format_bytes(n: float) -> str:
    """``8.2 TiB``-style size (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def _refuse_above(where: str, what: str, need: int, per: str = "", verb: str = "need") -> None:
    avail = available_memory_bytes()
    if need > avail:
        raise LimitError(f"{where}: {what} {verb} ~{format_bytes(need)}{per}; this machine has "
                         f"{format_bytes(avail)} available")


def check_video_memory(where: str, frames: int | None, height: int, width: int,
                       streamed: bool = False) -> None:
    """Refuse (:class:`LimitError`) a clip of ``frames`` x ``height`` x ``width`` RGB
    frames whose processing cannot fit in memory (raw uint8 bytes x
    :data:`VIDEO_WORKING_FACTOR`; ``streamed``: a clip decoded on demand, of which
    at most :data:`STREAM_WINDOW_FRAMES` frames are held, whatever its length).
    ``frames=None`` ("all", count unknown) checks a streamed clip's window and
    nothing else. ``where`` names the field, e.g. ``videos[0].size``."""
    if streamed:
        held = STREAM_WINDOW_FRAMES if frames is None else min(int(frames), STREAM_WINDOW_FRAMES)
        need = held * int(height) * int(width) * 3 * VIDEO_WORKING_FACTOR
        _refuse_above(where, f"a window of {held} frames of {height}x{width} (the clip is "
                             "streamed)", need, verb="needs")
        return
    if frames is None:
        return
    need = int(frames) * int(height) * int(width) * 3 * VIDEO_WORKING_FACTOR
    _refuse_above(where, f"{frames} frames of {height}x{width}", need)


def check_link_batch(where: str, blocks: int, block_bits: int, bytes_per_value: int,
                     factor: int = LINK_WORKING_FACTOR) -> None:
    """Refuse a link batch of ``blocks`` blocks of ``block_bits`` coded bits that cannot
    fit in memory (x ``bytes_per_value`` (4 single, 8 double) x ``factor``:
    :data:`LINK_WORKING_FACTOR` uncoded, :data:`LDPC_WORKING_FACTOR` with BP
    decoding). ``where`` names the field."""
    need = int(blocks) * int(block_bits) * int(bytes_per_value) * int(factor)
    _refuse_above(where, f"{blocks} blocks of {block_bits} bits", need, " per batch")


# -- numbers -----------------------------------------------------------------
_NUMERIC = re.compile(r"[-+]?(\d[\d_]*)?\.?\d*([eE][-+]?\d+)?")


def _non_finite(v: Any) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, str) and any(c.isdigit() for c in v) and _NUMERIC.fullmatch(v.strip()):
        try:
            return not math.isfinite(float(v.replace("_", "")))
        except ValueError:
            return False
    return False


def find_non_finite(data: Any, loc: tuple = (), depth: int = 0) -> tuple[tuple, Any] | None:
    """``(location, value)`` of the first non-finite number in parsed YAML ``data``
    (``.nan``, ``.inf``, or a numeric string such as ``"1e400"`` that overflows),
    else None. Walks at most :data:`MAX_DEPTH` levels."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return (loc, data) if _non_finite(data) else None
    for k, v in items:
        hit = find_non_finite(v, loc + (k,), depth + 1)
        if hit:
            return hit
    return None


def _bool_ok(tp) -> bool:
    """True when a bare ``bool`` is a meaningful value of annotation ``tp``."""
    if tp is bool or tp is Any or tp is object:
        return True
    origin = get_origin(tp)
    if origin is Annotated:
        return _bool_ok(get_args(tp)[0])
    if origin is Literal:
        return any(isinstance(a, bool) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return any(_bool_ok(a) for a in get_args(tp))
    return False


def _strip(tp):
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _stray_bool(tp, v, depth: int = 0) -> tuple | None:
    """Location (inside ``v``) of a boolean where annotation ``tp`` wants something
    else, e.g. ``()`` for ``v`` itself or ``(1,)`` for its second item; None if none."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(v, bool):
        return None if _bool_ok(tp) else ()
    tp = _strip(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        arms = [a for a in get_args(tp) if _fits_container(a, v)]
        hits = [_stray_bool(a, v, depth + 1) for a in arms]
        return hits[0] if hits and all(h is not None for h in hits) else None
    if isinstance(v, (list, tuple)) and origin in (list, tuple, set, frozenset):
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            pairs = zip(args, v)
        else:
            pairs = ((args[0] if args else Any, x) for x in v)
        for i, (t, x) in enumerate(pairs):
            hit = _stray_bool(t, x, depth + 1)
            if hit is not None:
                return (i, *hit)
        return None
    if isinstance(v, dict) and isinstance(tp, type) and issubclass(tp, BaseModel) \
            and not issubclass(tp, InputModel):  # plain nested models: check their fields
        return _model_stray_bool(tp, v, depth + 1)
    return None


def _model_stray_bool(model: type[BaseModel], data: dict, depth: int = 0) -> tuple | None:
    """Location of the first boolean given for a numeric field of ``model`` in ``data``."""
    for name, f in model.model_fields.items():
        key = f.alias or name
        if key in data and _has_number(f.annotation):
            hit = _stray_bool(f.annotation, data[key], depth)
            if hit is not None:
                return (key, *hit)
    return None


def _has_number(tp, depth: int = 0) -> bool:
    """True when annotation ``tp`` has a number (int, float) or a nested model in it."""
    tp = _strip(tp)
    if tp in (int, float) or (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return True
    return depth < 8 and any(_has_number(a, depth + 1) for a in get_args(tp)
                             if not isinstance(a, (str, bool, int, float)) and a is not Ellipsis)


def _fits_container(tp, v) -> bool:
    tp = _strip(tp)
    origin = get_origin(tp) or tp
    if isinstance(v, (list, tuple)):
        return origin in (list, tuple, set, frozenset)
    if isinstance(v, dict):
        return isinstance(origin, type) and (issubclass(origin, (dict, BaseModel)))
    return True


class InputModel(BaseModel):
    """Base of the scenario models: finite numbers only, and no ``true``/``false``
    where the field's type has no boolean (pydantic would read ``true`` as 1). The
    boolean check runs before any field validator (which might convert it)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data):
        if not isinstance(data, dict):
            return data
        loc = _model_stray_bool(cls, data)
        if loc is None:
            return data
        value = data
        for k in loc:
            value = value[k]
        raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
            type=PydanticCustomError("bool_number", "expected a number, not true/false"),
            loc=loc, input=value)])
