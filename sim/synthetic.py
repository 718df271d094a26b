"""Deterministic procedural test videos with known segment boundaries.

``render_synthetic(preset, frames, height, width, seed)`` draws a short RGB
clip (uint8, shape ``[F, H, W, 3]``) cut into segments, together with the
0-based frame indices where each new segment starts and one plain-English
caption per segment. It is meant for testing keyframe selection and video
transmission without any real footage.

A scene is a background (stripes, checkerboard, gradient or a smooth noise
texture in two shades of a named colour), optionally seen through a panning
camera, plus named-colour shapes (square, circle, triangle) that move in
straight lines and bounce off the frame edges (up to half of a shape may be
outside the frame; it is clipped). Global illumination is one of ``normal``,
``dim``, ``warm`` or ``cool``.

Presets, easy to hard (``PRESETS``):

* ``static``   -- one slowly drifting object; 2 segments split by a hard cut.
* ``pan``      -- the camera pans over a textured background while one object
  moves; 2-3 segments split by hard cuts.
* ``objects``  -- several moving objects; at a boundary a large object
  appears or disappears abruptly, or (sometimes) a hard cut.
* ``lighting`` -- moving objects, some camera pan; every boundary is an abrupt
  switch of brightness / colour temperature.
* ``cuts``     -- 4-6 short segments, each a hard cut to a different scene.
* ``mixed``    -- all of the events above, faster motion, more objects,
  camera pan and mild Gaussian sensor noise (sigma 2.5 on the 0..255 scale).

Segment lengths are drawn from the generator; they sum to ``frames`` and each
is at least ``min(6, frames)`` frames long (short clips get fewer segments; a
1-frame clip has one segment and no boundaries).

Boundary guarantee. Within a segment everything moves continuously (at most
~2 px/frame for a 128-px frame, scaled with ``min(height, width)``, anti-
aliased edges, smooth low-frequency textures), so consecutive frames differ
little. At a boundary ``b`` the content changes discretely between frames
``b-1`` and ``b``. Each event is drawn, rendered noise-free and kept only if
its mean absolute frame difference is at least ``EVENT_MIN_MAD`` (otherwise
another event is drawn; after 16 tries the strongest is kept). In practice
events differ by 16-60 while motion moves at most a few grey levels per
frame (mixed: about 7 including noise). Finally the whole clip is checked:
the mean absolute difference ``|frame[b] - frame[b-1]|`` at every boundary
must be more than ``BOUNDARY_MARGIN`` times the largest difference between
any other pair of consecutive frames. If it is not, the clip is re-rendered
from the same seed with slower motion (ultimately with no motion at all,
leaving only sensor noise), so the result is still a pure function of the
arguments.

Only ``np.random.default_rng(seed)`` is used; no global random state.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

import numpy as np

PRESETS: tuple[str, ...] = ("static", "pan", "objects", "lighting", "cuts", "mixed")

EVENT_MIN_MAD = 16.0  # noise-free boundary difference an event must reach (0..255 scale)
BOUNDARY_MARGIN = 2.0  # boundary MAD > margin * max non-boundary MAD, checked per clip
MIN_SEGMENT = 6  # frames (or the whole clip when shorter)
_MOTION_SCALES = (1.0, 0.5, 0.25, 0.0)  # re-render speeds when the check fails
_MAX_OBJECTS = 5
_EVENT_TRIES = 16

# Named colours, RGB 0..255.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "blue": (50, 90, 210), "green": (60, 165, 70), "teal": (40, 150, 150),
    "gray": (150, 150, 150), "brown": (160, 105, 60), "pink": (235, 150, 185),
    "beige": (225, 205, 160),
}
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35), "green": (40, 200, 60), "blue": (35, 75, 235),
    "yellow": (245, 225, 40), "white": (245, 245, 245), "orange": (250, 140, 20),
    "purple": (150, 50, 200), "black": (20, 20, 20),
}
SHAPES: tuple[str, ...] = ("square", "circle", "triangle")
PATTERNS: dict[str, str] = {  # pattern -> background phrase ({c} = colour name)
    "stripes": "striped {c}", "checkerboard": "{c} checkerboard",
    "gradient": "{c} gradient", "noise": "mottled {c}",
}
LIGHTS: dict[str, tuple[tuple[float, float, float], str]] = {  # RGB gain, caption
    "normal": ((1.0, 1.0, 1.0), ""),
    "dim": ((0.42, 0.42, 0.45), "in dim light"),
    "warm": ((1.12, 0.85, 0.5), "under warm orange light"),
    "cool": ((0.6, 0.85, 1.12), "under cool blue light"),
}
_SHADE = 0.55  # dark shade of a background colour = colour * _SHADE
_MIN_CONTRAST = 70.0  # object vs background colour, mean |diff| over RGB
# Bounding half-extent of a shape divided by sqrt(area).
_EXTENT = {"square": 0.5, "circle": 1 / math.sqrt(math.pi),
           "triangle": 2 / math.sqrt(3 * math.sqrt(3))}
_TRI_NORMALS = np.array([[0.0, 1.0], [-math.sqrt(3) / 2, -0.5], [math.sqrt(3) / 2, -0.5]])


@dataclass(frozen=True)
class SyntheticClip:
    """A rendered clip.

    frames: uint8 ``[F, H, W, 3]`` RGB. boundaries: 0-based indices of the
    first frame of every segment but the first, strictly increasing.
    captions: one per segment (``len(boundaries) + 1``). preset: its name.
    """

    frames: np.ndarray
    boundaries: tuple[int, ...]
    captions: tuple[str, ...]
    preset: str


@dataclass(frozen=True)
class _Style:
    """Per-preset knobs. Speeds are px/frame for a 128-px frame (min side)."""

    segments: tuple[int, int]  # desired segment count range (inclusive)
    events: tuple[str, ...]  # boundary events, drawn uniformly (repeat = weight)
    n_objects: tuple[int, int]  # objects in a fresh scene (inclusive)
    n_large: int  # how many of those are large (drawn first, i.e. behind)
    speed: float  # object speed
    pan: float  # camera speed when the scene pans
    pan_prob: float  # probability that a fresh scene pans
    noise: float  # sensor noise sigma, 0..255 scale
    random_light: bool  # fresh scenes get a random light (else "normal")


_STYLES: dict[str, _Style] = {
    "static": _Style((2, 2), ("cut",), (1, 1), 0, 0.25, 0.0, 0.0, 0.0, False),
    "pan": _Style((2, 3), ("cut",), (1, 1), 0, 1.0, 1.0, 1.0, 0.0, False),
    "objects": _Style((3, 4), ("appear", "disappear") * 2 + ("cut",), (2, 3), 1,
                      1.2, 0.0, 0.0, 0.0, False),
    "lighting": _Style((3, 4), ("light",), (1, 2), 0, 1.0, 0.6, 0.5, 0.0, True),
    "cuts": _Style((4, 6), ("cut",), (1, 2), 0, 1.0, 0.8, 0.5, 0.0, False),
    "mixed": _Style((4, 6), ("cut", "appear", "disappear", "light"), (2, 4), 1,
                    1.8, 1.2, 1.0, 2.5, True),
}


@dataclass(frozen=True)
class _Canvas:
    """Frame geometry: pixel-centre grids ``xs [1, W]``, ``ys [H, 1]`` (px);
    ``unit`` = px/frame per style speed unit: min side / 128 x motion scale."""

    height: int
    width: int
    unit: float
    xs: np.ndarray
    ys: np.ndarray

    @classmethod
    def make(cls, height: int, width: int, motion: float) -> _Canvas:
        xs = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
        ys = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
        return cls(height, width, min(height, width) / 128.0 * motion, xs, ys)


@dataclass(frozen=True)
class _Background:
    """pattern name, colour name, waves ``[K, 3]`` = (kx, ky rad/px, phase)."""

    pattern: str
    colour: str
    waves: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class _Object:
    """A shape; centre ``pos`` (x, y px) at frame ``ref``, ``vel`` px/frame."""

    shape: str
    colour: str
    area: float  # px^2
    large: bool
    pos: tuple[float, float]
    vel: tuple[float, float]
    ref: int

    def at(self, f: int, cv: _Canvas) -> tuple[float, float, float, float]:
        """Centre (x, y) and current velocity (vx, vy) at frame f, bouncing in the frame."""
        x, sx = _bounce(self.pos[0] + self.vel[0] * (f - self.ref), cv.width)
        y, sy = _bounce(self.pos[1] + self.vel[1] * (f - self.ref), cv.height)
        return x, y, self.vel[0] * sx, self.vel[1] * sy


@dataclass(frozen=True)
class _Scene:
    """Background seen through a camera at offset ``origin + pan * (f - ref)``."""

    bg: _Background
    objects: tuple[_Object, ...]
    pan: tuple[float, float]  # camera px/frame
    origin: tuple[float, float]
    ref: int
    light: str


def _bounce(p: float, length: float) -> tuple[float, float]:
    """Reflect coordinate p into [0, length]; also return the direction sign."""
    q = p % (2.0 * length)
    return (q, 1.0) if q <= length else (2.0 * length - q, -1.0)


# --------------------------------------------------------------- drawing


def _pattern(bg: _Background, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mix weight in [0, 1], shape [H, W], at world coordinates x [1, W], y [H, 1]."""
    s = [np.sin(kx * x + ky * y + ph) for kx, ky, ph in bg.waves]
    if bg.pattern == "stripes":
        t = 0.5 + 0.75 * s[0]
    elif bg.pattern == "checkerboard":
        t = 0.5 + 1.5 * s[0] * s[1]
    elif bg.pattern == "gradient":
        t = 0.5 + 0.5 * s[0]
    else:  # noise
        t = 0.5 + 0.6 * sum(s) / math.sqrt(len(s))
    return np.clip(t, 0.0, 1.0)


