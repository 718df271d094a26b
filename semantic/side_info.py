"""Optical-flow side information per segment (LGVSC).

The transmitter summarises the motion of each video segment with optical
flow and sends it as a few bits next to the keyframes and captions; the
receiver uses it to condition generation.  Two descriptor forms:

* :class:`MotionScalar` -- the authors' form: one number per segment, the
  mean optical-flow magnitude in **pixels per frame** (not normalised by the
  frame size), quantised to 8 bits on a log scale.  :meth:`MotionScalar.text`
  renders it as the prompt suffix ``"motion score: 3.2"`` that the authors
  append to the video generator's prompt.
* :class:`MotionGrid` -- a coarse grid of mean flow vectors (dx, dy) plus the
  global mean vector, each component quantised uniformly.  The embedded world
  model (a flow-guided interpolator between keyframes) uses
  :meth:`MotionGrid.dense` as a coarse prior to refine flow between keyframes.

Flow is estimated on greyscale between up to ``pairs`` evenly spaced
consecutive frame pairs ``(i, i + 1)`` of the segment; a one-frame segment
has zero motion.  Flow arrays are float32 [H, W, 2], component 0 = dx
(positive right), component 1 = dy (positive down), in pixels per frame.

Every descriptor form has ``encode(segment)``, ``to_bits(desc)`` (uint8
[num_bits], MSB first per field), ``from_bits(bits)`` (never raises on
corrupted or wrongly sized bits, always finite) and a fixed ``num_bits``.
``encode`` returns the measured (unquantised) descriptor; ``quantize(desc)``
gives what the receiver decodes from error-free bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..link.registry import Registry, UnknownComponentError
from .frames import FrameWindow

FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = {"medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST}


# -- flow ------------------------------------------------------------------
def _check_frame(name: str, frame: np.ndarray) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name} must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def estimate_flow(a: np.ndarray, b: np.ndarray, method: str = "dis",
                  preset: str = "medium") -> np.ndarray:
    """Dense optical flow from frame ``a`` to frame ``b``.

    :param a, b: uint8 RGB frames [H, W, 3] of the same shape.
    :param method: ``"dis"`` (cv2.DISOpticalFlow) or ``"farneback"``.
    :param preset: DIS preset, ``"medium"`` or ``"fast"`` (ignored by Farneback).
    :return: float32 [H, W, 2], (dx, dy) in pixels: ``a(y, x) ~ b(y + dy, x + dx)``.
    """
    _check_frame("a", a)
    _check_frame("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if method not in FLOW_METHODS:
        raise ValueError(f"method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")
    if preset not in DIS_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(DIS_PRESETS)}, got {preset!r}")
    ga, gb = _grey(a), _grey(b)
    if method == "dis":
        flow = cv2.DISOpticalFlow_create(DIS_PRESETS[preset]).calc(ga, gb, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=3, winsize=15,
                                            iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return np.nan_to_num(flow.astype(np.float32, copy=False))


def pair_indices(length: int, pairs: int) -> np.ndarray:
    """Start indices ``i`` of up to ``pairs`` evenly spaced pairs (i, i+1) in ``length`` frames."""
    if length < 2:
        return np.zeros(0, dtype=np.int64)
    if length - 1 <= pairs:
        return np.arange(length - 1)
    return np.unique(np.round(np.linspace(0, length - 2, pairs)).astype(np.int64))


def _check_segment(segment):
    """The segment as given when it is a :class:`~lgvsc.semantic.frames.FrameWindow`
    (frames read when indexed), else as an array."""
    if not isinstance(segment, FrameWindow):
        segment = np.asarray(segment)
    if segment.dtype != np.uint8 or segment.ndim != 4 or segment.shape[3] != 3 or len(segment) < 1:
        raise ValueError(f"segment must be uint8 [L>=1, H, W, 3], got {segment.dtype} "
                         f"{segment.shape}")
    return segment


class _FlowSummary:
    """Shared settings: how many pairs are sampled and which flow method is used."""

    def __init__(self, pairs: int, method: str, preset: str):
        if not isinstance(pairs, (int, np.integer)) or pairs < 1:
            raise ValueError(f"pairs must be an int >= 1, got {pairs!r}")
        if method not in FLOW_METHODS:
            raise ValueError(f"method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")
        if preset not in DIS_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(DIS_PRESETS)}, got {preset!r}")
        self.pairs, self.method, self.preset = int(pairs), method, preset

    def flows(self, segment: np.ndarray) -> np.ndarray:
        """uint8 [L, H, W, 3] (an array or a frame window: only the sampled pairs are
        read) -> float32 [P, H, W, 2] flows of the sampled pairs (P may be 0)."""
        segment = _check_segment(segment)
        idx = pair_indices(len(segment), self.pairs)
        out = np.zeros((len(idx),) + segment.shape[1:3] + (2,), dtype=np.float32)
        for k, i in enumerate(idx):
            out[k] = estimate_flow(segment[i], segment[i + 1], self.method, self.preset)
        return out

    def mean_flow(self, segment: np.ndarray) -> np.ndarray:
        """float32 [H, W, 2]: flow averaged over the sampled pairs (zeros when L == 1)."""
        flows = self.flows(segment)
        if len(flows) == 0:
            return np.zeros(flows.shape[1:], dtype=np.float32)
        return flows.mean(axis=0)


# -- bit packing -------------------------------------------------------------
def _codes_to_bits(codes: np.ndarray, width: int) -> torch.Tensor:
    """int codes [N] in [0, 2**width) -> uint8 bits [N * width], MSB first per code."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1, 1)
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    return torch.from_numpy(((codes >> shifts) & 1).astype(np.uint8).reshape(-1))


