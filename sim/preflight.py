"""Checks a scenario needs before any unit runs or the store is touched.

``lgvsc validate`` and ``lgvsc run`` call :func:`preflight` after the schema
has been validated:

* every scheme's nested component specs (``scorer``, ``captioner``,
  ``side_info``, ``keyframe_codec``, ``world_model``, ``codec``) go through
  their registries: type, parameters, and the model files' layout of the real
  tier (``path`` / ``checkpoint``), without loading any weights;
* every video is opened: its header, its frame count (packets counted, not
  decoded), its first frame decoded, its size after ``size``/``fit``, its
  caption sidecar parsed, and whether its frames fit in memory;
* every scheme is asked whether it can send every clip (budgets, even frame
  sizes for 4:2:0 codecs, keyframe counts).

Problems raise :class:`PreflightError` (one line starting with the field
path); things that run but may surprise are returned as warning lines.
"""

from __future__ import annotations

from .errors import UserError
from .limits import LimitError, check_video_memory
from .schemes import SCHEMES
from .video import VideoInfo, probe_video


class PreflightError(UserError):
    """A scenario that validates but cannot run; the CLI prefixes the file name."""


def _check_schemes(sc) -> None:
    for i, cfg in enumerate(sc.scheme_configs()):
        try:
            SCHEMES.get(cfg.type).check(cfg, f"schemes[{i}]")
        except ValueError as e:
            raise PreflightError(str(e)) from None


def _probe(sc, i: int) -> VideoInfo:
    spec = sc.videos[i]
    where = f"videos[{i}]"
    if spec.source.startswith("synthetic:") and spec.size is not None:
        _memory(where, spec.frames or 32, *spec.size)  # before rendering it
    try:
        info = probe_video(spec, sc.base_dir or ".", sc.seed)
    except UserError as e:
        raise PreflightError(f"{where} ({spec.source!r}): {e}") from None
    _memory(where, info.frames, info.height, info.width,
            streamed=not spec.source.startswith("synthetic:"))
    return info


def _memory(where: str, frames: int, height: int, width: int, streamed: bool = False) -> None:
    try:
        check_video_memory(where, frames, height, width, streamed)
    except LimitError as e:
        raise PreflightError(str(e)) from None


def _check_save(sc, info: VideoInfo) -> None:
    """Every frame ``save`` names is in the clip."""
    from .media import resolve_frame

    fields = [(f"save.frames[{i}]", c) for i, c in enumerate(sc.save.frames)]
    for where, choice in fields + [("save.figure.frame", sc.save.figure.frame)]:
        if choice == "keyframes":
            continue
        try:
            resolve_frame(choice, info.frames)
        except ValueError:
            raise PreflightError(f"{where}: frame {choice} is outside video {info.label!r} "
                                 f"({info.frames} frames)") from None


def _check_videos(sc) -> list[str]:
    out = []
    cfgs = sc.scheme_configs()
    for j in range(len(sc.videos)):
        info = _probe(sc, j)
        _check_save(sc, info)
        for i, cfg in enumerate(cfgs):
            try:
                out += SCHEMES.get(cfg.type).check_video(cfg, info, f"schemes[{i}]")
            except ValueError as e:
                raise PreflightError(str(e)) from None
    return out


def preflight(sc) -> list[str]:
    """Check what running the :class:`~lgvsc.sim.scenario.Scenario` ``sc`` needs;
    returns warning lines, raises :class:`PreflightError` (one line)."""
    _check_schemes(sc)
    return _check_videos(sc) if sc.kind == "video" else []
