"""SoftCast-style linear analog coding of transform coefficients, exact budgets.

Shared by the ``softcast`` video baseline and the ``softcast-image`` keyframe
codec. The caller transforms its signal into *coefficient sets* (orthonormal
DCTs: one ``[T, H, W]`` float64 array per GOP x colour plane for video, one
``[1, H, W]`` per plane for an image) and back; :class:`LinearCoder` does the
rest:

* **Mean.** The DC coefficient of each set (``mean x sqrt(T H W)``) travels as
  digital metadata: the set's mean (pixel units) quantised with step
  :data:`DC_STEP` (1/4 level, error <= 1/8). Only the residual stays in the
  analog part, so the power goes to the zero-mean coefficients.
* **Chunks.** Every DCT slice (``t`` of a set) is cut into a grid of
  rectangles (chunk ``(i, j)``); ``lambda`` = mean square of a chunk. Up to four
  candidate grids; the transmitter picks the one with the lowest expected
  distortion at a design SNR (AWGN, the exact LLSE MSE below), the receiver
  reads the choice from the header.
* **Kept set.** In every slice the kept chunks form a *staircase* (a 2-D
  down-set: ``(i, j)`` kept implies ``(i-1, j)`` and ``(i, j-1)`` kept), grown
  greedily over the whole clip by ``lambda`` (the frontier chunk of largest
  ``lambda`` next). A staircase costs a few bits per row instead of an index
  per chunk and, since DCT energy falls with frequency, keeps nearly the same
  energy as the plain top-``lambda`` set (measured: ``bench/softcast_reference.py``).
* **Exact budget.** The chunks are kept while the channel uses (analog
  symbols, the analog pipe's power-scale side info and the metadata through
  the digital pipe) fit ``budget_uses``; the last kept chunk (lowest
  ``lambda``) may be *partial*: only its first ``n`` coefficients in the
  chunk's scan order (low frequency first: by ``r + c``, then ``r``) are sent.
  ``n`` is not sent: the receiver knows how many analog values arrived.
  The spent uses land in ``[BUDGET_FLOOR, 1] x budget_uses``; a budget that
  cannot be met raises :class:`BudgetUnfit` (a ``BudgetError``) carrying the
  smallest and largest budgets that would work.
* **No metadata.** Below the metadata header's cost (tiny clips or budgets)
  the one candidate left is the *bare* plan: no metadata at all (an empty
  payload, which the receiver sees from the framing), the lowest-frequency
  coefficients (round robin over the sets, each in 3-D zigzag order
  ``t + r + c``, means included) at unit gain, estimated as they arrive (ZF).
  It competes with the grids on expected distortion wherever it fits
  (up to :data:`BARE_MAX_VALUES` values) and spends the budget exactly;
  only a budget below the power scale plus one symbol (33 uses) is refused.
* **Power and decoding.** Chunk ``i`` is scaled by ``g_i = lambda_i^(-1/4)``
  (quantised ``lambda``; the analog pipe normalises the total power) and
  estimated by LLSE, ``x = g lambda / (g^2 lambda + sigma^2) y``, with
  ``sigma^2`` the analog pipe's per-value noise variance.
* **Segments.** With ``segment_values`` set, the analog values go through
  the pipe in consecutive segments of that many (one power scale, and its
  side info, each); the budget fitting charges one scale per segment
  (:meth:`LinearCoder.analog_uses`). Default: one call, one scale.
* **Streaming.** :meth:`LinearCoder.plan_stream` plans from statistics
  gathered set by set (two passes: means, energies and the chunk lambdas of
  every candidate grid; then the energies of the chunks each candidate keeps),
  never holding the sets, and makes the same decisions, bit for bit, as
  :meth:`LinearCoder.plan` on the sets in memory (which calls it and adds
  the ``values``). :class:`SentMap` gathers any range of the sent values from
  the sets one at a time; :class:`Receiver` parses the metadata once and
  rebuilds each set from its own received values (a contiguous range per set,
  plus the partial chunk's near the end); :meth:`LinearCoder.decode` is the
  same for all sets at once.

Bit format (MSB first; ``EG_k`` = Exp-Golomb of order ``k``,
``SEG_k`` = EG_k of the signed value mapped ``v > 0 -> 2v - 1, v <= 0 -> -2v``)::

    grid index                2 bits   (index into the candidate grids)
    per set s: mean code      11 bits  two's complement, mean = code / 4
    k_rows, k_lam             3 + 3 bits  Exp-Golomb orders
    per set s:
      L_s                     EG_0     slices coded (slices >= L_s are empty)
      per slice t < L_s:
        c_t0 - c_(t-1)0       SEG_k_rows  kept chunks in row 0 (c_(-1)0 = 0)
        per row i >= 1 while c_t(i-1) > 0:
          c_t(i-1) - c_ti     EG_k_rows   (rows are non-increasing)
    partial                   ceil(log2 K) bits: position, in the scan order
                              below, of the partial chunk (K = kept chunks)
    per kept chunk, scan order (set, slice, row, col):
      q - pred                SEG_k_lam   q = round(log2 lambda / 2), pred = the
                              median of left, up, left + up - upleft (LOCO-I);
                              left or up alone on the first row / column; the
                              previous slice-start q (0 at first) for (0, 0)

``q`` below ``ceil(LOG2_LAMBDA_MIN / 2)`` means ``lambda = 0`` (the chunk is kept
to spend the budget but carries nothing). Analog values: the kept chunks in scan order, the
partial chunk moved to the end, each chunk's coefficients in its scan order.

Robustness: decoding never raises. Counts are clipped to the grid (a staircase
stays a staircase), codes to their range, a read past the end or an
Exp-Golomb prefix longer than :data:`EG_MAX_PREFIX` ends the metadata (the
chunks not described are dropped); chunks beyond the analog values that
arrived are dropped, a short one keeps what arrived. Deterministic.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..link.analog import AnalogPipe
from ..link.cbr import BUDGET_FLOOR, BudgetError
from ..link.channels import snr_db_to_no
from ..link.digital import DigitalPipe

GRID_BITS = 2
MAX_GRIDS = 1 << GRID_BITS
DC_BITS = 11
DC_STEP = 0.25           # pixel levels per mean code
ORDER_BITS = 3           # Exp-Golomb order fields
LAMBDA_STEP = 2.0        # default log2 lambda per code (a factor 4; the trade-off: bench)
LOG2_LAMBDA_MIN = -23    # lambda below 2^-23 is sent as 0 (the code below the range)
LOG2_LAMBDA_MAX = 40
EG_MAX_PREFIX = 32
BARE_MAX_VALUES = 1 << 16  # the no-metadata plan is tried up to this many values

#: candidate chunk grids (rows, cols) per DCT slice, tried in this order
DEFAULT_GRIDS = ((8, 8), (16, 16), (32, 32), (64, 64))

#: BT.601 full-range RGB -> YCbCr (offsets dropped: the means carry them), and back
RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                    [0.5, -0.418688, -0.081312]])
YCC2RGB = np.linalg.inv(RGB2YCC)
#: weight of a Y / Cb / Cr squared error in the RGB MSE
RGB_WEIGHTS = (YCC2RGB ** 2).sum(axis=0) / 3


def to_ycc(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] RGB -> float64 [..., 3] YCbCr (no offsets)."""
    return rgb.astype(np.float64) @ RGB2YCC.T


