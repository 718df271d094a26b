"""codec-ldpc in bounded memory: the streaming decoder (sim/codecs.py), the batched
digital pipe (link/digital.py) and the scheme's FrameStream (sim/schemes/codec_ldpc.py)."""

from __future__ import annotations

import textwrap
import time
import tracemalloc

import numpy as np
import pytest
import torch

from lgvsc.link.channels import AWGN, RayleighBlockFading, snr_db_to_no
from lgvsc.link.digital import DigitalPipe
from lgvsc.sim import codecs
from lgvsc.sim.schemes.codec_ldpc import CodecLDPC, CodecLDPCConfig
from lgvsc.sim.schemes.transmission import FrameStream
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import VideoSpec, load_video

H, W = 64, 64


def _clip(frames: int, seed: int = 3) -> np.ndarray:
    return np.asarray(load_video(VideoSpec(source="synthetic:pan", frames=frames, size=(H, W)),
                                 seed=seed).frames)


@pytest.fixture(scope="module")
def clip():
    return _clip(24)


def _read(stream) -> np.ndarray:
    return np.concatenate(list(stream)) if len(stream) else np.zeros((0, H, W, 3), np.uint8)



# -- the digital pipe in batches -------------------------------------------------------
def _send(pipe, bits, channel, snr, batch):
    pipe.batch_blocks = batch
    return pipe(bits, channel, snr_db_to_no(snr), torch.Generator().manual_seed(1))


@pytest.mark.parametrize("coding,mod,rate,snr", [("ldpc5g", "qpsk", 0.5, 1.5),
                                                 ("ldpc5g", "qam16", 0.75, 8.0),
                                                 ("uncoded", "qpsk", 0.5, 6.0)])
def test_pipe_batches_of_8_blocks_reproduce_one_call_on_awgn(coding, mod, rate, snr):
    """CPU randn: Box-Muller on aligned groups of 16 values, so cutting the draw after
    a multiple of 8 blocks of complex symbols gives the very same noise."""
    bits = torch.from_numpy(np.random.default_rng(0).integers(0, 2, 60_003).astype(np.uint8))
    pipe = DigitalPipe(mod, coding, rate, 1000 if coding == "ldpc5g" else 500)
    one = _send(pipe, bits, AWGN(), snr, 10**9)
    assert one.num_blocks > 40
    for batch in (8, 16, 24):
        r = _send(pipe, bits, AWGN(), snr, batch)
        assert torch.equal(r.bits, one.bits) and torch.equal(r.crc_ok, one.crc_ok)
        assert r.bits.dtype == one.bits.dtype == torch.uint8 and r.bits.shape == bits.shape
        assert (r.channel_uses, r.coded_bits, r.raw_bit_errors, r.bit_errors, r.block_errors,
                r.iterations, r.num_blocks) == (one.channel_uses, one.coded_bits,
                                                one.raw_bit_errors, one.bit_errors,
                                                one.block_errors, one.iterations, one.num_blocks)


@pytest.mark.parametrize("channel", [AWGN(), RayleighBlockFading(7)])
def test_pipe_other_batches_are_consistent(channel):
    """Batches of 3 blocks (AWGN) or any batches (fading: gains drawn per call) draw
    other noise: the same costs and shapes, statistically the same errors."""
    bits = torch.from_numpy(np.random.default_rng(1).integers(0, 2, 80_000).astype(np.uint8))
    pipe = DigitalPipe("qpsk", "uncoded", 0.5, 402)  # 201 symbols a block: not a multiple of 8
    one = _send(pipe, bits, channel, 4.0, 10**9)
    r = _send(pipe, bits, channel, 4.0, 3)
    assert (r.channel_uses, r.coded_bits, r.num_blocks) == (one.channel_uses, one.coded_bits,
                                                           one.num_blocks)
    assert r.bits.shape == one.bits.shape and r.crc_ok.shape == one.crc_ok.shape
    assert not torch.equal(r.bits, one.bits)
    # uncoded QPSK: raw errors ~ Binomial(coded_bits, p); both within a few sigma
    p = one.raw_bit_errors / one.coded_bits
    sigma = np.sqrt(one.coded_bits * p * (1 - p))
    assert abs(r.raw_bit_errors - one.raw_bit_errors) < 6 * sigma * np.sqrt(2)
    assert r.bit_errors <= r.raw_bit_errors  # no code: the payload's errors and the CRCs' 


