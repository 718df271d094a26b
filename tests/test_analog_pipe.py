import math

import numpy as np
import pytest
import torch
from scipy.special import exp1
from scipy.stats import chi2

from lgvsc.link.analog import AnalogPipe
from lgvsc.link.channels import AWGN, RayleighBlockFading, RicianBlockFading, snr_db_to_no


def _x(shape, seed, scale=3.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale + 0.5


def test_unit_power_shape_and_uses():
    x = _x((3, 5, 7), 0)  # odd count: one zero pad
    res = AnalogPipe()(x, AWGN(), snr_db_to_no(10), torch.Generator().manual_seed(1))
    assert res.x_hat.shape == x.shape
    assert res.tx_power == pytest.approx(1.0, abs=1e-5)
    assert res.symbols == math.ceil(x.numel() / 2)
    assert res.channel_uses == res.symbols + res.side_info_uses
    assert AnalogPipe().symbols_for(x.numel()) == res.channel_uses


def test_zf_awgn_noise_is_chi_square():
    """ZF on AWGN: x_hat - x = scale * n, each real part N(0, scale^2 no / 2)."""
    n_val, no = 100_000, snr_db_to_no(5.0)
    x = _x((n_val,), 2)
    res = AnalogPipe("zf")(x, AWGN(), no, torch.Generator().manual_seed(3))
    scale2 = float(torch.view_as_complex(x.reshape(-1, 2)).abs().square().mean())
    stat = float(((res.x_hat - x).double() ** 2).sum()) / (scale2 * no / 2)
    lo, hi = chi2.ppf([0.005, 0.995], n_val)
    assert lo <= stat <= hi


def test_mmse_on_rayleigh_matches_expected_mse():
    """Unit-power Gaussian input, |h|^2 ~ Exp(1): E|s - s_hat|^2 = E[no/(|h|^2+no)] = no e^no E1(no)."""
    n_val, no = 200_000, snr_db_to_no(5.0)
    x = torch.randn(n_val, generator=torch.Generator().manual_seed(4))
    mmse = AnalogPipe("mmse")(x, RayleighBlockFading(1), no, torch.Generator().manual_seed(5))
    zf = AnalogPipe("zf")(x, RayleighBlockFading(1), no, torch.Generator().manual_seed(5))
    scale2 = float(x.square().mean()) * 2  # per complex symbol
    err = ((mmse.x_hat - x).double() ** 2).reshape(-1, 2).sum(dim=1) / scale2
    expected = no * math.exp(no) * exp1(no)
    tol = 4 * float(err.std()) / math.sqrt(err.numel())  # 4 sigma of the sample mean
    assert float(err.mean()) == pytest.approx(expected, abs=tol)
    assert float(((zf.x_hat - x) ** 2).mean()) > float(((mmse.x_hat - x) ** 2).mean())


def test_rician_and_block_fading_gains():
    g = torch.Generator().manual_seed(6)
    h = RicianBlockFading(k_factor=3.0, coherence=4).gains((2, 4000), g, torch.complex64, "cpu")
    assert torch.equal(h[:, 0:4], h[:, 0:1].expand(2, 4))  # constant within a block
    # |h|^2 = |a + b g|^2 with a^2 = K/(K+1), b^2 = 1/(K+1): mean 1, variance 2a^2b^2 + b^4;
    # 2 x 4000 / 4 = 2000 independent fades -> 4 standard errors of their mean
    a2, b2 = 3 / 4, 1 / 4
    tol = 4 * math.sqrt((2 * a2 * b2 + b2 * b2) / 2000)
    assert float(h[:, ::4].abs().square().mean()) == pytest.approx(1.0, abs=tol)
    with pytest.raises(ValueError, match="k_factor"):
        RicianBlockFading(k_factor=-1)
    with pytest.raises(ValueError, match="coherence"):
        RayleighBlockFading(coherence=0)


def test_empty_and_deterministic():
    pipe = AnalogPipe()
    assert pipe(torch.zeros(0), AWGN(), 1.0, torch.Generator()).channel_uses == 0
    x = _x((64,), 7)
    a = pipe(x, AWGN(), 0.3, torch.Generator().manual_seed(9)).x_hat
    b = pipe(x, AWGN(), 0.3, torch.Generator().manual_seed(9)).x_hat
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="equalizer"):
        AnalogPipe("lmmse")