def _bits_to_codes(bits, count: int, width: int) -> np.ndarray:
    """Any bits (wrong length padded with 0 / truncated; nonzero -> 1) -> int64 codes [count]."""
    arr = torch.as_tensor(bits).reshape(-1).detach().cpu().numpy()
    arr = (arr != 0).astype(np.int64)[: count * width]
    arr = np.pad(arr, (0, count * width - len(arr))).reshape(count, width)
    return arr @ (1 << np.arange(width - 1, -1, -1, dtype=np.int64))


# -- scalar ----------------------------------------------------------------
@dataclass(frozen=True)
class MotionScore:
    """Mean optical-flow magnitude of a segment, pixels per frame (>= 0)."""

    px_per_frame: float


class MotionScalar(_FlowSummary):
    """The authors' side information: one motion score per segment.

    The score is the mean over pixels and sampled pairs of ``|flow|`` (pixels
    per frame).  8-bit code: 0 = no motion (score < ``lo / 2``); codes
    1..255 are log-spaced over [lo, hi] = [0.01, 64] px/frame (ratio
    ``(hi/lo)**(1/254)`` ~ 1.035 between codes, so at most ~1.7 % error
    inside the range); scores above ``hi`` are clipped to ``hi``.

    :param pairs: number of consecutive pairs sampled per segment.
    :param method: flow method (see :func:`estimate_flow`); ``preset`` its DIS preset.
    """

    LO, HI, BITS = 0.01, 64.0, 8

    def __init__(self, pairs: int = 4, method: str = "dis", preset: str = "medium"):
        super().__init__(pairs, method, preset)
        self._levels = (1 << self.BITS) - 1  # codes 1..255
        self._log_step = np.log(self.HI / self.LO) / (self._levels - 1)

    @property
    def num_bits(self) -> int:
        return self.BITS

    def encode(self, segment: np.ndarray) -> MotionScore:
        """uint8 [L, H, W, 3] -> measured (unquantised) :class:`MotionScore`."""
        mag = np.linalg.norm(self.flows(segment), axis=-1)  # [P, H, W]
        return MotionScore(float(np.nan_to_num(mag.mean())) if mag.size else 0.0)

    def _code(self, value: float) -> int:
        value = float(np.nan_to_num(value, nan=0.0, posinf=self.HI))
        if value < self.LO / 2:
            return 0
        pos = np.log(np.clip(value, self.LO, self.HI) / self.LO) / self._log_step
        return 1 + int(np.clip(np.round(pos), 0, self._levels - 1))

    def _value(self, code: int) -> float:
        if code <= 0:
            return 0.0
        code = min(int(code), self._levels)
        return float(self.LO * np.exp((code - 1) * self._log_step))

    def to_bits(self, desc: MotionScore) -> torch.Tensor:
        """-> uint8 bits [8]."""
        return _codes_to_bits(np.array([self._code(desc.px_per_frame)]), self.BITS)

    def from_bits(self, bits) -> MotionScore:
        """uint8 bits [8] -> :class:`MotionScore` (never raises)."""
        return MotionScore(self._value(int(_bits_to_codes(bits, 1, self.BITS)[0])))

    def quantize(self, desc: MotionScore) -> MotionScore:
        """What the receiver decodes from error-free bits."""
        return self.from_bits(self.to_bits(desc))

    @staticmethod
    def text(desc: MotionScore) -> str:
        """Prompt suffix: ``f"motion score: {px_per_frame:.1f}"``, e.g. ``"motion score: 3.2"``."""
        return f"motion score: {desc.px_per_frame:.1f}"


