import numpy as np
import pytest
import torch

from lgvsc.link.cbr import BUDGET_FLOOR, BudgetError, cbr
from lgvsc.link.code import LDPC_MIN_RATE
from lgvsc.link.modem import bits_per_symbol
from lgvsc.link.channels import AWGN, Channel
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
    assert cfg.settings(0) == dict(qp=51, gop=400, rate=0.75, modulation="qam16", max_block=8448,
                                   speed="medium", profile=None, bframes=0, wpp=False)
    assert cfg.settings(9.2)["gop"] == 20 and cfg.settings(7)["gop"] == 80
    over = CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", preset="paper-table1", qp=30)
    assert over.settings(10)["qp"] == 30


def test_cbr_is_channel_uses_over_3hwf(carphone):
    s = _scheme(codec="h264", qp=35, gop=8, rate=0.5, modulation="qam16")
    tx = s.transmit(carphone, AWGN(), 20.0, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)  # decoded as it is read
    bits = codecs.encode(carphone.frames, "h264", 35, 8).num_bits
    assert tx.payload_bits == bits
    assert tx.channel_uses == s._pipe(0.5, "qam16").channel_uses(bits)
    f, h, w = carphone.shape
    assert cbr(tx.channel_uses, f, h, w) == tx.channel_uses / (3 * h * w * f)


@pytest.mark.parametrize("target", [1e-2, 2e-2, 6e-2])
def test_target_cbr_lands_on_the_budget(carphone, target):
    """The smallest QP that fits at the configured rate, then the lowest code rate
    (>= 1/5) that fills the budget: the CBR lands in [0.97, 1] x target."""
    s = _scheme(codec="h264", gop=8, rate=0.75, modulation="qpsk", target_cbr=target)
    tx = s.transmit(carphone, AWGN(), 20.0, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)  # decoded as it is read
    f, h, w = carphone.shape
    got = cbr(tx.channel_uses, f, h, w)
    assert BUDGET_FLOOR * target <= got <= target
    assert tx.channel_uses <= s.target_uses(carphone)
    qp, rate = tx.extra["qp"], tx.extra["code_rate"]
    assert LDPC_MIN_RATE <= rate <= 0.75
    assert not tx.failed
    pipe = s._pipe(0.75, "qpsk")
    if qp > 0:  # one QP finer would not fit even at the highest rate
        finer = codecs.encode(carphone.frames, "h264", qp - 1, 8).num_bits
        assert cbr(pipe.channel_uses(finer), f, h, w) > target
    assert tx.payload_bits == codecs.encode(carphone.frames, "h264", qp, 8).num_bits


def test_target_cbr_that_cannot_be_met_says_what_would(carphone):
    tiny = _scheme(codec="h264", gop=8, rate=0.75, modulation="qpsk", target_cbr=1e-4)
    with pytest.raises(BudgetError, match=r"target_cbr 0\.0001 .*QP 51 needs CBR .*target_cbr >="):
        tiny.transmit(carphone, AWGN(), 20.0, torch.Generator().manual_seed(0))
    huge = _scheme(codec="h264", gop=8, rate=0.75, modulation="qpsk", target_cbr=5.0)
    with pytest.raises(BudgetError, match=r"QP 0 at rate 1/5 .*target_cbr <="):
        huge.transmit(carphone, AWGN(), 20.0, torch.Generator().manual_seed(0))


def test_fill_rate_keeps_long_blocks_off_base_graph_1_below_one_third():
    s = _scheme(codec="h264", rate=0.5, modulation="qam16")
    rate, cap = s.fill_rate(100_000, 75_000, "qam16", 8448)  # rate ~ 1/3
    assert cap == 8448 and rate >= 1 / 3
    rate, cap = s.fill_rate(100_000, 90_000, "qam16", 8448)  # rate ~ 0.28: base graph 2 only
    assert cap == 3824 and 0.25 < rate < 1 / 3
    pipe = s._pipe(rate, "qam16", cap)
    assert 0.97 * 90_000 <= pipe.channel_uses(100_000) <= 90_000