def test_pipe_default_batch_is_bounded_and_a_multiple_of_8():
    pipe = DigitalPipe("qpsk", "ldpc5g", 0.5)
    link_n = 16892
    b = pipe.batch_size(8448, link_n)
    assert b % 8 == 0 and 8 <= b <= 64
    assert DigitalPipe("qpsk", "ldpc5g", 0.5, batch_blocks=5).batch_size(8448, link_n) == 5
    with pytest.raises(ValueError, match="batch_blocks"):
        DigitalPipe("qpsk", batch_blocks=0)


# -- the streaming decoder -------------------------------------------------------------
def _pyav_decode(bs: codecs.Bitstream, codec: str) -> np.ndarray:
    import av

    ctx = av.CodecContext.create(codecs.DECODERS[codec], "r")
    got = {}
    for data, pts in zip(bs.packets, bs.pts):
        pkt = av.Packet(data)
        pkt.pts = pts
        got.update({fr.pts: fr.to_ndarray(format="rgb24") for fr in ctx.decode(pkt)})
    got.update({fr.pts: fr.to_ndarray(format="rgb24") for fr in ctx.decode(None)})
    return np.stack([got[i] for i in range(len(bs.packets))])


@pytest.mark.parametrize("codec,bframes", [("h264", 0), ("h265", None)])
def test_stream_of_a_clean_bitstream_is_pyavs_decoding(clip, codec, bframes):
    bs = codecs.encode(clip, codec, 30, 8, bframes=bframes)
    ref = _pyav_decode(bs, codec)
    stream = codecs.decode_stream(bs.data, bs.lengths, codec, H, W, pts=bs.pts,
                                  chunk_frames=5, window=4)
    chunks = list(stream)
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 4]
    np.testing.assert_array_equal(np.concatenate(chunks), ref)
    assert (stream.status, stream.decoded, stream.concealed) == ("ok", len(clip), 0)
    assert stream.peak_buffered <= 4
    whole = codecs.decode(bs.data, bs.lengths, codec, H, W, pts=bs.pts)
    np.testing.assert_array_equal(whole.frames, ref)
    with pytest.raises(RuntimeError, match="once"):
        iter(stream)


def test_stream_of_corrupted_bitstreams_never_raises(clip):
    bs = codecs.encode(clip, "h264", 30, 6)
    rng = np.random.default_rng(11)
    f = len(clip)
    for case in range(6):
        data = np.frombuffer(bs.data, np.uint8).copy()
        pos = rng.integers(0, len(data), 1 + 40 * case)
        data[pos] = rng.integers(0, 256, len(pos)).astype(np.uint8)
        data = data.tobytes()
        stream = codecs.decode_stream(data, bs.lengths, "h264", H, W, chunk_frames=3,
                                      window=2)
        frames = _read(stream)
        assert frames.shape == (f, H, W, 3) and frames.dtype == np.uint8
        assert stream.decoded + stream.concealed == f
        assert stream.status in ("ok", "crashed", "timeout")
        whole = codecs.decode(data, bs.lengths, "h264", H, W)  # other window, same frames
        np.testing.assert_array_equal(whole.frames, frames)
        assert (whole.decoded, whole.concealed) == (stream.decoded, stream.concealed)


def _fake_child(tmp_path, body: str):
    """A stand-in decoder child: reads the header, runs ``body`` (``rec(i, v)`` writes
    a record of index ``i`` filled with ``v``)."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""\
        import json, sys, time
        hdr = json.loads(sys.stdin.buffer.readline())
        n = hdr["height"] * hdr["width"] * 3
        out = sys.stdout.buffer
        def rec(i, v):
            out.write(i.to_bytes(4, "little") + bytes([v]) * n)
            out.flush()
        """) + textwrap.dedent(body))
    return str(script)


def test_reorder_window_semantics(tmp_path, monkeypatch):
    """Last record of an index wins; a record more than ``window`` frames late is
    ignored; missing frames repeat the last good one, mid-grey before the first."""
    monkeypatch.setattr(codecs, "_CHILD", _fake_child(tmp_path, """\
        rec(2, 20); rec(1, 10); rec(2, 21); rec(9, 90); rec(3, 30); rec(99, 1); rec(7, 70)
        """))
    f = 12
    stream = codecs.decode_stream(b"", [0] * f, "h264", 4, 6, chunk_frames=5, window=4)
    frames = _read(stream)
    assert frames.shape == (f, 4, 6, 3)
    # 9 arrived: frames 0..5 emitted (3 too, so it came late); 7 is in the window
    want = [codecs.GREY, 10, 21, 21, 21, 21, 21, 70, 70, 90, 90, 90]
    assert [int(fr[0, 0, 0]) for fr in frames] == want
    assert (stream.status, stream.decoded, stream.concealed) == ("ok", 4, f - 4)
    assert all((fr == fr[0, 0, 0]).all() for fr in frames)


