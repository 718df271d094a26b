"""``lgvsc keyframes``: run a keyframe selector on one video and print the result."""

from __future__ import annotations

import json

from pydantic import ValidationError

from ..semantic.calibration import CalibratedSKEM
from ..semantic.psss import DEFAULT_FOCUS
from ..semantic.scorers import make_scorer
from ..semantic.selectors import SKEM, SKIM
from .errors import UserError
from .limits import LimitError, check_video_memory
from .video import VideoSpec, load_video


def _scorer(a):
    params = {}
    if a.scorer == "vlm":
        if not a.scorer_path:
            raise UserError("--scorer vlm needs --scorer-path (a local model folder)")
        params = dict(path=a.scorer_path, mode=a.scorer_mode)
    try:
        return make_scorer(a.scorer, **params)
    except ValueError as e:
        raise UserError(f"--scorer {a.scorer}: {e}") from None


def _threshold(a):
    if a.threshold == "auto":
        if not a.target_keyframes:
            raise UserError("--threshold auto needs --target-keyframes N")
        return None
    try:
        t = float(a.threshold)
    except ValueError:
        raise UserError(f"--threshold must be a number in [-1, 1] or 'auto', got {a.threshold!r}") from None
    if not -1 <= t <= 1:
        raise UserError(f"--threshold must be in [-1, 1], got {t}")
    return t


#: VideoSpec fields -> the options that set them
_OPTIONS = {"source": "source", "frames": "--frames", "size": "--size"}


def _spec(a) -> VideoSpec:
    """The clip the options ask for; a bad option is one line naming it and why."""
    from .scenario import clip_extent

    try:
        spec = VideoSpec(source=a.source, frames=a.frames, size=tuple(a.size) if a.size else None)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "source"
        msg = err["msg"].removeprefix("Value error, ")
        raise UserError(f"{_OPTIONS.get(field, field)}: {msg}") from None
    frames, size = clip_extent(spec)
    if size:
        try:
            check_video_memory("--frames/--size", frames, *size,
                               streamed=not spec.source.startswith("synthetic:"))
        except LimitError as e:
            raise UserError(str(e)) from None
    return spec


def _check_lengths(a) -> None:
    """``--min-len`` <= ``--max-len`` (frames between keyframes)."""
    if a.max_len is not None and a.min_len > a.max_len:
        raise UserError(f"--min-len {a.min_len} is larger than --max-len {a.max_len}; "
                        "the shortest gap between keyframes cannot exceed the longest")


def keyframes(a) -> None:
    spec = _spec(a)
    if a.selector == "skem":
        _check_lengths(a)
    frames = load_video(spec).frames  # decoded on demand: SKEM reads what it scores
    out = {"keyframes": None, "scores": []}
    if a.selector == "skim":
        sel = SKIM(a.segments).select(frames)
    else:
        eta = _threshold(a)
        opts = dict(stride=a.stride, min_len=a.min_len, max_len=a.max_len,
                    focus=a.focus or DEFAULT_FOCUS)
        scorer = _scorer(a)
        sel = (CalibratedSKEM(scorer, a.target_keyframes, **opts) if eta is None
               else SKEM(scorer, threshold=eta, **opts)).select(frames)
        out["threshold"] = sel.threshold
        out["cost"] = sel.cost
    out["keyframes"] = sel.keyframes
    out["scores"] = [{"frame": c, "keyframe": k, "s_rel": round(s, 6)} for c, k, s in sel.scores]
    if a.json:
        print(json.dumps(out))
        return
    print(f"keyframes ({len(sel.keyframes)}): {' '.join(map(str, sel.keyframes))}")
    if "threshold" in out:
        print(f"threshold eta_th = {out['threshold']:.4g}")
        flagged = [s for s in out["scores"] if s["s_rel"] > out["threshold"]]
        for s in flagged:
            print(f"  frame {s['frame']:5d} vs keyframe {s['keyframe']:5d}: S_rel = {s['s_rel']:+.3f}")