# -- warnings ----------------------------------------------------------------------
SNRS = [0, 2, 4, 6, 8, 10]


def test_capacity_warning_for_table1_h264_at_6_db():
    cfg = CodecLDPCConfig(name="H.264+LDPC", type="codec-ldpc", codec="h264", preset="paper-table1")
    assert CodecLDPC.warnings(cfg, SNRS) == [
        "H.264+LDPC: row 6 dB (16-QAM, rate 3/4 = 3.00 bit/use) exceeds the 16-QAM capacity "
        "at 6 dB (2.2 bit/use); it needs >= 9.3 dB"]
    assert CodecLDPC.warnings(cfg, [10]) == []  # the 6 dB row is not used at 10 dB
    h265 = CodecLDPCConfig(name="x", type="codec-ldpc", codec="h265", preset="paper-table1")
    assert CodecLDPC.warnings(h265, SNRS) == []  # QPSK 3/4 = 1.5 bit/use < 1.9


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_no_capacity_warning_for_the_authors_code(codec):
    cfg = CodecLDPCConfig(name="x", type="codec-ldpc", codec=codec, preset="authors-code")
    assert CodecLDPC.warnings(cfg, SNRS) == []


def test_capacity_warning_for_top_level_settings_and_overrides():
    cfg = CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", rate="5/6", modulation="qam64")
    lines = CodecLDPC.warnings(cfg, [6, 10, 20])
    assert len(lines) == 2 and lines[0].startswith("x: at 6 dB (64-QAM, rate 5/6 = 5.00 bit/use)")
    over = CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", preset="authors-code",
                           modulation="qam16")  # QPSK rows forced to 16-QAM
    assert [w.split(" (")[0] for w in CodecLDPC.warnings(over, SNRS)] == [
        "x: row 0 dB", "x: row 2 dB", "x: row 4 dB", "x: row 6 dB"]


# -- the authors' code ------------------------------------------------------------
#: 03_jscc_transmission/ldpc_sionna/SionnaPlus_sora.py: (k, n) in units of 1024 bits, bits/symbol
AUTHORS_LDPC = {0: (3, 9, 2), 2: (4, 8, 2), 4: (6, 9, 2), 6: (6, 8, 2), 8: (4, 8, 4), 10: (6, 9, 4)}
#: 05_baselines/h26{4,5}/h26{4,5}compress.py: (qp, gop) per SNR
AUTHORS_H264 = {10: (51, 20), 8: (51, 80), 6: (51, 400), 4: (51, 400), 2: (51, 400), 0: (51, 400)}
AUTHORS_H265 = {10: (50, 13), 8: (51, 50), 6: (51, 400), 4: (51, 400), 2: (51, 400), 0: (51, 400)}


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_authors_code_preset(codec):
    cfg = CodecLDPCConfig(name="x", type="codec-ldpc", codec=codec, preset="authors-code")
    enc = AUTHORS_H264 if codec == "h264" else AUTHORS_H265
    for snr, (k, n, m) in AUTHORS_LDPC.items():
        s = cfg.settings(snr)
        assert s["rate"] == pytest.approx(k / n) and s["max_block"] == 1024 * k
        assert bits_per_symbol(s["modulation"]) == m
        assert (s["qp"], s["gop"]) == enc[snr] and s["speed"] == "ultrafast"
        assert s["bframes"] == "preset"
        assert s["profile"] == ("baseline" if codec == "h264" else None)
        assert s["wpp"] == (codec == "h265")  # x265's default under ffmpeg (thread pool)