def _sdf(shape: str, dx: np.ndarray, dy: np.ndarray, area: float) -> np.ndarray:
    """Signed distance (px, negative inside) from the shape's edge; dx [1, w], dy [h, 1]."""
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - math.sqrt(area) / 2
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - math.sqrt(area / math.pi)
    inradius = math.sqrt(area / (3 * math.sqrt(3)))  # equilateral, apex up
    d = [nx * dx + ny * dy for nx, ny in _TRI_NORMALS]
    return np.maximum(np.maximum(d[0], d[1]), d[2]) - inradius


def _paint(img: np.ndarray, obj: _Object, f: int, cv: _Canvas) -> None:
    """Alpha-composite obj at frame f onto img [H, W, 3] in place (clipped to the frame)."""
    cx, cy, _, _ = obj.at(f, cv)
    r = _EXTENT[obj.shape] * math.sqrt(obj.area) + 1.0
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, cv.width)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, cv.height)
    if x0 >= x1 or y0 >= y1:
        return
    d = _sdf(obj.shape, cv.xs[:, x0:x1] - cx, cv.ys[y0:y1] - cy, obj.area)
    alpha = np.clip(0.5 - d, 0.0, 1.0)[..., None]
    sub = img[y0:y1, x0:x1]
    sub += (np.asarray(OBJECT_COLOURS[obj.colour], np.float32) - sub) * alpha


