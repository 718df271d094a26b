import numpy as np
import pytest
from scipy.fft import dctn

from lgvsc.link.analog import AnalogPipe
from lgvsc.link.cbr import BUDGET_FLOOR, BudgetError
from lgvsc.link.digital import DigitalPipe
from lgvsc.semantic import linear_coding as lin

H, W, T = 48, 64, 4


def _sets(seed=0, t=T):
    """Three smooth random sets [t, H, W] (a DCT of low-pass noise plus a mean)."""
    rng = np.random.default_rng(seed)
    out = []
    for mean in (120.0, -10.0, 25.0):
        x = rng.normal(size=(t, H, W)).cumsum(axis=1).cumsum(axis=2) / 8 + mean
        out.append(dctn(x, norm="ortho"))
    return out


def _coder(grids=lin.DEFAULT_GRIDS, **kw):
    return lin.LinearCoder(grids, AnalogPipe("zf"), DigitalPipe("qpsk", "ldpc5g", 0.2), **kw)


def _noiseless(coder, plan, sets):
    y = plan.values.astype(np.float64)
    return coder.decode(plan.bits, [s.shape for s in sets], y, np.zeros_like(y))


def test_exp_golomb_round_trip_and_lengths():
    values = np.arange(0, 300)
    for k in range(8):
        w = lin.BitWriter()
        for v in values:
            w.eg(int(v), k)
            w.seg(int(v) - 150, k)
        bits = w.array()
        expect = (lin.eg_lengths(values, k).sum()
                  + lin.eg_lengths(lin._zigzag(values - 150), k).sum())
        assert len(bits) == expect
        rd = lin.BitReader(bits)
        back = [(rd.eg(k), rd.seg(k)) for _ in values]
        assert back == [(int(v), int(v) - 150) for v in values] and rd.ok


@pytest.mark.parametrize("budget", [400, 1500, 4000, 12000])
def test_budget_spent_exactly_and_accounted(budget):
    sets = _sets()
    coder = _coder()
    p = coder.plan(sets, budget)
    assert BUDGET_FLOOR * budget <= p.channel_uses <= budget, (p.channel_uses, budget)
    assert p.meta_uses == coder.digital.channel_uses(p.bits.size)
    assert p.analog_uses == coder.analog.symbols_for(p.values.size)
    sizes = lin.Layout.grid(H, W, p.grid).sizes[p.chunks[:, 2], p.chunks[:, 3]]
    assert p.values.size == sizes[:-1].sum() + p.partial_values
    assert 1 <= p.partial_values <= sizes[-1]


def test_kept_chunks_form_staircases_and_noiseless_decode_is_exact():
    sets = _sets(1)
    coder = _coder([(8, 8)])
    p = coder.plan(sets, 2500)
    kept = {tuple(c) for c in p.chunks}
    for s, t, i, j in kept:
        assert (i == 0 or (s, t, i - 1, j) in kept) and (j == 0 or (s, t, i, j - 1) in kept)
    out = _noiseless(coder, p, sets)
    lay = lin.Layout.grid(H, W, p.grid)
    scale = max(np.abs(s).max() for s in sets)
    for s, t, i, j in p.chunks[:-1]:  # every full chunk (the DC: quantised mean + residual)
        r, c = lay.scan(i, j)
        np.testing.assert_allclose(out[s][t, r, c], sets[s][t, r, c], rtol=0, atol=1e-9 * scale)
    dropped = np.ones(sets[0].shape, bool)
    for s_, t, i, j in p.chunks:
        if s_ == 0:
            dropped[t, lay.rows[i]:lay.rows[i + 1], lay.cols[j]:lay.cols[j + 1]] = False
    assert np.all(out[0][dropped] == 0) and dropped.any()