def test_authors_code_h265_keeps_x265s_b_frames(carphone):
    s = _scheme(codec="h265", preset="authors-code")
    tx = s.transmit(carphone, AWGN(), 10.0, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)  # the decoder runs as the frames are read
    assert tx.extra["reordered"] and tx.extra["decoder_status"] == "ok"
    assert tx.extra["frames_concealed"] == 0 and not tx.failed
    assert PSNR()(carphone.frames, tx.frames) > 20
    bs = s._encode(carphone, s.cfg.settings(10.0))
    assert bs.pts[:5] == [0, 4, 2, 1, 3]  # x265 ultrafast: 3 B-frames, b-pyramid
    no_wpp = s._encode(carphone, dict(s.cfg.settings(10.0), wpp=False))
    assert no_wpp.num_bits < bs.num_bits  # wavefront entry points and row syncs cost bits


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_container_charge_sends_the_whole_mp4(carphone, codec):
    s = _scheme(codec=codec, preset="authors-code", charge="container")
    tx = s.transmit(carphone, AWGN(), 10.0, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)  # decoded as it is read
    e = tx.extra
    mp4 = s._container(carphone, s.cfg.settings(10.0))
    assert e["container_bits"] == 8 * len(mp4) > e["stream_bits"]
    assert tx.payload_bits == e["container_bits"]  # packets + the container's own bytes
    sv = s.cfg.settings(10.0)
    pipe = s._pipe(sv["rate"], sv["modulation"], sv["max_block"])
    assert tx.channel_uses == pipe.channel_uses(e["container_bits"])
    assert e["block_k"] <= 6144 and not tx.failed
    stream = _scheme(codec=codec, preset="authors-code")
    tx_s = stream.transmit(carphone, AWGN(), 10.0, torch.Generator().manual_seed(0))
    np.asarray(tx_s.frames)  # decoded as it is read
    assert tx_s.payload_bits == e["stream_bits"] and "container_bits" not in tx_s.extra
    np.testing.assert_array_equal(tx_s.frames, tx.frames)  # the same packets are decoded


class LastBlockFlipped(Channel):
    """Noiseless, except that the last code block's symbols arrive negated."""

    is_awgn = True

    def __call__(self, x, no, generator):
        y = x.clone()
        y[-1] = -y[-1]
        return y, torch.ones((), dtype=x.dtype)


def test_corrupted_container_bytes_alone_fail_the_trial(carphone):
    """The container's overhead travels after the packets: losing only its last block
    leaves the video intact but fails the trial (the file is broken)."""
    s = _scheme(codec="h264", preset="authors-code", charge="container", max_block=512)
    tx = s.transmit(carphone, LastBlockFlipped(), 30.0, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)
    e = tx.extra
    assert e["container_bits"] - e["stream_bits"] > 512  # the last block is container only
    assert e["crc_failed_blocks"] == 1 and list(tx.failures) == ["mp4 file"]
    clean = s.transmit(carphone, AWGN(), 30.0, torch.Generator().manual_seed(0))
    np.asarray(clean.frames)
    assert not clean.failed
    np.testing.assert_array_equal(tx.frames, clean.frames)


def test_decoder_failure_on_clean_crcs_fails_the_trial(carphone):
    s = _scheme(codec="h264", qp=35, gop=8, rate=0.5, modulation="qpsk", decode_timeout_s=1e-3)
    tx = s.transmit(carphone, AWGN(), 20.0, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)
    assert tx.extra["crc_failed_blocks"] == 0
    assert list(tx.failures) == ["decoder"] and "timeout" in tx.failures["decoder"]


def test_bad_encoder_settings_name_the_parameter():
    with pytest.raises(ValueError, match="profile"):
        CodecLDPCConfig(name="x", type="codec-ldpc", codec="h265", profile="baseline")
    with pytest.raises(ValueError, match="bframes"):
        CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", profile="baseline", bframes=2)
    with pytest.raises(ValueError, match="rate"):
        CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", rate=0.97)
    with pytest.raises(ValueError, match="wpp"):
        CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", wpp=True)
    with pytest.raises(ValueError, match="charge"):
        CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", charge="file")


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_the_cliff_with_table1(carphone, codec):
    """Table I settings: good at 10 dB, collapsed at 0 and 2 dB (every block fails)."""
    s = _scheme(codec=codec, preset="paper-table1")
    psnr = {snr: PSNR()(carphone.frames, s.transmit(carphone, AWGN(), snr,
                                                    torch.Generator().manual_seed(1)).frames)
            for snr in (0, 2, 10)}
    assert psnr[10] > 20
    assert psnr[0] < 13 and psnr[2] < 13