def _render(scene: _Scene, f: int, cv: _Canvas) -> np.ndarray:
    """Noise-free frame f of scene as float32 [H, W, 3], 0..255 (may exceed 255)."""
    ox = scene.origin[0] + scene.pan[0] * (f - scene.ref)
    oy = scene.origin[1] + scene.pan[1] * (f - scene.ref)
    t = _pattern(scene.bg, cv.xs + np.float32(ox), cv.ys + np.float32(oy))[..., None]
    base = np.asarray(BACKGROUND_COLOURS[scene.bg.colour], np.float32)
    img = (base * _SHADE + base * (1 - _SHADE) * t).astype(np.float32)
    for obj in scene.objects:
        _paint(img, obj, f, cv)
    return img * np.asarray(LIGHTS[scene.light][0], np.float32)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two frames (any numeric dtype), 0..255 scale."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


# --------------------------------------------------------------- scene drawing


def _new_background(rng: np.random.Generator, cv: _Canvas, avoid: str | None) -> _Background:
    """Random pattern and colour (never ``avoid``); periods scale with the frame size."""
    colour = str(rng.choice([c for c in BACKGROUND_COLOURS if c != avoid]))
    pattern = str(rng.choice(list(PATTERNS)))
    side = min(cv.height, cv.width)
    if pattern == "noise":
        periods, angles = rng.uniform(0.35, 0.9, 6) * side, rng.uniform(0, 2 * math.pi, 6)
    elif pattern == "gradient":
        periods, angles = np.array([3.0 * max(cv.height, cv.width)]), rng.uniform(0, 2 * math.pi, 1)
    elif pattern == "checkerboard":
        periods, angles = np.full(2, rng.uniform(0.3, 0.5) * side), np.array([0.0, math.pi / 2])
    else:
        periods, angles = np.array([rng.uniform(0.3, 0.5) * side]), rng.uniform(0, math.pi, 1)
    phases = rng.uniform(0, 2 * math.pi, len(periods))
    waves = tuple((2 * math.pi / p * math.cos(a), 2 * math.pi / p * math.sin(a), ph)
                  for p, a, ph in zip(periods, angles, phases))
    return _Background(pattern, colour, waves)


