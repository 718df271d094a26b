import numpy as np
import pytest
import torch

from lgvsc.link.cbr import cbr
from lgvsc.link.channels import AWGN, RayleighBlockFading, RicianBlockFading
from lgvsc.sim.metrics import PSNR
from lgvsc.semantic.linear_coding import dequantize_lambda, quantize_lambda
from lgvsc.sim.schemes.softcast import SoftCast, SoftCastConfig
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import VideoSpec, load_video


@pytest.fixture(scope="module")
def clip():
    return load_video(VideoSpec(source="builtin:carphone", frames=16, size=(144, 176)))


def _scheme(**kw):
    return SoftCast(SoftCastConfig(name="sc", type="softcast", **kw), RunContext())


def _psnr(s, clip, channel, snr, seed=0):
    tx = s.transmit(clip, channel, snr, torch.Generator().manual_seed(seed))
    return PSNR()(clip.frames, tx.frames), tx


def test_psnr_rises_smoothly_with_snr(clip):
    s = _scheme(target_cbr=1.4e-3)
    snrs = [-2, 0, 2, 4, 6, 8, 10, 15, 20]
    p = [_psnr(s, clip, AWGN(), snr)[0] for snr in snrs]
    assert all(b > a for a, b in zip(p, p[1:])), p
    assert max(np.diff(p)) < 3.0, p  # graceful: no jump anywhere, unlike a cliff


def test_cbr_budget_met_and_metadata_charged(clip):
    for target in (6e-4, 1.4e-3):
        _, tx = _psnr(_scheme(target_cbr=target), clip, AWGN(), 10)
        f, h, w = clip.shape
        assert cbr(tx.channel_uses, f, h, w) <= target
        assert tx.payload_bits == tx.extra["meta_bits"] > 0
        assert tx.channel_uses > tx.extra["analog_uses"]  # metadata uses are counted


@pytest.mark.parametrize("channel", [RayleighBlockFading(coherence=16), RicianBlockFading(4.0, 16)])
def test_fading_channels_apply(clip, channel):
    s = _scheme(target_cbr=1.4e-3)
    low, high = _psnr(s, clip, channel, 0)[0], _psnr(s, clip, channel, 20)[0]
    assert high > low


def test_corrupted_metadata_never_crashes(clip):
    s = _scheme(target_cbr=1.4e-3, meta_rate=0.9, meta_modulation="qam64")
    p, tx = _psnr(s, clip, AWGN(), -5)
    assert tx.frames.shape == clip.frames.shape and tx.extra["meta_crc_failed"] > 0


def test_lambda_quantisation():
    lam = np.array([1e-3, 1.0, 3.7, 1e10])
    back = dequantize_lambda(quantize_lambda(lam))
    np.testing.assert_allclose(back, lam, rtol=2 ** (0.5 / 128) - 1)
