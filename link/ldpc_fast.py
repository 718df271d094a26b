"""A compiled CPU decoder for 5G NR LDPC (numba), next to Sionna's PyTorch one.

Same rate recovery as Sionna's :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder`
(38.212 bit de-interleaving, the two punctured systematic columns, known
filler bits, the pruned degree-1 parity nodes), so a codeword and its
channel uses are those of Sionna's encoder; only belief propagation runs in
compiled loops:

- ``schedule``: ``flooding`` (every check node from the previous iteration's
  messages, as Sionna) or ``layered`` (check nodes one after the other, each
  seeing the updates of those before it: converges in about half the
  iterations);
- ``cn_update``: ``sum-product`` (exact boxplus through ``phi``, with Sionna's
  float32 clamping of phi's argument and message clipping; exp and log are Cephes'
  single-precision ones, about 1 ulp, computed on whole rows so they vectorise),
  ``normalized-min-sum`` (``alpha * min``) or ``offset-min-sum``
  (``max(min - beta, 0)``);
- early termination: a codeword stops once its hard decisions satisfy every
  parity check (they are a codeword; further iterations rarely move them),
  and the number of iterations it took is kept (:attr:`last_iterations`).

Codewords are decoded in parallel (``prange``) on numba's threads, as many as
torch's (one per pool worker). The compiled code is cached on disk
(``cache=True``): the first process on a machine pays the compilation, later
ones load it; :func:`warm_up` does that ahead of a run.
"""

from __future__ import annotations

import os

import numba
import numpy as np
import torch
from numba import njit, prange

#: check-node rules of the fast decoder
CN_RULES = ("sum-product", "normalized-min-sum", "offset-min-sum")
SCHEDULES = ("flooding", "layered")
#: default factors, tuned on 5G LDPC (2048, 1024), QPSK, AWGN, 20 iterations, 4000
#: codewords at Es/N0 1.25 and 1.75 dB (BLER ~1e-1 and ~1e-2): the fewest block errors
#: over alpha in 0.65..0.9 step 0.05 and beta in 0.2..0.6 step 0.1 (beta 0.5 and 0.6
#: tie at 1.75 dB); normalized min-sum's alpha per schedule, offset min-sum's beta
DEFAULT_ALPHA = {"flooding": 0.75, "layered": 0.7}
DEFAULT_BETA = 0.5
#: Sionna's defaults: messages clipped to +-20, phi's argument to [8.5e-8, 16.635532]
LLR_MAX = 20.0

_RULE_ID = {r: i for i, r in enumerate(CN_RULES)}

_F = np.float32
_PHI_LO, _PHI_HI, _ONE, _ZERO, _INF = _F(8.5e-8), _F(16.635532), _F(1.0), _F(0.0), _F(np.inf)