def _pick_colour(rng: np.random.Generator, bg: _Background, taken: set[str]) -> str:
    """An unused object colour that stands out against the background."""
    mid = np.asarray(BACKGROUND_COLOURS[bg.colour], float) * (1 + _SHADE) / 2
    ok = [c for c, rgb in OBJECT_COLOURS.items()
          if c not in taken and np.abs(np.asarray(rgb) - mid).mean() >= _MIN_CONTRAST]
    return str(rng.choice(ok or [c for c in OBJECT_COLOURS if c not in taken]))


def _direction(rng: np.random.Generator, speed: float) -> tuple[float, float]:
    """Velocity (px/frame) of magnitude speed, near one of the four axes."""
    angle = rng.integers(4) * math.pi / 2 + rng.uniform(-0.4, 0.4)
    return speed * math.cos(angle), speed * math.sin(angle)


def _new_object(rng: np.random.Generator, style: _Style, cv: _Canvas, bg: _Background,
                ref: int, large: bool, taken: set[str]) -> _Object:
    """A shape fully inside the frame at frame ``ref``; large ones cover 12-16% of it."""
    colour, shape = _pick_colour(rng, bg, taken), str(rng.choice(SHAPES))
    frac = rng.uniform(0.12, 0.16) if large else rng.uniform(0.015, 0.04)
    ext_max = 0.45 * min(cv.height, cv.width)  # keep the whole shape fittable
    area = min(frac * cv.height * cv.width, (ext_max / _EXTENT[shape]) ** 2)
    ext = _EXTENT[shape] * math.sqrt(area)
    pos = (rng.uniform(ext, cv.width - ext), rng.uniform(ext, cv.height - ext))
    speed = style.speed * cv.unit * rng.uniform(0.6, 1.0) * (0.5 if large else 1.0)
    return _Object(shape, colour, float(area), large, pos, _direction(rng, speed), ref)


