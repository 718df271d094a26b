import math

import numpy as np
import pytest

from lgvsc.sim.metrics import METRICS, PSNR_CAP_DB, resolve_metrics


def _clip(seed=0, shape=(4, 64, 64, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("name,expected", [("psnr", PSNR_CAP_DB), ("ssim", 1.0),
                                           ("ssim_rgb", 1.0), ("ms_ssim", 1.0)])
def test_identical_frames(name, expected):
    x = _clip()
    assert METRICS.get(name)()(x, x.copy()) == pytest.approx(expected, abs=1e-6)


def test_psnr_known_noise():
    """Mid-grey plus N(0, 8^2), rounded: MSE = 64 + 1/12 (rounding), no clipping.
    The MSE over n values has relative standard error sqrt(2/n); allow 4 of them."""
    rng = np.random.default_rng(1)
    ref = np.full((4, 64, 64, 3), 128, np.uint8)
    test = np.rint(128 + rng.normal(0, 8, ref.shape)).astype(np.uint8)
    n = ref.size
    mse = 64 + 1 / 12
    tol_db = 10 * math.log10(1 + 4 * math.sqrt(2 / n))
    assert METRICS.get("psnr")()(ref, test) == pytest.approx(10 * math.log10(255**2 / mse), abs=tol_db)


def test_quality_orders_and_per_frame_average():
    ref = _clip(2)
    mild = np.clip(ref.astype(int) + 5, 0, 255).astype(np.uint8)
    harsh = np.clip(ref.astype(int) + 60, 0, 255).astype(np.uint8)
    for name in ("psnr", "ssim", "ssim_rgb", "ms_ssim"):
        m = METRICS.get(name)()
        assert m(ref, mild) > m(ref, harsh), name
    psnr = METRICS.get("psnr")()
    mixed = ref.copy()
    mixed[1:] = mild[1:]
    per = psnr.frame_scores(ref, mixed)
    assert per[0] == PSNR_CAP_DB and psnr(ref, mixed) == pytest.approx(per.mean())


def test_shape_mismatch_and_unknown_metric():
    with pytest.raises(ValueError, match="shape mismatch"):
        METRICS.get("psnr")()(_clip(), _clip(shape=(3, 64, 64, 3)))
    with pytest.raises(Exception, match="valid: "):
        resolve_metrics(["no_such_metric"])
