"""Uncoded BER on AWGN and Rayleigh against the closed forms.

Each bit position of a symbol is tested on its own: with i.i.d. data, noise
and fading (coherence 1), its errors over N symbols are exactly
Binomial(N, p_j), so the 99% Clopper-Pearson interval applies. (The bits of
one symbol are dependent, so the pooled count is not binomial.)
"""

import numpy as np
import pytest
import torch

from lgvsc.link import theory
from lgvsc.link.channels import AWGN, RayleighBlockFading, snr_db_to_no
from lgvsc.link.modem import Modem
from lgvsc.sim.stats import clopper_pearson

N_SYM = 200_000


def _per_position_errors(modulation, channel, snr_db, seed):
    modem = Modem(modulation, demapping="maxlog")  # sign = minimum-distance decision
    g = torch.Generator().manual_seed(seed)
    b = torch.randint(0, 2, (N_SYM * modem.m,), generator=g).float()
    y, h = channel(modem.modulate(b), snr_db_to_no(snr_db), g)
    hard = (modem.demodulate(y, h, snr_db_to_no(snr_db)) > 0).float()
    return (hard != b).reshape(N_SYM, modem.m).sum(dim=0).numpy()


@pytest.mark.parametrize("modulation", ["qpsk", "qam16"])
@pytest.mark.parametrize("channel_name,snrs", [("awgn", [0.0, 4.0, 8.0]),
                                               ("rayleigh", [0.0, 10.0, 20.0])])
def test_ber_inside_binomial_ci(modulation, channel_name, snrs):
    channel = AWGN() if channel_name == "awgn" else RayleighBlockFading(coherence=1)
    for i, snr in enumerate(snrs):
        errs = _per_position_errors(modulation, channel, snr, seed=100 + i)
        p = theory.ber_uncoded_per_bit(modulation, snr, channel_name)
        for j, (k, pj) in enumerate(zip(errs, p)):
            lo, hi = clopper_pearson(int(k), N_SYM, 0.99)
            assert lo <= pj <= hi, (modulation, channel_name, snr, j, k / N_SYM, pj)


def test_theory_known_values():
    # QPSK at Es/N0 = 0 dB: Q(1); BPSK: Q(sqrt(2)); 16-QAM per-bit mean is the Gray formula
    assert theory.ber_uncoded("qpsk", 0.0) == pytest.approx(0.158655254, rel=1e-6)
    assert theory.ber_uncoded("bpsk", 0.0) == pytest.approx(0.078649604, rel=1e-6)
    # Rayleigh BPSK: (1 - sqrt(g/(1+g)))/2
    g = 10.0
    assert theory.ber_uncoded("bpsk", 10.0, "rayleigh") == pytest.approx(
        0.5 * (1 - np.sqrt(g / (1 + g))), rel=1e-9)
    # exact SER of QPSK: 1 - (1 - Q(1))^2
    assert theory.ser_uncoded_awgn("qpsk", 0.0) == pytest.approx(1 - (1 - 0.158655254) ** 2)


def test_capacity_and_limits():
    assert theory.capacity(10.0) == pytest.approx(np.log2(11.0))
    for mod, m in (("qpsk", 2), ("qam16", 4)):
        c = theory.capacity(10.0, mod)
        assert c < theory.capacity(10.0) and c < m
        assert theory.capacity(40.0, mod) == pytest.approx(m, abs=1e-3)
    # Gaussian-input limit for 2 bit/use is 10*log10(3); QAM needs more SNR
    assert theory.shannon_limit_db(0.5, bits_per_use=2.0) == pytest.approx(4.7712, abs=1e-4)
    assert theory.shannon_limit_db(0.5, "qam16") > 4.7712
    na = theory.bler_normal_approx(512, 1024, [4.0, 5.0, 6.0], "qam16")
    assert na[0] > na[1] > na[2]