def test_means_travel_digitally():
    sets = [dctn(np.full((T, H, W), v), norm="ortho") for v in (200.3, -40.1, 7.7)]
    coder = _coder()
    p = coder.plan(sets, 600)
    out = _noiseless(coder, p, sets)
    for o, v in zip(out, (200.3, -40.1, 7.7)):
        assert abs(o[0, 0, 0] / np.sqrt(o.size) - v) < 1e-6
    assert p.channel_uses >= BUDGET_FLOOR * 600


def test_budget_errors_say_what_would_fit():
    sets = _sets()
    coder = _coder()
    with pytest.raises(BudgetError) as small:
        coder.plan(sets, 20)
    need = small.value.needed
    assert need == coder.analog.symbols_for(1) and str(need) in str(small.value)
    p = coder.plan(sets, need)
    assert p.channel_uses == need and p.values.size >= 1
    with pytest.raises(lin.BudgetUnfit) as large:
        coder.plan(sets, 10 ** 6)  # more than every chunk needs
    assert large.value.usable < BUDGET_FLOOR * 10 ** 6
    p = coder.plan(sets, large.value.usable)
    assert p.channel_uses == large.value.usable


def test_no_metadata_plan_below_the_header_cost():
    sets = _sets(3)
    coder = _coder()
    p = coder.plan(sets, 150)  # the cheapest header with one chunk costs more
    assert p.grid is None and p.bits.size == 0 and p.meta_uses == 0
    assert BUDGET_FLOOR * 150 <= p.channel_uses <= 150
    out = _noiseless(coder, p, sets)
    sent = np.concatenate([o[o != 0] for o in out])
    assert sent.size == p.values.size  # the lowest frequencies of every set, exactly
    for o, s in zip(out, sets):
        assert o[0, 0, 0] == s[0, 0, 0] and o[0, 0, 1] == s[0, 0, 1]
    assert coder.plan(sets, 3000).grid is not None


def test_corrupted_metadata_never_raises_and_is_deterministic():
    sets = _sets(2)
    coder = _coder()
    p = coder.plan(sets, 3000)
    rng = np.random.default_rng(5)
    y = p.values + rng.normal(size=p.values.size)
    var = np.ones_like(y)
    shapes = [s.shape for s in sets]
    garbage = [np.zeros(0, np.uint8), np.ones(4000, np.uint8), np.zeros(4000, np.uint8),
               p.bits[:len(p.bits) // 2], rng.integers(0, 2, 50, dtype=np.uint8)]
    for flip in (1, 5, 40):
        bad = p.bits.copy()
        bad[rng.choice(len(bad), flip, replace=False)] ^= 1
        garbage.append(bad)
    for first in range(4):  # another grid index: the rest parses as garbage
        bad = p.bits.copy()
        bad[:2] = (first >> 1, first & 1)
        garbage.append(bad)
    for bits, n in [(b, len(y)) for b in garbage] + [(p.bits, len(y) // 3), (p.bits, 0)]:
        a = coder.decode(bits, shapes, y[:n], var[:n])
        b = coder.decode(bits, shapes, y[:n], var[:n])
        assert [o.shape for o in a] == shapes
        assert all(np.isfinite(o).all() for o in a)
        assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_settings_validated():
    with pytest.raises(ValueError, match="chunks"):
        _coder([(0, 4)])
    with pytest.raises(ValueError, match="chunks"):
        _coder([(8, 8)] * 5)
    with pytest.raises(ValueError, match="lambda_step"):
        _coder(lambda_step=0)
    assert lin.grid_list((16, 16)) == [(16, 16)]
    assert lin.grid_list([[8, 8], (4, 2)]) == [(8, 8), (4, 2)]


def test_lambda_quantisation():
    lam = np.array([1e-3, 1.0, 3.7, 1e10])
    for step in (0.5, 2.0):
        back = lin.dequantize_lambda(lin.quantize_lambda(lam, step), step)
        np.testing.assert_allclose(back, lam, rtol=2 ** (step / 2) - 1)
    assert np.all(lin.dequantize_lambda(lin.quantize_lambda(np.array([0.0, 1e-9]))) == 0)
