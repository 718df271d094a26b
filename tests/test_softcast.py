import numpy as np
import pytest
import torch

from lgvsc.link.cbr import BUDGET_FLOOR, BudgetError
from lgvsc.link.channels import AWGN, RayleighBlockFading, RicianBlockFading
from lgvsc.semantic import linear_coding as lin
from lgvsc.sim.metrics import PSNR
from lgvsc.sim.schemes.softcast import SoftCast, SoftCastConfig
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import Video, VideoSpec, load_video


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


@pytest.mark.parametrize("target", [6e-4, 1e-3, 1.4e-3, 4e-3, 2e-2])
def test_budget_spent_exactly_metadata_and_scale_charged(clip, target):
    s = _scheme(target_cbr=target)
    _, tx = _psnr(s, clip, AWGN(), 10)
    budget = s.target_uses(clip)
    assert BUDGET_FLOOR * budget <= tx.channel_uses <= budget, (tx.channel_uses, budget)
    assert tx.payload_bits == tx.extra["meta_bits"] > 0
    assert tx.channel_uses == tx.extra["analog_uses"] + tx.extra["meta_uses"]
    assert tx.extra["meta_uses"] == s.meta_pipe.channel_uses(tx.extra["meta_bits"])


def test_too_small_or_too_large_target_raises_budget_error(clip):
    with pytest.raises(BudgetError) as e:
        _psnr(_scheme(target_cbr=1e-5), clip, AWGN(), 10)
    msg = str(e.value)
    assert "\n" not in msg and "softcast" in msg and "'carphone'" in msg, msg
    would = float(msg.split("target_cbr >= ")[1].split(" ")[0])
    _, tx = _psnr(_scheme(target_cbr=would), clip, AWGN(), 10)  # the suggestion works
    assert tx.channel_uses >= BUDGET_FLOOR * _scheme(target_cbr=would).target_uses(clip)
    tiny = Video(frames=clip.frames[:4, :16, :24].copy(), name="tiny")
    with pytest.raises(BudgetError, match=r"at most \d+ \(target_cbr <= "):
        _psnr(_scheme(target_cbr=50.0), tiny, AWGN(), 10)  # more than every chunk needs


def test_tiny_budget_sends_without_metadata(clip):
    tiny = Video(frames=clip.frames[:8, :32, :32].copy(), name="tiny")
    s = _scheme(target_cbr=0.01, gop=4)  # 245 uses: less than any metadata header
    p, tx = _psnr(s, tiny, AWGN(), 10)
    assert tx.extra["meta_bits"] == 0 and tx.extra["chunk_grid"] == "none" and not tx.failed
    assert BUDGET_FLOOR * s.target_uses(tiny) <= tx.channel_uses <= s.target_uses(tiny)
    assert p > 15  # the means and the lowest frequencies arrived


def test_constant_video_rebuilt_exactly_at_high_snr():
    frames = np.empty((8, 32, 48, 3), np.uint8)
    frames[:] = (90, 160, 230)
    video = Video(frames=frames, name="flat")
    s = _scheme(target_cbr=2e-2, gop=4)
    _, tx = _psnr(s, video, AWGN(), 40)
    assert np.abs(tx.frames.astype(int) - frames).max() <= 1
    assert BUDGET_FLOOR * s.target_uses(video) <= tx.channel_uses <= s.target_uses(video)


class _NoMean(lin.LinearCoder):
    """The pre-fix behaviour: the means stay in the analog part."""

    @staticmethod
    def _dc_codes(sets):
        return np.zeros(len(sets), np.int64)


def test_mean_removal_beats_sending_the_dc_analog(clip):
    s, old = _scheme(target_cbr=1.4e-3), _scheme(target_cbr=1.4e-3)
    old.coder = _NoMean(old.cfg.chunks, old.analog, old.meta_pipe)
    for snr, gain in ((0, 0.8), (10, 0.25)):  # measured: +1.22 dB and +0.48 dB
        new, ref = _psnr(s, clip, AWGN(), snr)[0], _psnr(old, clip, AWGN(), snr)[0]
        assert new > ref + gain, (snr, new, ref)


def test_grid_choice_and_fixed_grid(clip):
    auto = _scheme(target_cbr=1.4e-3)
    fixed = _scheme(target_cbr=1.4e-3, chunks=[16, 16])
    assert fixed.cfg.chunks == [(16, 16)] and fixed.plan(clip).grid == (16, 16)
    assert auto.plan(clip).grid in lin.DEFAULT_GRIDS
    # the choice minimises the expected distortion at the design SNR over the candidates
    costs = {}
    for g in lin.DEFAULT_GRIDS:
        p = _scheme(target_cbr=1.4e-3, chunks=[g]).plan(clip)
        costs[g] = float(np.tile(lin.RGB_WEIGHTS, len(p.expected_sse) // 3) @ p.expected_sse)
    assert auto.plan(clip).grid == min(costs, key=costs.get)
    with pytest.raises(ValueError, match="chunks"):
        SoftCastConfig(name="sc", type="softcast", target_cbr=1e-3, chunks=[[0, 4]])


@pytest.mark.parametrize("channel", [RayleighBlockFading(coherence=16), RicianBlockFading(4.0, 16)])
def test_fading_channels_apply(clip, channel):
    s = _scheme(target_cbr=1.4e-3)
    low, high = _psnr(s, clip, channel, 0)[0], _psnr(s, clip, channel, 20)[0]
    assert high > low


def test_corrupted_metadata_never_crashes(clip):
    s = _scheme(target_cbr=1.4e-3, meta_rate=0.9, meta_modulation="qam64")
    p, tx = _psnr(s, clip, AWGN(), -5)
    assert tx.frames.shape == clip.frames.shape and tx.extra["meta_crc_failed"] > 0
    assert tx.failed and "metadata" in tx.failures