def _new_scene(rng: np.random.Generator, style: _Style, cv: _Canvas, ref: int,
               avoid_bg: str | None = None) -> _Scene:
    """A fresh scene (used at frame 0 and at hard cuts)."""
    bg = _new_background(rng, cv, avoid_bg)
    objects: list[_Object] = []
    for i in range(int(rng.integers(style.n_objects[0], style.n_objects[1] + 1))):
        taken = {o.colour for o in objects}
        objects.append(_new_object(rng, style, cv, bg, ref, i < style.n_large, taken))
    pan = (0.0, 0.0)
    if style.pan > 0 and rng.random() < style.pan_prob:
        pan = _direction(rng, style.pan * cv.unit * rng.uniform(0.7, 1.0))
        pan = (pan[0], 0.0) if abs(pan[0]) > abs(pan[1]) else (0.0, pan[1])
    light = str(rng.choice(list(LIGHTS))) if style.random_light else "normal"
    origin = (float(rng.uniform(0, 1000)), float(rng.uniform(0, 1000)))
    return _Scene(bg, tuple(objects), pan, origin, ref, light)


# --------------------------------------------------------------- boundary events


def _event(kind: str, rng: np.random.Generator, style: _Style, cv: _Canvas,
           scene: _Scene, b: int) -> _Scene | None:
    """The scene after event ``kind`` at frame b, or None when it cannot happen."""
    objs = scene.objects
    if kind == "cut":
        return _new_scene(rng, style, cv, b, avoid_bg=scene.bg.colour)
    if kind == "light":
        return replace(scene, light=str(rng.choice([k for k in LIGHTS if k != scene.light])))
    if kind == "appear" and len(objs) < _MAX_OBJECTS:
        new = _new_object(rng, style, cv, scene.bg, b, True, {o.colour for o in objs})
        return replace(scene, objects=objs + (new,))
    if kind == "disappear" and len(objs) > 1:
        areas = np.array([o.area for o in objs])
        i = int(rng.choice(len(objs), p=areas / areas.sum()))
        return replace(scene, objects=objs[:i] + objs[i + 1:])
    return None


def _next_scene(rng: np.random.Generator, style: _Style, cv: _Canvas, scene: _Scene,
                b: int) -> _Scene:
    """Draw events until one changes frame b-1 -> b by at least EVENT_MIN_MAD (noise-free)."""
    before = _render(scene, b - 1, cv)
    best, best_mad = None, -1.0
    for _ in range(_EVENT_TRIES):
        kind = style.events[int(rng.integers(len(style.events)))]
        cand = _event(kind, rng, style, cv, scene, b)
        if cand is None:
            continue
        mad = _mad(np.clip(before, 0, 255), np.clip(_render(cand, b, cv), 0, 255))
        if mad >= EVENT_MIN_MAD:
            return cand
        if mad > best_mad:
            best, best_mad = cand, mad
    return best if best is not None else _new_scene(rng, style, cv, b, scene.bg.colour)


# --------------------------------------------------------------- captions


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _heading(vx: float, vy: float) -> str:
    """Screen direction of a velocity (image y points down)."""
    if abs(vx) >= abs(vy):
        return "right" if vx > 0 else "left"
    return "down" if vy > 0 else "up"


def _describe(obj: _Object, f: int, cv: _Canvas) -> str:
    """E.g. 'a large red square moves left' (motion at frame f)."""
    _, _, vx, vy = obj.at(f, cv)
    noun = _article(("large " if obj.large else "") + f"{obj.colour} {obj.shape}")
    speed = math.hypot(vx, vy) / (min(cv.height, cv.width) / 128.0)
    if speed == 0:
        return f"{noun} stays still"
    verb = "drifts slowly" if speed < 0.4 else "moves quickly" if speed > 1.5 else "moves"
    return f"{noun} {verb} {_heading(vx, vy)}"