def to_rgb(ycc: np.ndarray) -> np.ndarray:
    """float [..., 3] YCbCr -> uint8 [..., 3] RGB (rounded, clipped)."""
    return np.clip(np.rint(ycc @ YCC2RGB.T), 0, 255).astype(np.uint8)


def grid_list(v) -> list[tuple[int, int]]:
    """``(rows, cols)`` or a list of up to :data:`MAX_GRIDS` of them -> list of int pairs;
    ``ValueError`` naming ``chunks`` otherwise."""
    msg = (f"chunks must be a grid (rows, cols) of positive integers or 1 to {MAX_GRIDS} "
           f"of them, got {v!r}")
    try:
        v = list(v)
        if v and all(isinstance(x, (int, np.integer)) for x in v):
            v = [v]
        grids = [tuple(int(x) for x in g) if len(g) == 2 else () for g in v]
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if not 1 <= len(grids) <= MAX_GRIDS or any(len(g) != 2 or min(g) < 1 for g in grids):
        raise ValueError(f"chunks must be a grid (rows, cols) of positive integers or 1 to "
                         f"{MAX_GRIDS} of them, got {v}")
    return grids


class BudgetUnfit(BudgetError):
    """No candidate grid can spend [BUDGET_FLOOR, 1] x the budget: ``needed`` is the
    smallest budget that works, ``usable`` the most any grid can spend."""

    def __init__(self, msg: str, needed: int, usable: int):
        super().__init__(msg)
        self.needed, self.usable = needed, usable

    def explain(self, head: str, budget: int, more: str, less: str) -> str:
        """One line for a user: ``head`` (what the budget is), why it does not fit, and
        ``more`` / ``less``: the setting that would (for too small / too large)."""
        if budget < self.needed:
            return (f"{head} but the power scale and one analog symbol alone need "
                    f"{self.needed} ({more} would)")
        return f"{head} but sending every coefficient spends at most {self.usable} ({less} would)"


# -- lambda quantisation -----------------------------------------------------
def code_range(step: float = LAMBDA_STEP) -> tuple[int, int]:
    """(zero code, top code) of the lambda codes at ``step`` (log2 units per code)."""
    return math.ceil(LOG2_LAMBDA_MIN / step) - 1, math.floor(LOG2_LAMBDA_MAX / step)


def quantize_lambda(lam: np.ndarray, step: float = LAMBDA_STEP) -> np.ndarray:
    """lambda >= 0 -> int code ``round(log2 lambda / step)``, clipped to
    :func:`code_range` (the zero code for lambda below ``2^LOG2_LAMBDA_MIN``)."""
    zero, top = code_range(step)
    lam = np.asarray(lam, dtype=np.float64)
    with np.errstate(divide="ignore"):
        q = np.rint(np.log2(lam) / step)
    q = np.clip(np.nan_to_num(q, neginf=zero), zero, top)
    return np.where(lam < 2.0 ** LOG2_LAMBDA_MIN, zero, np.maximum(q, zero + 1)).astype(np.int64)


def dequantize_lambda(code: np.ndarray, step: float = LAMBDA_STEP) -> np.ndarray:
    """Code -> lambda (0 for the zero code and below)."""
    code = np.asarray(code, dtype=np.int64)
    return np.where(code <= code_range(step)[0], 0.0, np.exp2(code * step))


def gains(lam: np.ndarray) -> np.ndarray:
    """Power allocation ``lambda^(-1/4)`` (0 for lambda <= 0)."""
    lam = np.asarray(lam, dtype=np.float64)
    return np.where(lam > 0, np.maximum(lam, 1e-300) ** -0.25, 0.0)


def llse(y: np.ndarray, noise_var: np.ndarray, lam: float) -> np.ndarray:
    """LLSE estimate of a chunk sent as ``g x`` and received as ``y`` (ZF-equalised)."""
    g = float(gains(np.array([lam]))[0])
    if g == 0:
        return np.zeros_like(y)
    return g * lam / (g * g * lam + noise_var) * y