def test_timeout_mid_stream_conceals_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(codecs, "_CHILD", _fake_child(tmp_path, """\
        rec(0, 7); rec(1, 8); out.write(b"\\x02\\x00"); out.flush(); time.sleep(60)
        """))
    t = time.monotonic()
    stream = codecs.decode_stream(b"", [0] * 6, "h264", 4, 6, timeout_s=2.0)
    frames = _read(stream)
    assert time.monotonic() - t < 20
    assert stream.status == "timeout" and (stream.decoded, stream.concealed) == (2, 4)
    assert [int(fr[0, 0, 0]) for fr in frames] == [7, 8, 8, 8, 8, 8]


def test_crash_mid_record_keeps_what_came(tmp_path, monkeypatch):
    monkeypatch.setattr(codecs, "_CHILD", _fake_child(tmp_path, """\
        rec(0, 3); out.write((1).to_bytes(4, "little") + b"xx"); out.flush(); sys.exit(3)
        """))
    d = codecs.decode(b"", [0] * 3, "h264", 4, 6)
    assert d.status == "crashed" and (d.decoded, d.concealed) == (1, 2)
    assert (d.frames == 3).all()


def test_tiny_timeout_conceals_everything(clip):
    bs = codecs.encode(clip, "h264", 30, 8)
    stream = codecs.decode_stream(bs.data, bs.lengths, "h264", H, W, timeout_s=1e-3)
    frames = _read(stream)
    assert stream.status == "timeout" and stream.concealed == len(clip) and stream.decoded == 0
    assert frames.shape == clip.shape and (frames == codecs.GREY).all()


def test_slow_reader_does_not_time_out(clip):
    """The limit counts the time spent waiting for the child, not the reader's."""
    bs = codecs.encode(clip, "h264", 30, 8)
    stream = codecs.decode_stream(bs.data, bs.lengths, "h264", H, W, timeout_s=4.0,
                                  chunk_frames=2)
    t = time.monotonic()
    for _ in stream:
        time.sleep(0.45)
    assert time.monotonic() - t > 4.0
    assert stream.status == "ok" and stream.concealed == 0


def test_parent_memory_does_not_grow_with_the_clip():
    """The parent holds a window and a chunk of pictures, not the clip."""
    peaks = {}
    frame_bytes = H * W * 3
    for f in (48, 192):
        clip = _clip(f, seed=5)
        bs = codecs.encode(clip, "h264", 30, 12)
        data, lengths = bs.data, bs.lengths
        del clip, bs
        tracemalloc.start()
        try:
            stream = codecs.decode_stream(data, lengths, "h264", H, W, chunk_frames=8, window=8)
            n = sum(len(c) for c in stream)
            peaks[f] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert n == f and stream.status == "ok"
    assert peaks[192] < 1.3 * peaks[48] + (256 << 10), peaks
    assert peaks[192] < 48 * frame_bytes, peaks  # a quarter of the 192-frame clip


# -- the scheme's stream ---------------------------------------------------------------
def _scheme(**cfg):
    return CodecLDPC(CodecLDPCConfig(name="x", type="codec-ldpc", codec="h264", qp=32, gop=8,
                                     **cfg), RunContext())


def test_transmit_streams_and_fills_results_at_the_end():
    video = load_video(VideoSpec(source="synthetic:pan", frames=20, size=(H, W)), seed=3)
    tx = _scheme().transmit(video, AWGN(), 12.0, torch.Generator().manual_seed(0))
    assert isinstance(tx.frames, FrameStream) and tx.frames.shape == (20, H, W, 3)
    with pytest.raises(RuntimeError, match="known once its frames are read"):
        tx.extra  # not decoded yet: no partial result
    frames = _read(tx.frames)
    assert tx.extra["decoder_status"] == "ok"
    assert tx.extra["frames_concealed"] == 0 and not tx.failed


def test_decoder_failure_is_set_when_the_stream_ends():
    video = load_video(VideoSpec(source="synthetic:pan", frames=12, size=(H, W)), seed=3)
    tx = _scheme(decode_timeout_s=1e-3).transmit(video, AWGN(), 20.0,
                                                 torch.Generator().manual_seed(0))
    frames = _read(tx.frames)
    assert (frames == codecs.GREY).all()
    assert tx.extra["decoder_status"] == "timeout" and tx.extra["frames_concealed"] == 12
    assert list(tx.failures) == ["decoder"] and "timeout" in tx.failures["decoder"]