# -- grid ------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MotionField:
    """Coarse motion of a segment, pixels per frame.

    ``cells``: float32 [gy, gx, 2] mean (dx, dy) per grid cell (row-major,
    top-left first); ``mean``: float32 [2] global mean (dx, dy).
    """

    cells: np.ndarray
    mean: np.ndarray

    def __eq__(self, other) -> bool:
        return (isinstance(other, MotionField) and np.array_equal(self.cells, other.cells)
                and np.array_equal(self.mean, other.mean))


def _cell_means(flow: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """[H, W, 2] -> [gy, gx, 2] means over near-equal cells (``np.array_split`` bounds)."""
    gy, gx = grid
    rows = np.array_split(np.arange(flow.shape[0]), gy)
    cols = np.array_split(np.arange(flow.shape[1]), gx)
    out = np.zeros((gy, gx, 2), dtype=np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[i, j] = flow[r[0]:r[-1] + 1, c[0]:c[-1] + 1].reshape(-1, 2).mean(axis=0)
    return out


class MotionGrid(_FlowSummary):
    """Coarse grid of mean flow vectors plus the global mean vector.

    Each of the ``2 * (gy * gx + 1)`` components (cells row-major, dx then dy
    per cell, then the global dx, dy) is clipped to [-max_px, max_px] and
    quantised with a mid-tread uniform quantiser of ``bits`` bits: codes
    0..2**bits - 2 map to ``(code - (2**bits - 2) / 2) * step`` with
    ``step = 2 * max_px / (2**bits - 2)`` (6 bits, max_px 16: 0.516 px;
    max_px 8: 0.258 px), so zero motion is exact and the error inside the
    range is at most ``step / 2``.  The unused all-ones code decodes to
    ``+max_px``.

    The embedded world model (a later flow-guided interpolator) refines its
    flow between keyframes from :meth:`dense`, the bilinear upsampling of the
    grid to a full-resolution field.

    :param grid: (gy, gx) cells. :param max_px: clip range, px/frame.
    :param bits: bits per component. :param pairs, method, preset: as :class:`MotionScalar`.
    """

    def __init__(self, grid: tuple[int, int] = (4, 4), max_px: float = 16.0, bits: int = 6,
                 pairs: int = 4, method: str = "dis", preset: str = "medium"):
        super().__init__(pairs, method, preset)
        if (not isinstance(grid, (tuple, list)) or len(grid) != 2
                or any(not isinstance(g, (int, np.integer)) or g < 1 for g in grid)):
            raise ValueError(f"grid must be two ints >= 1 (gy, gx), got {grid!r}")
        if not isinstance(max_px, (int, float)) or not np.isfinite(max_px) or max_px <= 0:
            raise ValueError(f"max_px must be a finite number > 0, got {max_px!r}")
        if not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
            raise ValueError(f"bits must be an int in [2, 16], got {bits!r}")
        self.grid, self.max_px, self.bits = tuple(int(g) for g in grid), float(max_px), int(bits)
        self._half = ((1 << bits) - 2) // 2  # code of zero motion
        self.step = self.max_px / self._half

    @property
    def num_bits(self) -> int:
        return 2 * (self.grid[0] * self.grid[1] + 1) * self.bits

    def encode(self, segment: np.ndarray) -> MotionField:
        """uint8 [L, H, W, 3] (H >= gy, W >= gx) -> measured (unquantised) :class:`MotionField`."""
        flow = self.mean_flow(segment)
        if flow.shape[0] < self.grid[0] or flow.shape[1] < self.grid[1]:
            raise ValueError(f"segment frames {flow.shape[:2]} are smaller than grid {self.grid}")
        return MotionField(_cell_means(flow, self.grid),
                           flow.reshape(-1, 2).mean(axis=0).astype(np.float32))

    def _codes(self, values: np.ndarray) -> np.ndarray:
        v = np.clip(np.nan_to_num(values.astype(np.float64)), -self.max_px, self.max_px)
        return np.clip(np.round(v / self.step) + self._half, 0, 2 * self._half).astype(np.int64)

    def _values(self, codes: np.ndarray) -> np.ndarray:
        codes = np.clip(codes, 0, 2 * self._half)
        return ((codes - self._half) * self.step).astype(np.float32)

    def to_bits(self, desc: MotionField) -> torch.Tensor:
        """-> uint8 bits [num_bits]."""
        cells, mean = np.asarray(desc.cells), np.asarray(desc.mean)
        if cells.shape != self.grid + (2,) or mean.shape != (2,):
            raise ValueError(f"desc must have cells {self.grid + (2,)} and mean (2,), got "
                             f"{cells.shape} and {mean.shape}")
        flat = np.concatenate([cells.reshape(-1), mean])
        return _codes_to_bits(self._codes(flat), self.bits)

    def from_bits(self, bits) -> MotionField:
        """uint8 bits [num_bits] -> :class:`MotionField`; never raises, values in +-max_px."""
        n = self.grid[0] * self.grid[1] * 2
        vals = self._values(_bits_to_codes(bits, n + 2, self.bits))
        return MotionField(vals[:n].reshape(self.grid[0], self.grid[1], 2), vals[n:])

    def quantize(self, desc: MotionField) -> MotionField:
        """What the receiver decodes from error-free bits."""
        return self.from_bits(self.to_bits(desc))

    @staticmethod
    def dense(desc: MotionField, height: int, width: int) -> np.ndarray:
        """Bilinear upsampling (cv2.resize, cell centres) -> float32 [height, width, 2] px/frame."""
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be >= 1, got {height}, {width}")
        cells = np.ascontiguousarray(desc.cells, dtype=np.float32)
        return cv2.resize(cells, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)


# -- factory -----------------------------------------------------------------
SIDE_INFO: Registry[type] = Registry("side_info", check_weights=True)
SIDE_INFO.register("scalar")(MotionScalar)
SIDE_INFO.register("grid")(MotionGrid)


def make_side_info(kind: str, **params):
    """Build a side-information form by name (``"scalar"`` or ``"grid"``)."""
    try:
        cls = SIDE_INFO.get(kind)
    except UnknownComponentError as e:
        raise ValueError(str(e)) from None
    return cls(**params)
