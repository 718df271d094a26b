import numpy as np
import pytest
import torch

from lgvsc.link.cbr import cbr
from lgvsc.link.channels import AWGN
from lgvsc.sim import codecs
from lgvsc.sim.metrics import PSNR
from lgvsc.sim.schemes.codec_ldpc import CodecLDPC, CodecLDPCConfig, paper_table1
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import VideoSpec, load_video

F, H, W = 8, 64, 64


@pytest.fixture(scope="module")
def clip():
    return load_video(VideoSpec(source="synthetic:pan", frames=F, size=(H, W)), seed=3)


@pytest.fixture(scope="module")
def carphone():
    return load_video(VideoSpec(source="builtin:carphone", frames=16, size=(144, 176)))


def _scheme(**cfg):
    return CodecLDPC(CodecLDPCConfig(name="x", type="codec-ldpc", **cfg), RunContext())


def _corrupt(data: bytes, rng, case: int) -> bytes:
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    kind = case % 3
    if kind == 0:  # i.i.d. flips at a BER from 1e-6 to 0.5
        ber = 10 ** rng.uniform(-6, np.log10(0.5))
        bits = bits ^ (rng.random(bits.size) < ber)
    elif kind == 1:  # burst of flipped bytes
        k = rng.integers(1, 64)
        pos = rng.integers(0, bits.size, k)
        bits[pos] ^= 1
    else:  # truncation: the tail is lost and zero-filled
        cut = rng.integers(0, bits.size)
        bits[cut:] = 0 if rng.random() < 0.5 else rng.integers(0, 2, bits.size - cut)
    return np.packbits(bits).tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_fuzz_corrupted_bitstreams_always_give_f_frames(clip, codec):
    """105 cases per codec (210 total): flips at BERs 1e-6..0.5, bursts, truncations."""
    bs = codecs.encode(clip.frames, codec, 30, 4)
    rng = np.random.default_rng(7 if codec == "h264" else 8)
    for case in range(105):
        out = codecs.decode(_corrupt(bs.data, rng, case), bs.lengths, codec, H, W)
        assert out.frames.shape == (F, H, W, 3) and out.frames.dtype == np.uint8
        assert out.decoded + out.concealed == F
        assert out.status in ("ok", "crashed", "timeout")


def test_clean_decode_and_bounded_time(clip):
    bs = codecs.encode(clip.frames, "h264", 20, 4)
    out = codecs.decode(bs.data, bs.lengths, "h264", H, W)
    assert out.status == "ok" and out.concealed == 0
    assert PSNR()(clip.frames, out.frames) > 30
    hung = codecs.decode(bs.data, bs.lengths, "h264", H, W, timeout_s=1e-3)
    assert hung.status == "timeout" and hung.frames.shape == (F, H, W, 3)
    assert (hung.frames == codecs.GREY).all()  # nothing decoded: mid-grey


def test_concealment_repeats_last_good_frame(clip):
    bs = codecs.encode(clip.frames, "h264", 20, 100)  # one I frame, then P frames
    data = bytearray(bs.data)
    start = sum(bs.lengths[:5])
    data[start:start + bs.lengths[5]] = b"\x00" * bs.lengths[5]  # packet 5 lost
    out = codecs.decode(bytes(data), bs.lengths, "h264", H, W)
    np.testing.assert_array_equal(out.frames[5], out.frames[4])


def test_paper_table1_and_nearest_row():
    rows = paper_table1("h265")
    assert [r.snr_db for r in rows] == [6, 8, 10] and rows[0].modulation == "qpsk"
    cfg = CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", preset="paper-table1")
    assert cfg.settings(0) == dict(qp=51, gop=400, rate=0.75, modulation="qam16")
    assert cfg.settings(9.2)["gop"] == 20 and cfg.settings(7)["gop"] == 80
    over = CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", preset="paper-table1", qp=30)
    assert over.settings(10)["qp"] == 30


def test_cbr_is_channel_uses_over_3hwf(carphone):
    s = _scheme(codec="h264", qp=35, gop=8, rate=0.5, modulation="qam16")
    tx = s.transmit(carphone, AWGN(), 20.0, torch.Generator().manual_seed(0))
    bits = codecs.encode(carphone.frames, "h264", 35, 8).num_bits
    assert tx.payload_bits == bits
    assert tx.channel_uses == s._pipe(0.5, "qam16").channel_uses(bits)
    f, h, w = carphone.shape
    assert cbr(tx.channel_uses, f, h, w) == tx.channel_uses / (3 * h * w * f)


def test_target_cbr_picks_the_smallest_qp_that_fits(carphone):
    target = 2e-2
    s = _scheme(codec="h264", gop=8, rate=0.5, modulation="qpsk", target_cbr=target)
    tx = s.transmit(carphone, AWGN(), 20.0, torch.Generator().manual_seed(0))
    f, h, w = carphone.shape
    qp = tx.extra["qp"]
    pipe = s._pipe(0.5, "qpsk")
    assert cbr(tx.channel_uses, f, h, w) <= target
    assert 0 < qp < 51
    above = pipe.channel_uses(codecs.encode(carphone.frames, "h264", qp - 1, 8).num_bits)
    assert cbr(above, f, h, w) > target


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_the_cliff_with_table1(carphone, codec):
    """Table I settings: good at 10 dB, collapsed at 0 and 2 dB (every block fails)."""
    s = _scheme(codec=codec, preset="paper-table1")
    psnr = {snr: PSNR()(carphone.frames, s.transmit(carphone, AWGN(), snr,
                                                    torch.Generator().manual_seed(1)).frames)
            for snr in (0, 2, 10)}
    assert psnr[10] > 20
    assert psnr[0] < 13 and psnr[2] < 13