# Cephes' single-precision exp and log (about 1 ulp), written on arrays so that LLVM
# vectorises them (numba's own exp/log call libm once per value)
_LOG2E, _LN2_HI, _LN2_LO = _F(1.44269504088896341), _F(0.693359375), _F(-2.12194440e-4)
_E = tuple(_F(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                           4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
_L = tuple(_F(c) for c in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
                           -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                           2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1))
_SQRTHF, _HALF = _F(0.707106781186547524), _F(0.5)

@njit(cache=True, inline="always")
def _phi_vec(x, xi, tmp, n):
    """x[:n] = phi(x[:n]) in place (``xi``: x viewed as int32, ``tmp``: scratch):
    exp(x) = p(f) 2^k, then log((e + 1) / (e - 1)) from its exponent and mantissa."""
    for r in range(n):
        t = min(max(x[r], _PHI_LO), _PHI_HI)
        k = np.floor(t * _LOG2E + _HALF)
        f = t - k * _LN2_HI - k * _LN2_LO
        p = _E[0] * f + _E[1]
        p = p * f + _E[2]
        p = p * f + _E[3]
        p = p * f + _E[4]
        p = p * f + _E[5]
        tmp[r] = p * f * f + f + _ONE
        xi[r] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for r in range(n):
        e = tmp[r] * x[r]
        x[r] = (e + _ONE) / (e - _ONE)
    for r in range(n):
        b = xi[r]
        tmp[r] = _F((b >> np.int32(23)) & np.int32(0xFF)) - _F(126.0)
        xi[r] = (b & np.int32(-2139095041)) | np.int32(0x3F000000)  # 0x807FFFFF
    for r in range(n):
        m = x[r]
        lo = m < _SQRTHF
        e = tmp[r] - (_ONE if lo else _ZERO)
        m = (m + m - _ONE) if lo else (m - _ONE)
        z = m * m
        y = _L[0] * m + _L[1]
        y = y * m + _L[2]
        y = y * m + _L[3]
        y = y * m + _L[4]
        y = y * m + _L[5]
        y = y * m + _L[6]
        y = y * m + _L[7]
        y = y * m + _L[8]
        y = y * m * z + _LN2_LO * e - _HALF * z
        x[r] = m + y + _LN2_HI * e

@njit(cache=True, inline="always")
def _gather(src, base, sh, z, dst):
    """dst[r] = src[base + (r + sh) % z]: the z VNs of one circulant, row order."""
    for r in range(z - sh):
        dst[r] = src[base + sh + r]
    for r in range(z - sh, z):
        dst[r] = src[base + r - z + sh]

@njit(cache=True, inline="always")
def _scatter(val, base, sh, z, dst, add):
    """dst[base + (r + sh) % z] (+)= val[r]."""
    if add:
        for r in range(z - sh):
            dst[base + sh + r] += val[r]
        for r in range(z - sh, z):
            dst[base + r - z + sh] += val[r]
    else:
        for r in range(z - sh):
            dst[base + sh + r] = val[r]
        for r in range(z - sh, z):
            dst[base + r - z + sh] = val[r]

@njit(cache=True, inline="always")
def _layer(v2c, out, outi, d, z, rule, alpha, beta, lmax, m1, m2, i1, par):
    """Extrinsic check-node update of the z rows of one block row at once:
    ``v2c`` [d, z] (clipped) -> ``out`` [d, z]."""
    for r in range(z):  # par: the product of the signs (+1 for a zero message)
        par[r] = _ONE
    for j in range(d):
        for r in range(z):
            par[r] = -par[r] if v2c[j, r] < _ZERO else par[r]
    if rule == 0:  # sum-product through phi; m1 holds the sum of phi
        for r in range(z):
            m1[r] = _ZERO
        for j in range(d):
            for r in range(z):
                out[j, r] = abs(v2c[j, r])
            _phi_vec(out[j], outi[j], m2, z)
            for r in range(z):
                m1[r] += out[j, r]
        for j in range(d):
            for r in range(z):
                out[j, r] = m1[r] - out[j, r]
            _phi_vec(out[j], outi[j], m2, z)
            for r in range(z):
                mag = min(out[j, r], lmax) * par[r]
                out[j, r] = -mag if v2c[j, r] < _ZERO else mag
        return
    for r in range(z):
        m1[r] = _INF
        m2[r] = _INF
        i1[r] = -1
    for j in range(d):
        for r in range(z):
            a = abs(v2c[j, r])
            m2[r] = min(m2[r], max(m1[r], a))
            i1[r] = j if a < m1[r] else i1[r]
            m1[r] = min(m1[r], a)
    for j in range(d):
        for r in range(z):
            mag = m2[r] if i1[r] == j else m1[r]
            if rule == 1:
                mag = alpha * mag
            else:
                mag = max(mag - beta, _ZERO)
            mag = min(mag, lmax) * par[r]
            out[j, r] = -mag if v2c[j, r] < _ZERO else mag

@njit(cache=True, inline="always")
def _parity_ok(total, lay_ptr, col, sh, z, active, bits, acc):
    """True when the hard decisions (bit 1 where the LLR is <= 0) satisfy every check."""
    for v in range(total.size):
        bits[v] = 1 if total[v] <= _ZERO else 0
    for lay in range(lay_ptr.size - 1):
        for r in range(z):
            acc[r] = 0
        for j in range(lay_ptr[lay], lay_ptr[lay + 1]):
            base = col[j] * z
            s = sh[j]
            for r in range(z - s):
                acc[r] ^= bits[base + s + r]
            for r in range(z - s, z):
                acc[r] ^= bits[base + r - z + s]
        bad = 0
        for r in range(z):
            bad |= acc[r] & (1 if active[lay, r] > _ZERO else 0)
        if bad:
            return False
    return True

@njit(cache=True, parallel=True)
def _decode(llr, lay_ptr, col, sh, z, active, layered, rule, alpha, beta, lmax,
            max_iter, early, k, bits, iters):
    """BP on ``llr`` [B, N] (log p0/p1, clipped) over the quasi-cyclic graph
    (block row ``lay``: circulants ``col[j]``, shift ``sh[j]`` for j in
    ``lay_ptr[lay]..lay_ptr[lay+1]``; ``active`` [layers, z] 0 for the rows of
    pruned nodes) -> ``bits`` [B, k] uint8, ``iters`` [B]."""
    num_b, num_v = llr.shape
    num_l = lay_ptr.size - 1
    dmax = 0
    for lay in range(num_l):
        dmax = max(dmax, lay_ptr[lay + 1] - lay_ptr[lay])
    for b in prange(num_b):
        ch = llr[b]
        total = ch.copy()
        nxt = np.empty(num_v, np.float32)
        hard = np.empty(num_v, np.int32)
        acc = np.empty(z, np.int32)
        c2v = np.zeros((col.size, z), np.float32)
        ext = np.empty((dmax, z), np.float32)
        v2c = np.empty((dmax, z), np.float32)
        out = np.empty((dmax, z), np.float32)
        outi = out.view(np.int32)
        m1 = np.empty(z, np.float32)
        m2 = np.empty(z, np.float32)
        par = np.empty(z, np.float32)
        i1 = np.empty(z, np.int64)
        done = max_iter
        for it in range(max_iter):
            if not layered:
                nxt[:] = ch
            for lay in range(num_l):
                j0 = lay_ptr[lay]
                d = lay_ptr[lay + 1] - j0
                for j in range(d):
                    _gather(total, col[j0 + j] * z, sh[j0 + j], z, ext[j])
                    for r in range(z):
                        e = ext[j, r] - c2v[j0 + j, r]  # extrinsic, unclipped
                        ext[j, r] = e
                        v2c[j, r] = min(max(e, -lmax), lmax)
                _layer(v2c, out, outi, d, z, rule, alpha, beta, lmax, m1, m2, i1, par)
                for j in range(d):
                    for r in range(z):
                        o = out[j, r] * active[lay, r]
                        c2v[j0 + j, r] = o
                        ext[j, r] += o
                    if layered:
                        _scatter(ext[j], col[j0 + j] * z, sh[j0 + j], z, total, False)
                    else:
                        _scatter(c2v[j0 + j], col[j0 + j] * z, sh[j0 + j], z, nxt, True)
            if not layered:
                total, nxt = nxt, total
            if early and _parity_ok(total, lay_ptr, col, sh, z, active, hard, acc):
                done = it + 1
                break
        iters[b] = done
        for i in range(k):
            bits[b, i] = 1 if total[i] <= _ZERO else 0


def _pruned_length(encoder) -> int:
    """Length of the codeword Sionna decodes: the trailing degree-1 parity nodes
    that carry no channel LLR (punctured by rate matching) are removed with
    their check nodes; they only ever receive messages, so removing them is exact."""
    pcm = encoder.pcm
    dv = np.asarray(pcm.sum(axis=0)).ravel()
    last = encoder.n_ldpc
    for idx in range(encoder.n_ldpc - 1, 0, -1):
        if dv[idx] == 1:
            last = idx
        else:
            break
    k_filler = encoder.k_ldpc - encoder.k
    punctured = (encoder.n_ldpc - k_filler) - encoder.n - 2 * encoder.z
    return int(max(last, encoder.n_ldpc - punctured))


def _qc_graph(pcm, z: int, n_dec: int):
    """The quasi-cyclic structure of ``pcm`` restricted to the first ``n_dec`` VNs
    (rounded up to whole circulants; the rows of the degree-1 VNs beyond ``n_dec``
    are kept but marked inactive, which is the same as removing them).

    Returns ``lay_ptr`` [L+1], ``col`` [J], ``sh`` [J] (block row ``l`` holds
    circulants ``j`` in ``lay_ptr[l]..lay_ptr[l+1]``: row ``r`` of it checks VN
    ``col[j] * z + (r + sh[j]) % z``) and ``active`` [L, z] float32."""
    pcm = pcm.tocsr()
    n_cols = -(-n_dec // z) * z
    n_rows = pcm.shape[0] - (pcm.shape[1] - n_cols)
    if pcm.shape[0] % z or pcm.shape[1] % z or n_rows <= 0:
        raise ValueError(f"parity-check matrix {pcm.shape} is not made of {z}x{z} circulants")
    pcm = pcm[:n_rows, :n_cols].tocsr()
    lay_ptr, cols, shifts = [0], [], []
    for lay in range(n_rows // z):
        first = np.sort(pcm.indices[pcm.indptr[lay * z]: pcm.indptr[lay * z + 1]])
        cols += [int(c) // z for c in first]
        shifts += [int(c) % z for c in first]
        lay_ptr.append(len(cols))
    lay_ptr, col, sh = (np.asarray(a, dtype=np.int64) for a in (lay_ptr, cols, shifts))
    rows = np.repeat(np.arange(n_rows // z), np.diff(lay_ptr))
    r = np.arange(z)
    ri = (rows[:, None] * z + r).ravel()
    ci = (col[:, None] * z + (r + sh[:, None]) % z).ravel()
    # compared as sorted flat indices: a dense rebuilt matrix is 0.46 GB at z = 384
    pr, pc = pcm.nonzero()
    if pr.size != ri.size or not np.array_equal(np.sort(pr * n_cols + pc),
                                                 np.sort(ri * n_cols + ci)):
        raise ValueError(f"parity-check matrix {pcm.shape} is not made of {z}x{z} circulants")
    active = np.ones((n_rows // z, z), dtype=np.float32)
    dead = np.unique(ri[ci >= n_dec])
    active.reshape(-1)[dead] = 0.0
    return lay_ptr, col, sh, active


class FastLDPC5GDecoder:
    """Compiled BP decoding for a Sionna :class:`~sionna.phy.fec.ldpc.LDPC5GEncoder`.

    :param encoder: the code (rate matching, interleaver, parity-check matrix).
    :param schedule: ``"flooding"`` or ``"layered"``.
    :param cn_update: ``"sum-product"``, ``"normalized-min-sum"`` or ``"offset-min-sum"``.
    :param iterations: most BP iterations per codeword (>= 1).
    :param alpha: normalized min-sum factor in (0, 1] (default :data:`DEFAULT_ALPHA`).
    :param beta: offset min-sum offset >= 0 (default :data:`DEFAULT_BETA`).
    :param early_stop: stop a codeword at a zero syndrome.

    :input llr: [..., n] float channel logits log(p1/p0) (Sionna's convention).
    :output: [..., k] float32 hard information bits. :attr:`last_iterations`
        [B] int: the iterations each codeword of the last call ran.
    """

    def __init__(self, encoder, schedule: str = "layered", cn_update: str = "sum-product",
                 iterations: int = 20, alpha: float | None = None, beta: float | None = None,
                 early_stop: bool = True, llr_max: float = LLR_MAX):
        _use_workqueue()
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        if cn_update not in CN_RULES:
            raise ValueError(f"cn_update must be one of {', '.join(CN_RULES)}, got {cn_update!r}")
        if int(iterations) != iterations or iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {iterations}")
        alpha = DEFAULT_ALPHA[schedule] if alpha is None else float(alpha)
        beta = DEFAULT_BETA if beta is None else float(beta)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0 <= beta < llr_max:
            raise ValueError(f"beta must be in [0, {llr_max}), got {beta}")
        self.schedule, self.cn_update, self.iterations = schedule, cn_update, int(iterations)
        self.alpha, self.beta, self.early_stop, self.llr_max = alpha, beta, bool(early_stop), llr_max
        enc = self.encoder = encoder
        self.k, self.n, self.z = enc.k, enc.n, enc.z
        self._n_dec = _pruned_length(enc)
        self._lay_ptr, self._col, self._sh, self._active = _qc_graph(enc.pcm, self.z, self._n_dec)
        self._n_graph = int(self._col.max() + 1) * self.z
        self._buf_len = enc.n_cb_comp - (enc.n_ldpc - self._n_dec)
        if self.n > self._buf_len:
            raise ValueError(f"codeword length {self.n} exceeds the circular buffer ({self._buf_len})")
        self._deint = (np.asarray(enc.out_int_inv.cpu(), dtype=np.int64)
                       if enc.num_bits_per_symbol is not None else None)
        self.last_iterations = np.zeros(0, dtype=np.int32)

    def full_llrs(self, llr: np.ndarray) -> np.ndarray:
        """[B, n] logits -> [B, N] clipped LLRs log(p0/p1) of the decoded graph
        (rate recovery as Sionna's decoder)."""
        enc, z, k = self.encoder, self.z, self.k
        if self._deint is not None:
            llr = llr[:, self._deint]
        b = llr.shape[0]
        full = np.zeros((b, self._n_graph), dtype=np.float32)
        n_sys = k - 2 * z
        full[:, 2 * z: 2 * z + n_sys] = llr[:, :n_sys]
        full[:, k: enc.k_ldpc] = -self.llr_max  # filler bits: known zeros
        rest = llr[:, n_sys:]
        full[:, enc.k_ldpc: enc.k_ldpc + rest.shape[1]] = rest
        np.clip(full, -self.llr_max, self.llr_max, out=full)
        np.negative(full, out=full)
        return full

    def __call__(self, llr: torch.Tensor) -> torch.Tensor:
        shape = llr.shape
        if shape[-1] != self.n:
            raise ValueError(f"last dimension must be n={self.n}, got {shape[-1]}")
        flat = llr.detach().reshape(-1, self.n).to("cpu", torch.float32).numpy()
        full = self.full_llrs(flat)
        bits = np.empty((full.shape[0], self.k), dtype=np.uint8)
        iters = np.empty(full.shape[0], dtype=np.int32)
        with _threads(torch.get_num_threads()):
            _decode(full, self._lay_ptr, self._col, self._sh, self.z, self._active,
                    self.schedule == "layered",
                    _RULE_ID[self.cn_update], np.float32(self.alpha), np.float32(self.beta),
                    np.float32(self.llr_max), self.iterations, self.early_stop, self.k, bits, iters)
        self.last_iterations = iters
        out = torch.from_numpy(bits).to(torch.float32).reshape(*shape[:-1], self.k)
        return out.to(llr.device)


def _use_workqueue() -> None:
    """Run numba's parallel loops on its own ``workqueue`` threads unless the user chose
    a layer (``NUMBA_THREADING_LAYER``): beside torch's OpenMP runtime, numba's OpenMP
    layer did not honour ``set_num_threads`` on its first launch (a 1-thread decode ran on
    2 threads) and its timings varied 2x between runs; the workqueue layer scales 1.8x
    from 1 to 2 threads, reproducibly. Takes effect before numba's first parallel launch."""
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"


class _threads:
    """Run numba's parallel loops on at most ``n`` threads (torch's count), then restore."""

    def __init__(self, n: int):
        self.n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))

    def __enter__(self):
        self.old = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc):
        numba.set_num_threads(self.old)


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the decoder's kernels."""
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    dec = FastLDPC5GDecoder(LDPC5GEncoder(12, 24, num_bits_per_symbol=2), iterations=1)
    dec(torch.zeros(1, 24))