# -- Exp-Golomb ---------------------------------------------------------------
def _zigzag(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    return np.where(v > 0, 2 * v - 1, -2 * v)


def _unzigzag(u: int) -> int:
    return (u + 1) // 2 if u & 1 else -(u // 2)


def eg_lengths(v: np.ndarray, k: int) -> np.ndarray:
    """Bits of the order-``k`` Exp-Golomb codes of ``v >= 0`` (int array)."""
    x = np.asarray(v, dtype=np.int64) + (1 << k)
    return 2 * _bit_length(x) - 1 - k


def _bit_length(x: np.ndarray) -> np.ndarray:
    return np.floor(np.log2(np.maximum(x, 1))).astype(np.int64) + 1


def best_order(v: np.ndarray) -> tuple[int, int]:
    """(order, total bits) of the cheapest Exp-Golomb order for the values ``v``."""
    costs = [int(eg_lengths(v, k).sum()) for k in range(1 << ORDER_BITS)]
    k = int(np.argmin(costs))
    return k, costs[k]


class BitWriter:
    def __init__(self):
        self.bits: list[int] = []

    def uint(self, value: int, width: int) -> None:
        self.bits += [(value >> (width - 1 - b)) & 1 for b in range(width)]

    def eg(self, value: int, k: int) -> None:
        x = value + (1 << k)
        n = x.bit_length()
        self.bits += [0] * (n - 1 - k)
        self.uint(x, n)

    def seg(self, value: int, k: int) -> None:
        self.eg(int(_zigzag(np.array(value))), k)

    def array(self) -> np.ndarray:
        return np.array(self.bits, dtype=np.uint8)


class BitReader:
    """Reads fields; past the end (or a runaway prefix) ``ok`` turns False and
    every later read returns 0."""

    def __init__(self, bits: np.ndarray):
        self.bits, self.pos, self.ok = np.asarray(bits, dtype=np.uint8).reshape(-1), 0, True

    def uint(self, width: int) -> int:
        if not self.ok or self.pos + width > len(self.bits):
            self.ok = False
            return 0
        out = 0
        for b in self.bits[self.pos:self.pos + width]:
            out = (out << 1) | int(b)
        self.pos += width
        return out

    def eg(self, k: int) -> int:
        zeros = 0
        while self.ok and self.pos < len(self.bits) and self.bits[self.pos] == 0:
            zeros += 1
            self.pos += 1
            if zeros > EG_MAX_PREFIX:
                self.ok = False
        if not self.ok or self.pos >= len(self.bits):
            self.ok = False
            return 0
        return self.uint(zeros + 1 + k) - (1 << k)

    def seg(self, k: int) -> int:
        return _unzigzag(self.eg(k))


# -- geometry -----------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """One chunk grid over ``[H, W]`` slices: row / col boundaries ``[R+1]``, ``[C+1]``."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def grid(cls, h: int, w: int, grid: tuple[int, int]) -> "Layout":
        r = np.linspace(0, h, min(grid[0], h) + 1).astype(int)
        c = np.linspace(0, w, min(grid[1], w) + 1).astype(int)
        return cls(tuple(int(x) for x in r), tuple(int(x) for x in c))

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows) - 1, len(self.cols) - 1

    @property
    def sizes(self) -> np.ndarray:
        """[R, C] int: coefficients per chunk."""
        return np.outer(np.diff(self.rows), np.diff(self.cols))

    def energy(self, coef: np.ndarray) -> np.ndarray:
        """``coef`` [T, H, W] -> sum of squares per chunk [T, R, C]."""
        sq = np.add.reduceat(coef * coef, np.array(self.rows[:-1]), axis=1)
        return np.add.reduceat(sq, np.array(self.cols[:-1]), axis=2)

    def scan(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Absolute (row, col) indices of chunk (i, j), low frequency first."""
        h, w = self.rows[i + 1] - self.rows[i], self.cols[j + 1] - self.cols[j]
        r, c = np.divmod(np.arange(h * w), w)
        o = np.lexsort((r, r + c))
        return r[o] + self.rows[i], c[o] + self.cols[j]


# -- planning -----------------------------------------------------------------
@dataclass
class Plan:
    """What the transmitter sends and what it costs.

    ``bits``: uint8 metadata; ``values``: float64 analog values, already scaled,
    only when planned from sets in memory (:meth:`LinearCoder.plan`; None from
    :meth:`LinearCoder.plan_stream`: gather them with :class:`SentMap`);
    ``grid``: the chunk grid used (None: the no-metadata plan); ``chunks`` [K, 4]
    int: the kept chunks (set, slice, row, col) in analog order, the last one
    ``partial_values`` coefficients long; ``analog_uses`` / ``meta_uses``: channel
    uses of the analog pipe (power scales included) and of the metadata;
    ``expected_sse`` [S]: expected squared error per set at the design SNR (AWGN,
    coefficient domain, the metadata assumed intact); ``num_values``: analog
    values sent; ``dc`` [S]: the mean codes; ``positions`` [V, 4]: the
    no-metadata plan's coefficients (set, t, r, c) in analog order (at most
    :data:`BARE_MAX_VALUES`); ``carries``: some analog value is non-zero;
    ``chunk_codes`` [K]: the lambda codes of ``chunks``."""

    bits: np.ndarray
    values: np.ndarray | None
    grid: tuple[int, int] | None
    chunks: np.ndarray
    partial_values: int
    analog_uses: int
    meta_uses: int
    expected_sse: np.ndarray
    num_values: int = 0
    dc: np.ndarray | None = None
    positions: np.ndarray | None = None
    carries: bool = True
    chunk_codes: np.ndarray | None = None

    @property
    def kept(self) -> int:
        return len(self.chunks)

    @property
    def channel_uses(self) -> int:
        return self.analog_uses + self.meta_uses


@dataclass
class _GridState:
    """Per-candidate precomputation: layout, chunk lambdas / codes, greedy order."""

    layout: Layout
    lam: np.ndarray      # [S, Tmax, R, C] mean squares (0 beyond a set's slices)
    q: np.ndarray        # [S, Tmax, R, C] lambda codes
    resid: np.ndarray    # [S, Tmax, R, C] q - spatial prediction (unused at (0, 0))
    order: np.ndarray    # [K_max, 4] greedy order (s, t, i, j)
    cum: np.ndarray      # [K_max + 1] coefficients in the first K chunks


class LinearCoder:
    """Plans, encodes and decodes coefficient sets (see the module docstring).

    :param grids: candidate chunk grids (rows, cols) per DCT slice, 1 to 4 (see
        :func:`grid_list`).
    :param analog: the analog pipe the values go through (its side info is charged).
    :param digital: the digital pipe the metadata goes through.
    :param design_snr_db: Es/N0 (dB, AWGN) at which the grid is chosen.
    :param lambda_step: log2 lambda per code (both ends must agree).
    :param segment_values: None (default): the analog values go through the pipe
        in one call (one power scale); an even ``S``: in consecutive segments of
        at most ``S`` values, one call (one power scale, its side info charged)
        each -- the budget fitting counts one scale per segment.
    """

    def __init__(self, grids, analog: AnalogPipe, digital: DigitalPipe,
                 design_snr_db: float = 5.0, lambda_step: float = LAMBDA_STEP,
                 segment_values: int | None = None):
        grids = grid_list(grids)
        if not math.isfinite(design_snr_db):
            raise ValueError(f"design_snr_db must be finite, got {design_snr_db}")
        if not 0 < lambda_step <= 8:
            raise ValueError(f"lambda_step must be in (0, 8], got {lambda_step}")
        if segment_values is not None and (segment_values < 2 or segment_values % 2):
            raise ValueError(f"segment_values must be an even number >= 2, got {segment_values}")
        self.grids, self.analog, self.digital = grids, analog, digital
        self.design_no = snr_db_to_no(design_snr_db)
        self.step = float(lambda_step)
        self.segment_values = segment_values

    # -- analog segments --------------------------------------------------------
    def segments(self, num_values: int) -> list[tuple[int, int]]:
        """The analog pipe calls: [start, end) value ranges."""
        s = self.segment_values or max(num_values, 1)
        return [(a, min(a + s, num_values)) for a in range(0, num_values, s)]

    def analog_uses(self, num_values: int) -> int:
        """Channel uses of ``num_values`` analog values, one power scale per segment."""
        return sum(self.analog.symbols_for(b - a) for a, b in self.segments(num_values))

    def _values_fit(self, uses: int) -> int:
        """The most analog values whose :meth:`analog_uses` fit ``uses`` (<= 0: none)."""
        side = self.analog.symbols_for(2) - 1
        v, s = 2 * (uses - side), self.segment_values
        if s is None or v <= s:
            return v
        n = max(1, 2 * uses // (s + 2 * side))  # most full segments that fit
        return max(n * s, 2 * (uses - side * (n + 1)))

    # -- transmitter ----------------------------------------------------------
    def plan(self, sets: list[np.ndarray], budget_uses: int,
             weights: np.ndarray | None = None) -> Plan:
        """``sets``: coefficient arrays [T_s, H, W] float64 (orthonormal DCT, DC
        included; all of one H, W); ``budget_uses``: complex channel uses,
        everything included; ``weights`` [S]: distortion weight of each set when
        the grid is chosen (default 1; e.g. a plane's weight in RGB MSE).
        Raises :class:`BudgetUnfit` when no grid spends [BUDGET_FLOOR, 1] x it.
        The plan carries its analog ``values`` (see :meth:`plan_stream`)."""
        sets = [np.asarray(s, dtype=np.float64) for s in sets]
        shapes = [s.shape for s in sets]
        plan = self.plan_stream(lambda: (s.copy() for s in sets), shapes, budget_uses, weights)
        sent = SentMap(self, plan, shapes)
        plan.values = np.zeros(plan.num_values)
        for n, s in enumerate(sets):
            sent.gather(n, s, 0, plan.num_values, plan.values)
        return plan

    def plan_stream(self, read_sets, shapes: list[tuple[int, int, int]], budget_uses: int,
                    weights: np.ndarray | None = None) -> Plan:
        """:meth:`plan` from statistics: ``read_sets()`` yields the sets in order
        (fresh float64 arrays, one at a time; it may be modified) and is called
        twice: once for the statistics (means, energies, chunk lambdas of every
        candidate grid, the no-metadata candidate's few coefficients), once for
        the energies of the chunks each candidate keeps. Holds the statistics
        (a few numbers per chunk of every grid), never the sets; the plan holds
        no values (``values`` None). Same decisions, bit for bit, as from the
        sets in memory."""
        n_sets = len(shapes)
        w = np.ones(n_sets) if weights is None else np.asarray(weights, dtype=np.float64)
        h, wd = shapes[0][1:]
        lays = [Layout.grid(h, wd, g) for g in self.grids]
        t_max = max(sh[0] for sh in shapes)
        lams = [np.zeros((n_sets, t_max, *lay.shape)) for lay in lays]
        bare_v = self._bare_values(shapes, budget_uses)
        pos = _bare_positions(shapes, bare_v) if bare_v else None
        bare_x = np.empty(bare_v) if bare_v else None
        dc = np.zeros(n_sets, np.int64)
        energy, resid_energy = np.zeros(n_sets), np.zeros(n_sets)
        for n, s in enumerate(read_sets()):  # pass 1: statistics
            energy[n] = float(np.sum(s * s))
            if bare_v:
                m = pos[:, 0] == n
                bare_x[m] = s[pos[m, 1], pos[m, 2], pos[m, 3]]
            dc[n] = self._dc_codes([s])[0]
            s[0, 0, 0] -= dc[n] * DC_STEP * math.sqrt(s.size)
            resid_energy[n] = float(np.sum(s * s))
            for lam, lay in zip(lams, lays):
                lam[n, :s.shape[0]] = lay.energy(s) / lay.sizes
        best, usable = None, 0
        if bare_v:
            best = self._bare(pos, bare_x, energy, dc)
        cost = math.inf if best is None else float(w @ best.expected_sse)
        slices = [sh[0] for sh in shapes]
        cands = []
        for g, (lay, lam) in enumerate(zip(lays, lams)):
            st = self._grid_state(lay, lam, slices, budget_uses)
            lo, hi = self._range(st, n_sets)
            usable = max(usable, hi)
            k = self._fit(st, n_sets, budget_uses) if lo <= budget_uses else None
            if k is not None:
                cands.append(self._candidate(st, dc, g, k, budget_uses))
        del lams
        if cands:  # pass 2: the energies of the kept chunks, as sent
            for n, s in enumerate(read_sets()):
                s[0, 0, 0] -= dc[n] * DC_STEP * math.sqrt(s.size)
                for c in cands:
                    c.measure(n, s)
        for c in cands:
            cand = c.plan(self, resid_energy, shapes)
            if float(w @ cand.expected_sse) < cost:
                best, cost = cand, float(w @ cand.expected_sse)
        if best is None:
            needed = self.analog.symbols_for(1)
            raise BudgetUnfit(f"{budget_uses} channel uses cannot be spent to within "
                              f"[{BUDGET_FLOOR}, 1] x: the power scale and one analog symbol "
                              f"need {needed}, sending every coefficient spends at most "
                              f"{usable}", needed, usable)
        return best

    def _bare_values(self, shapes, budget_uses) -> int:
        """Values of the no-metadata plan, 0 when it is not a candidate (too few uses,
        or more than :data:`BARE_MAX_VALUES` values)."""
        total = sum(math.prod(sh) for sh in shapes)
        v = min(self._values_fit(budget_uses), total)
        if v < 1 or v > BARE_MAX_VALUES or self.analog_uses(v) < BUDGET_FLOOR * budget_uses:
            return 0
        return v

    def _bare(self, pos, x, energy, dc) -> Plan:
        """The no-metadata plan: the lowest-frequency coefficients ``x`` at ``pos``, unit gain."""
        v = len(x)
        var = self.design_no * float(np.sum(x * x)) / v
        sse = energy.copy()
        np.add.at(sse, pos[:, 0], var - x * x)
        return Plan(np.zeros(0, np.uint8), None, None, np.zeros((0, 4), np.int64), 0,
                    self.analog_uses(v), 0, sse, num_values=v, dc=dc, positions=pos,
                    carries=bool(np.any(x)))

    @staticmethod
    def _dc_codes(sets) -> np.ndarray:
        lim = 1 << (DC_BITS - 1)
        means = np.array([s[0, 0, 0] / math.sqrt(s.size) for s in sets])
        return np.clip(np.rint(means / DC_STEP), -lim, lim - 1).astype(np.int64)

    def _grid_state(self, lay, lam, slices, budget_uses) -> _GridState:
        q = quantize_lambda(lam, self.step)
        limit = 2 * max(budget_uses, 1)  # never more values than that
        order = _greedy(lam, slices, lay.sizes, limit)
        sizes = lay.sizes[order[:, 2], order[:, 3]] if len(order) else np.zeros(0, int)
        cum = np.concatenate([[0], np.cumsum(sizes)])
        return _GridState(lay, lam, q, _spatial_residuals(q), order, cum)

    def _meta_bits(self, st: _GridState, n_sets: int, k: int) -> int:
        """Exact metadata length (bits) with the first ``k`` greedy chunks kept."""
        f = _fields(st, k)
        return (GRID_BITS + n_sets * DC_BITS + 2 * ORDER_BITS + int(eg_lengths(f.lens, 0).sum())
                + best_order(f.row_values)[1] + _partial_bits(k) + best_order(f.lam_values)[1])

    def _values_for(self, meta_bits: int, budget_uses: int) -> int:
        """Analog values that fit beside ``meta_bits`` of metadata (<= 0: none)."""
        return self._values_fit(budget_uses - self.digital.channel_uses(meta_bits))

    def _spent(self, st, n_sets, k, budget_uses) -> int:
        """Channel uses spent keeping ``k`` chunks (the last one partial as needed);
        0 when the first ``k - 1`` chunks alone do not fit."""
        bits = self._meta_bits(st, n_sets, k)
        v = self._values_for(bits, budget_uses)
        if v <= st.cum[k - 1]:
            return 0
        return self.digital.channel_uses(bits) + self.analog_uses(min(v, int(st.cum[k])))

    def _range(self, st, n_sets) -> tuple[int, int]:
        """(smallest budget this grid can meet exactly, most it can spend; the
        latter is at least the budget when the greedy order was cut by it)."""
        if len(st.order) == 0:
            return 1 << 62, 0
        lo = self.digital.channel_uses(self._meta_bits(st, n_sets, 1)) + self.analog.symbols_for(1)
        hi = (self.digital.channel_uses(self._meta_bits(st, n_sets, len(st.order)))
              + self.analog_uses(int(st.cum[-1])))
        return lo, hi

    def _fit(self, st, n_sets, budget_uses) -> int | None:
        """Kept-chunk count that spends the most uses <= ``budget_uses``, or None
        when that is below ``BUDGET_FLOOR x budget_uses``."""
        lo, hi = 1, len(st.order)
        while lo < hi:  # largest k whose first k - 1 chunks fit (metadata grows with k)
            mid = (lo + hi + 1) // 2
            if self._values_for(self._meta_bits(st, n_sets, mid), budget_uses) > st.cum[mid - 1]:
                lo = mid
            else:
                hi = mid - 1
        best_k, best = None, 0
        for k in range(max(1, lo - 2), min(len(st.order), lo + 2) + 1):
            spent = self._spent(st, n_sets, k, budget_uses)
            if spent > best:
                best_k, best = k, spent
        return best_k if best >= BUDGET_FLOOR * budget_uses else None

    def _candidate(self, st, dc, g, k, budget_uses) -> "_Candidate":
        bits = self._encode(st, len(dc), dc, g, k)
        v = min(self._values_for(len(bits), budget_uses), int(st.cum[k]))
        scan = _scan_order(st.order[:k])
        partial = _partial_position(scan, st.order[k - 1])
        tx = np.concatenate([np.delete(scan, partial, axis=0), scan[partial:partial + 1]])
        lam_hat = dequantize_lambda(st.q[tx[:, 0], tx[:, 1], tx[:, 2], tx[:, 3]], self.step)
        codes = st.q[tx[:, 0], tx[:, 1], tx[:, 2], tx[:, 3]]
        return _Candidate(st.layout, g, bits, tx, lam_hat, codes, v, dc)

    def _encode(self, st, n_sets, dc, g, k) -> np.ndarray:
        """The metadata bits (format in the module docstring)."""
        f = _fields(st, k)
        kr, kl = best_order(f.row_values)[0], best_order(f.lam_values)[0]
        w = BitWriter()
        w.uint(g, GRID_BITS)
        for code in dc:
            w.uint(int(code) & ((1 << DC_BITS) - 1), DC_BITS)
        w.uint(kr, ORDER_BITS)
        w.uint(kl, ORDER_BITS)
        for s in range(n_sets):
            _write_staircase(w, f.counts[s, :f.lens[s]], kr)
        scan = _scan_order(st.order[:k])
        w.uint(_partial_position(scan, st.order[k - 1]), _partial_bits(k))
        prev_first = 0
        for s, t, i, j in scan:
            if i == 0 and j == 0:
                w.seg(int(st.q[s, t, 0, 0]) - prev_first, kl)
                prev_first = int(st.q[s, t, 0, 0])
            else:
                w.seg(int(st.resid[s, t, i, j]), kl)
        return w.array()

    # -- receiver -------------------------------------------------------------
    def decode(self, bits: np.ndarray, shapes: list[tuple[int, int, int]], y: np.ndarray,
               noise_var: np.ndarray) -> list[np.ndarray]:
        """Rebuild the coefficient sets (all at once; :class:`Receiver` does it set by set).

        :input bits: the received metadata (uint8, errors included).
        :input shapes: ``[T_s, H, W]`` of every set (known to the receiver).
        :input y: the analog values that arrived (float64 [V], ZF-equalised).
        :input noise_var: their noise variances (float64 [V]).
        :output: float64 arrays of ``shapes``; never raises on corrupted bits.
        """
        rx = self.receiver(bits, shapes, len(y))
        return [rx.rebuild(n, lambda lo, hi: (y[lo:hi], noise_var[lo:hi]))
                for n in range(len(shapes))]

    def receiver(self, bits: np.ndarray, shapes, num_values: int) -> "Receiver":
        """The metadata parsed once, for rebuilding the sets one by one."""
        return Receiver(self, np.asarray(bits, dtype=np.uint8), shapes, num_values)


class SentMap:
    """Where every set's analog values sit in the sent sequence of ``plan`` (the
    transmitter's side: values can be gathered set by set, for any range)."""

    def __init__(self, coder: "LinearCoder", plan: Plan, shapes):
        self.plan, self.shapes = plan, list(shapes)
        v = plan.num_values
        self.spans: list[list[tuple[int, int]]] = [[] for _ in self.shapes]
        if plan.grid is None:
            pos = plan.positions
            self.index = [np.nonzero(pos[:, 0] == n)[0] for n in range(len(self.shapes))]
            for n, idx in enumerate(self.index):
                if len(idx):
                    self.spans[n].append((int(idx[0]), int(idx[-1]) + 1))
            return
        h, w = self.shapes[0][1:]
        self.layout = Layout.grid(h, w, plan.grid)
        tx = plan.chunks
        self.gains = gains(dequantize_lambda(plan.chunk_codes, coder.step))
        sizes = self.layout.sizes[tx[:, 2], tx[:, 3]]
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.take = np.clip(v - self.starts, 0, sizes)
        self.by_set: dict = {}
        for m, s in enumerate(tx[:, 0]):
            self.by_set.setdefault(int(s), []).append(m)
        for n, ms in self.by_set.items():
            main = [m for m in ms if m != len(tx) - 1]
            if main:
                self.spans[n].append((int(self.starts[main[0]]),
                                      int(self.starts[main[-1]] + self.take[main[-1]])))
            if ms[-1] == len(tx) - 1:
                self.spans[n].append((int(self.starts[-1]), v))

    def gather(self, n: int, coef: np.ndarray, lo: int, hi: int, out: np.ndarray) -> None:
        """Write set ``n``'s sent values that fall in [lo, hi) to ``out[i - lo]``;
        ``coef``: its coefficients [T, H, W] float64, DC included (not modified)."""
        if self.plan.grid is None:
            pos, idx = self.plan.positions, self.index[n]
            idx = idx[(idx >= lo) & (idx < hi)]
            out[idx - lo] = coef[pos[idx, 1], pos[idx, 2], pos[idx, 3]]
            return
        for m in self.by_set.get(n, ()):
            start, take = int(self.starts[m]), int(self.take[m])
            a, b = max(lo, start), min(hi, start + take)
            if a >= b:
                continue
            _, t, i, j = self.plan.chunks[m]
            r, c = _chunk_scan(self.layout, int(i), int(j))
            x = coef[t, r, c][:take]
            if t == 0 and i == 0 and j == 0:  # the DC leads chunk (0, 0): its residual
                x[0] -= self.plan.dc[n] * DC_STEP * math.sqrt(coef.size)
            x = x * self.gains[m]
            out[a - lo:b - lo] = x[a - start:b - start]


class Receiver:
    """The receiver's side: the metadata parsed once (never raises on corrupted
    bits), then each set rebuilt from its own received values.

    :input bits: the received metadata; :input shapes: ``[T_s, H, W]`` of every
    set; :input num_values: the analog values that arrived. ``spans[n]``: the
    [lo, hi) ranges of received values set ``n`` reads (its chunks, then, for the
    set of the partial chunk, the partial chunk's range near the end);
    ``early``: the range read out of order (the partial chunk's, or every value
    of the no-metadata plan), None when there is none."""

    def __init__(self, coder: "LinearCoder", bits: np.ndarray, shapes, num_values: int):
        self.shapes, self.v = list(shapes), int(num_values)
        self.spans: list[list[tuple[int, int]]] = [[] for _ in self.shapes]
        self.early = None
        if len(bits) == 0:  # the no-metadata plan: unit gain, so ZF as it arrived
            self.bare = True
            total = sum(math.prod(sh) for sh in self.shapes)
            self.pos = _bare_positions(self.shapes, min(self.v, total))
            if len(self.pos):
                self.early = (0, len(self.pos))
                for n in np.unique(self.pos[:, 0]):
                    self.spans[int(n)].append(self.early)
            return
        self.bare, self.step = False, coder.step
        rd = BitReader(bits)
        g = min(rd.uint(GRID_BITS), len(coder.grids) - 1)
        h, w = self.shapes[0][1:]
        self.layout = lay = Layout.grid(h, w, coder.grids[g])
        self.dc = [_signed(rd.uint(DC_BITS), DC_BITS) for _ in self.shapes]
        kr, kl = rd.uint(ORDER_BITS), rd.uint(ORDER_BITS)
        counts = [_read_staircase(rd, t_s, *lay.shape, kr) for t_s, _, _ in self.shapes]
        scan = [(s, t, i, j) for s, c in enumerate(counts) for t in range(c.shape[0])
                for i in range(c.shape[1]) for j in range(int(c[t, i]))]
        partial = min(rd.uint(_partial_bits(len(scan))), max(len(scan) - 1, 0))
        q = _read_codes(rd, scan, kl, code_range(self.step))
        tx = scan[:partial] + scan[partial + 1:] + scan[partial:partial + 1]
        self.chunks: list[list[tuple]] = [[] for _ in self.shapes]  # (t, i, j, code, pos, n)
        pos = 0
        for m, (s, t, i, j) in enumerate(tx):
            r, _ = _chunk_scan(lay, i, j)
            n = min(len(r), self.v - pos)
            if n <= 0:
                break
            self.chunks[s].append((t, i, j, q[(s, t, i, j)], pos, n))
            if m == len(tx) - 1:
                self.early = (pos, pos + n)
            pos += n
        for s, ch in enumerate(self.chunks):
            main = [c for c in ch if (c[4], c[4] + c[5]) != self.early]
            if main:
                self.spans[s].append((main[0][4], main[-1][4] + main[-1][5]))
            if len(main) < len(ch):
                self.spans[s].append(self.early)

    def rebuild(self, n: int, received) -> np.ndarray:
        """Set ``n`` [T, H, W] float64; ``received(lo, hi)`` -> (y, noise_var), the
        float64 received values [lo, hi) and their noise variances."""
        out = np.zeros(self.shapes[n])
        if self.bare:
            if self.spans[n]:
                y, _ = received(*self.early)
                m = self.pos[:, 0] == n
                out[self.pos[m, 1], self.pos[m, 2], self.pos[m, 3]] = y[:len(self.pos)][m]
            return out
        got = [(a, b, *received(a, b)) for a, b in self.spans[n]]
        for t, i, j, code, pos, k in self.chunks[n]:
            a, _, ys, vs = next(x for x in got if x[0] <= pos and pos + k <= x[1])
            y, var = ys[pos - a:pos - a + k], vs[pos - a:pos - a + k]
            r, c = _chunk_scan(self.layout, i, j)
            out[t, r[:k], c[:k]] = llse(y, var, float(dequantize_lambda(code, self.step)))
        out[0, 0, 0] += self.dc[n] * DC_STEP * math.sqrt(out.size)
        return out


class _Candidate:
    """A grid's plan before the energies of its kept chunks are known (they are
    measured set by set, :meth:`measure`, exactly as :meth:`LinearCoder.plan`
    gathers them: each chunk's coefficients in scan order, the last one cut)."""

    def __init__(self, layout, g, bits, tx, lam_hat, codes, v, dc):
        self.layout, self.g, self.bits, self.tx, self.v = layout, g, bits, tx, v
        self.lam_hat, self.codes, self.dc = lam_hat, codes, dc
        self.energy = np.zeros(len(tx))
        self.counts = np.zeros(len(tx))
        self.carries = False
        sizes = layout.sizes[tx[:, 2], tx[:, 3]]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.take = np.clip(v - starts, 0, sizes)  # values sent of each chunk
        self.by_set = {}
        for n, s in enumerate(tx[:, 0]):
            self.by_set.setdefault(int(s), []).append(n)

    def measure(self, n: int, resid: np.ndarray) -> None:
        g = gains(self.lam_hat)
        for m in self.by_set.get(n, ()):
            _, t, i, j = self.tx[m]
            r, c = _chunk_scan(self.layout, int(i), int(j))
            x = resid[t, r, c][:int(self.take[m])]
            self.counts[m] = len(x)
            self.energy[m] = float(np.sum(x * x))
            self.carries = self.carries or bool(np.any(x * g[m]))

    def plan(self, coder, resid_energy, shapes) -> Plan:
        lam_true = np.divide(self.energy, self.counts, out=np.zeros(len(self.counts)),
                             where=self.counts > 0)
        err = _llse_mse(lam_true, self.lam_hat, self.counts, coder.design_no) - self.energy
        sse = resid_energy.copy()
        np.add.at(sse, self.tx[:, 0], err)
        return Plan(self.bits, None, coder.grids[self.g], self.tx, int(self.counts[-1]),
                    coder.analog_uses(self.v), coder.digital.channel_uses(len(self.bits)), sse,
                    num_values=self.v, dc=self.dc, carries=self.carries,
                    chunk_codes=self.codes)


# -- helpers ------------------------------------------------------------------
def _signed(u: int, width: int) -> int:
    return u - (1 << width) if u >= 1 << (width - 1) else u


def _bare_positions(shapes, v: int) -> np.ndarray:
    """The first ``v`` coefficients of the no-metadata plan, [v, 4] (set, t, r, c):
    round robin over the sets, each in 3-D zigzag order (t + r + c, then t, r, c)."""
    sizes = [math.prod(sh) for sh in shapes]
    lo, hi = 0, max(sizes, default=0)  # r: fewest ranks per set whose round robin holds v
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if sum(min(n, mid) for n in sizes) >= v else (mid + 1, hi)
    ranked = []
    for s, shape in enumerate(shapes):
        m = min(v, sizes[s], lo)  # the first v in (rank, set) order all rank below lo
        d = 1
        while True:  # smallest box of diagonals t + r + c < d holding m coefficients
            box = np.indices([min(d, n) for n in shape]).reshape(3, -1)
            keep = box[:, box.sum(axis=0) < d]
            if keep.shape[1] >= m or d > sum(shape):
                break
            d *= 2
        t, r, c = keep
        o = np.lexsort((c, r, t, t + r + c))[:m]
        ranked.append(np.stack([np.arange(m), np.full(m, s), t[o], r[o], c[o]], axis=1))
    allpos = np.concatenate(ranked)
    return allpos[np.lexsort((allpos[:, 1], allpos[:, 0]))][:v, 1:]


def _partial_bits(k: int) -> int:
    return max(0, math.ceil(math.log2(k))) if k > 1 else 0


def _greedy(lam: np.ndarray, slices: list[int], sizes: np.ndarray, limit: int) -> np.ndarray:
    """Chunks in the order the staircases grow: always the frontier chunk of
    largest lambda (ties: lowest (s, t, i, j)), until ``limit`` coefficients.
    Returns [K, 4] int (s, t, i, j)."""
    n_sets, _, rr, cc = lam.shape
    kept = np.zeros(lam.shape, dtype=bool)
    heap = [(-lam[s, t, 0, 0], s, t, 0, 0) for s in range(n_sets) for t in range(slices[s])]
    heapq.heapify(heap)
    out, total = [], 0
    while heap and total < limit:
        _, s, t, i, j = heapq.heappop(heap)
        kept[s, t, i, j] = True
        out.append((s, t, i, j))
        total += int(sizes[i, j])
        if i + 1 < rr and (j == 0 or kept[s, t, i + 1, j - 1]):
            heapq.heappush(heap, (-lam[s, t, i + 1, j], s, t, i + 1, j))
        if j + 1 < cc and (i == 0 or kept[s, t, i - 1, j + 1]):
            heapq.heappush(heap, (-lam[s, t, i, j + 1], s, t, i, j + 1))
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def _row_counts(st: _GridState, k: int) -> np.ndarray:
    """[S, Tmax, R] kept chunks per row with the first ``k`` greedy chunks kept."""
    counts = np.zeros(st.lam.shape[:3], dtype=np.int64)
    o = st.order[:k]
    np.add.at(counts, (o[:, 0], o[:, 1], o[:, 2]), 1)
    return counts


@dataclass
class _Fields:
    """What the metadata holds with the first k greedy chunks kept: row counts
    [S, Tmax, R], coded slices L_s [S], the staircase values (row-0 differences
    zigzagged, row decrements) and the lambda residuals (zigzagged), each in
    any order (only their Exp-Golomb lengths are summed from these)."""

    counts: np.ndarray
    lens: np.ndarray
    row_values: np.ndarray
    lam_values: np.ndarray


def _fields(st: _GridState, k: int) -> _Fields:
    counts = _row_counts(st, k)
    n_sets, t_max, rr = counts.shape
    nonempty = counts[:, :, 0] > 0
    lens = np.where(nonempty.any(axis=1), t_max - np.argmax(nonempty[:, ::-1], axis=1), 0)
    coded = np.arange(t_max)[None, :] < lens[:, None]                          # [S, T]
    prev0 = np.concatenate([np.zeros((n_sets, 1), np.int64), counts[:, :-1, 0]], axis=1)
    c0 = (counts[:, :, 0] - prev0)[coded]
    rows = coded[:, :, None] & (counts[:, :, :-1] > 0)                          # rows 1..R-1
    d = (counts[:, :, :-1] - counts[:, :, 1:])[rows]
    kept = np.arange(st.q.shape[3])[None, None, None, :] < counts[..., None]   # [S, T, R, C]
    firsts = st.q[:, :, 0, 0][nonempty]                                         # scan order
    kept[:, :, 0, 0] = False
    lam = np.concatenate([_zigzag(np.diff(np.concatenate([[0], firsts]))),
                          _zigzag(st.resid[kept])])
    return _Fields(counts, lens, np.concatenate([_zigzag(c0), d]), lam)


def _write_staircase(w: BitWriter, counts: np.ndarray, kr: int) -> None:
    """One set's coded slices (``counts`` [L_s, R])."""
    w.eg(len(counts), 0)
    prev = 0
    for row in counts:
        w.seg(int(row[0]) - prev, kr)
        prev = int(row[0])
        for i in range(1, len(row)):
            if row[i - 1] == 0:
                break
            w.eg(int(row[i - 1] - row[i]), kr)


def _scan_order(order: np.ndarray) -> np.ndarray:
    """Kept chunks [K, 4] sorted by (set, slice, row, col)."""
    return order[np.lexsort((order[:, 3], order[:, 2], order[:, 1], order[:, 0]))]


def _partial_position(scan: np.ndarray, chunk: np.ndarray) -> int:
    return int(np.nonzero((scan == chunk).all(axis=1))[0][0])


@lru_cache(maxsize=4096)
def _chunk_scan(layout: Layout, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    return layout.scan(i, j)


def _spatial_residuals(q: np.ndarray) -> np.ndarray:
    """q - LOCO-I prediction from the left / up / up-left chunks of the same slice."""
    a = np.roll(q, 1, axis=3)
    b = np.roll(q, 1, axis=2)
    c = np.roll(b, 1, axis=3)
    pred = np.median(np.stack([a, b, a + b - c]), axis=0).astype(np.int64)
    pred[:, :, 0, :] = a[:, :, 0, :]
    pred[:, :, :, 0] = b[:, :, :, 0]
    pred[:, :, 0, 0] = 0
    return q - pred


def _read_staircase(rd: BitReader, t_s: int, rr: int, cc: int, kr: int) -> np.ndarray:
    counts = np.zeros((t_s, rr), dtype=np.int64)
    n = min(rd.eg(0), t_s)
    prev = 0
    for t in range(n):
        if not rd.ok:
            break
        counts[t, 0] = prev = int(np.clip(prev + rd.seg(kr), 0, cc))
        for i in range(1, rr):
            if counts[t, i - 1] == 0 or not rd.ok:
                break
            counts[t, i] = max(0, counts[t, i - 1] - rd.eg(kr))
    return counts


def _read_codes(rd: BitReader, scan, kl: int, codes: tuple[int, int]) -> dict:
    """Lambda codes of the kept chunks, clipped to ``codes`` (zero, top); the zero
    code once the metadata has ended."""
    q: dict = {}
    prev_first = 0
    for s, t, i, j in scan:
        if i == 0 and j == 0:
            v = prev_first + rd.seg(kl)
        else:
            a, b = q.get((s, t, i, j - 1)), q.get((s, t, i - 1, j))
            if a is not None and b is not None:
                c = q[(s, t, i - 1, j - 1)]
                pred = int(np.median([a, b, a + b - c]))
            else:
                pred = a if a is not None else b
            v = pred + rd.seg(kl)
        v = int(np.clip(v, *codes))
        if i == 0 and j == 0:
            prev_first = v
        q[(s, t, i, j)] = v if rd.ok else codes[0]
    return q


def _llse_mse(lam_true, lam_hat, n, no) -> np.ndarray:
    """Expected squared error (sum per chunk) of LLSE over the sent chunks on AWGN.

    Chunk ``i`` (``n_i`` values of mean square ``lam_true_i``) is sent as
    ``g_i x`` with ``g_i = lam_hat_i^(-1/4)``; the pipe's unit power makes the
    noise variance per value ``no P / N`` (``P`` the sent energy, ``N`` the
    values); the estimate ``w y`` errs by ``(1 - w g)^2 lam + w^2 var``.
    """
    g = gains(lam_hat)
    p, nv = float(np.sum(n * g * g * lam_true)), float(np.sum(n))
    var = no * p / max(nv, 1.0)
    den = g * g * lam_hat + var
    w = np.divide(g * lam_hat, den, out=np.zeros_like(den), where=den > 0)
    return n * ((1 - w * g) ** 2 * lam_true + w * w * var)
