import cv2
import numpy as np
import pytest
import torch

from lgvsc.semantic.side_info import (SIDE_INFO, MotionField, MotionGrid, MotionScalar,
                                      MotionScore, estimate_flow, make_side_info, pair_indices)

TRUE = (2, -1)  # (dx, dy) px per frame


def _texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    t = (t - t.min()) / (t.max() - t.min()) * 255.0
    return np.repeat(t.astype(np.uint8)[..., None], 3, axis=2)


def _translation(dx, dy, length=5, h=96, w=128, pad=24):
    """Frames of a smooth texture moving by (dx, dy) px per frame (cropped, no wrap-around)."""
    tex = _texture(h + 2 * pad, w + 2 * pad)
    return np.stack([tex[pad - t * dy:pad - t * dy + h, pad - t * dx:pad - t * dx + w]
                     for t in range(length)])


@pytest.fixture(scope="module")
def moving():
    return _translation(*TRUE)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_estimate_flow_recovers_translation(moving, method):
    flow = estimate_flow(moving[0], moving[1], method=method)
    assert flow.shape == (96, 128, 2) and flow.dtype == np.float32
    inner = flow[16:-16, 16:-16].reshape(-1, 2).mean(axis=0)
    assert np.allclose(inner, TRUE, atol=0.2)


def test_estimate_flow_fast_preset_and_validation(moving):
    assert estimate_flow(moving[0], moving[1], preset="fast").shape == (96, 128, 2)
    with pytest.raises(ValueError, match="method"):
        estimate_flow(moving[0], moving[1], method="lk")
    with pytest.raises(ValueError, match="a must"):
        estimate_flow(moving[0].astype(np.float32), moving[1])


def test_pair_indices():
    assert pair_indices(1, 4).tolist() == []
    assert pair_indices(3, 4).tolist() == [0, 1]
    idx = pair_indices(17, 4)
    assert idx.tolist() == [0, 5, 10, 15] and idx.max() + 1 < 17


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_scalar_decodes_true_magnitude(moving, method):
    # Tolerance 15 %: log quantisation step ~3.5 % (<= 1.7 % error) + flow error.
    sc = MotionScalar(method=method)
    got = sc.from_bits(sc.to_bits(sc.encode(moving))).px_per_frame
    assert got == pytest.approx(np.hypot(*TRUE), rel=0.15)
    assert sc.text(MotionScore(3.2)) == "motion score: 3.2"


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_grid_interior_cells_decode_to_translation(moving, method):
    # max_px 8, 6 bits: step 8/31 = 0.258 px (error <= 0.13) + flow error -> 0.4 px.
    g = MotionGrid(max_px=8.0, method=method)
    dec = g.from_bits(g.to_bits(g.encode(moving)))
    assert dec.cells.shape == (4, 4, 2) and dec.cells.dtype == np.float32
    assert np.abs(dec.cells[1:3, 1:3] - np.array(TRUE)).max() <= 0.4
    assert np.abs(dec.mean - np.array(TRUE)).max() <= 0.4


def test_grid_dense_upsamples(moving):
    g = MotionGrid(max_px=8.0)
    field = g.dense(g.quantize(g.encode(moving)), 96, 128)
    assert field.shape == (96, 128, 2) and field.dtype == np.float32
    assert np.abs(field[24:-24, 32:-32] - np.array(TRUE)).max() <= 0.4
    ramp = MotionField(np.arange(8, dtype=np.float32).reshape(2, 2, 2), np.zeros(2, np.float32))
    assert g.dense(ramp, 1, 1).shape == (1, 1, 2)


@pytest.mark.parametrize("kind", ["scalar", "grid"])
def test_static_and_single_frame_segments(kind):
    form = make_side_info(kind)
    static = np.repeat(_texture(64, 64)[None], 4, axis=0)
    one = static[:1]
    for seg, tol in ((static, 0.05), (one, 0.0)):
        d = form.quantize(form.encode(seg))
        vals = np.array([d.px_per_frame]) if kind == "scalar" else d.cells
        assert np.abs(vals).max() <= tol


def test_single_frame_is_exactly_zero():
    one = _texture(32, 32)[None]
    assert MotionScalar().encode(one).px_per_frame == 0.0
    d = MotionGrid().encode(one)
    assert not d.cells.any() and not d.mean.any()


def _forms():
    return [MotionScalar(), MotionGrid(), MotionGrid(grid=(2, 3), max_px=4.0, bits=5)]


@pytest.mark.parametrize("form", _forms(), ids=["scalar", "grid", "grid-2x3"])
def test_bits_round_trip_and_num_bits(moving, form):
    d = form.encode(moving)
    bits = form.to_bits(d)
    assert bits.dtype == torch.uint8 and bits.shape == (form.num_bits,)
    q = form.from_bits(bits)
    assert q == form.quantize(d)
    assert torch.equal(form.to_bits(q), bits)
    assert form.from_bits(form.to_bits(q)) == q


def test_scalar_code_range():
    sc = MotionScalar()
    assert sc.to_bits(MotionScore(0.0)).sum() == 0
    assert sc.from_bits(torch.ones(8, dtype=torch.uint8)).px_per_frame == pytest.approx(64.0)
    assert sc.quantize(MotionScore(1000.0)).px_per_frame == pytest.approx(64.0)
    assert sc.quantize(MotionScore(0.01)).px_per_frame == pytest.approx(0.01)
    assert sc.quantize(MotionScore(float("nan"))).px_per_frame == 0.0


@pytest.mark.parametrize("form", _forms(), ids=["scalar", "grid", "grid-2x3"])
def test_corrupted_bits_decode_finite(form):
    rng = np.random.default_rng(1)
    n = form.num_bits
    cases = [torch.zeros(n, dtype=torch.uint8), torch.ones(n, dtype=torch.uint8),
             torch.ones(n + 5, dtype=torch.uint8), torch.zeros(3, dtype=torch.uint8),
             torch.zeros(0, dtype=torch.uint8), torch.full((n,), float("nan"))]
    cases += [torch.from_numpy(rng.integers(0, 2, n, dtype=np.uint8)) for _ in range(20)]
    for bits in cases:
        d = form.from_bits(bits)
        vals = np.array([d.px_per_frame]) if isinstance(d, MotionScore) else d.cells
        assert np.isfinite(vals).all()
        if isinstance(d, MotionField):
            assert np.abs(vals).max() <= form.max_px and np.isfinite(d.mean).all()


def test_factory_and_validation():
    assert set(SIDE_INFO) == {"scalar", "grid"}
    assert isinstance(make_side_info("grid", max_px=8.0), MotionGrid)
    with pytest.raises(ValueError, match="valid: grid, scalar"):
        make_side_info("histogram")
    for kwargs, name in [({"pairs": 0}, "pairs"), ({"method": "x"}, "method"),
                         ({"preset": "ultra"}, "preset"), ({"grid": (0, 4)}, "grid"),
                         ({"max_px": -1.0}, "max_px"), ({"bits": 1}, "bits")]:
        with pytest.raises(ValueError, match=name):
            make_side_info("grid", **kwargs)
    with pytest.raises(ValueError, match="segment"):
        MotionScalar().encode(np.zeros((0, 8, 8, 3), np.uint8))


def test_grid_to_bits_rejects_wrong_shape():
    bad = MotionField(np.zeros((3, 3, 2), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="desc"):
        MotionGrid().to_bits(bad)