def _caption(scene: _Scene, start: int, stop: int, cv: _Canvas) -> str:
    """Plain-English description of frames [start, stop) of scene."""
    parts = [_describe(o, (start + stop - 1) // 2, cv) for o in scene.objects]
    subject = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    bg = PATTERNS[scene.bg.pattern].format(c=scene.bg.colour)
    text = f"{subject} over {_article(bg)} background"
    if LIGHTS[scene.light][1]:
        text += " " + LIGHTS[scene.light][1]
    if scene.pan != (0.0, 0.0):
        text += f", the camera pans {_heading(*scene.pan)}"
    return text


# --------------------------------------------------------------- clip assembly


def _segment_lengths(rng: np.random.Generator, style: _Style, frames: int) -> list[int]:
    """Segment lengths (frames), each >= min(MIN_SEGMENT, frames), summing to frames."""
    m = min(MIN_SEGMENT, frames)
    n = max(1, min(int(rng.integers(style.segments[0], style.segments[1] + 1)), frames // m))
    extra = rng.multinomial(frames - n * m, rng.dirichlet(np.full(n, 3.0)))
    return [m + int(e) for e in extra]


def _build(preset: str, frames: int, height: int, width: int, seed: int,
           motion: float) -> SyntheticClip:
    """Plan and render one clip with all speeds multiplied by ``motion``."""
    rng, style = np.random.default_rng(seed), _STYLES[preset]
    cv = _Canvas.make(height, width, motion)
    starts = np.cumsum([0] + _segment_lengths(rng, style, frames)).tolist()
    scenes = [_new_scene(rng, style, cv, 0)]
    for b in starts[1:-1]:
        scenes.append(_next_scene(rng, style, cv, scenes[-1], b))
    video = np.empty((frames, height, width, 3), np.uint8)
    for scene, start, stop in zip(scenes, starts[:-1], starts[1:]):
        for f in range(start, stop):
            img = _render(scene, f, cv)
            if style.noise > 0:
                img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(style.noise)
            video[f] = np.clip(np.rint(img), 0, 255)
    captions = tuple(_caption(s, a, z, cv) for s, a, z in zip(scenes, starts[:-1], starts[1:]))
    return SyntheticClip(video, tuple(starts[1:-1]), captions, preset)


def pair_differences(frames: np.ndarray) -> np.ndarray:
    """Mean |frame[i+1] - frame[i]| over pixels and channels, shape [F-1], 0..255 scale."""
    out = np.empty(max(len(frames) - 1, 0), np.float64)
    for i in range(len(out)):
        out[i] = _mad(frames[i + 1], frames[i])
    return out


def _boundaries_clear(clip: SyntheticClip) -> bool:
    """Every boundary difference > BOUNDARY_MARGIN x the largest non-boundary one."""
    if not clip.boundaries:
        return True
    d = pair_differences(clip.frames)
    at = np.zeros(len(d), bool)
    at[np.asarray(clip.boundaries) - 1] = True
    rest = d[~at].max() if (~at).any() else 0.0
    return bool(d[at].min() > BOUNDARY_MARGIN * rest)


def _check_args(preset: str, frames: int, height: int, width: int) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; valid: {', '.join(PRESETS)}")
    for name, value, low in (("frames", frames, 1), ("height", height, 16), ("width", width, 16)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def render_synthetic(preset: str, frames: int, height: int, width: int,
                     seed: int = 0) -> SyntheticClip:
    """Render a deterministic synthetic clip.

    preset: one of PRESETS. frames >= 1, height >= 16, width >= 16 (pixels).
    Returns frames uint8 [frames, height, width, 3] RGB, the boundaries
    (first frame of each later segment) and one caption per segment. Same
    arguments -> identical clip; see the module docstring for the boundary
    guarantee.
    """
    _check_args(preset, frames, height, width)
    frames, height, width = int(frames), int(height), int(width)
    for motion in _MOTION_SCALES:
        clip = _build(preset, frames, height, width, int(seed), motion)
        if _boundaries_clear(clip):
            break
    return clip
