"""sim/codecs.py: B-frames (decode order != display order), profiles, mp4 muxing."""

import io

import av
import numpy as np
import pytest

from lgvsc.sim import codecs
from lgvsc.sim.metrics import PSNR

F, H, W = 20, 64, 64


class Clip:
    """Frames that differ clearly from each other: a square moving 2 px per frame
    over a background 9 levels brighter each frame."""

    def __init__(self):
        y, x = np.mgrid[:H, :W]
        self.frames = np.empty((F, H, W, 3), np.uint8)
        for i in range(F):
            img = 30 + 9 * i + (x // 4)
            img[20:32, 2 * i + 4:2 * i + 16] = 235
            self.frames[i] = np.clip(img, 0, 255)[..., None]


@pytest.fixture(scope="module")
def clip():
    return Clip()


@pytest.fixture(scope="module")
def h265_b(clip):
    """x265 ultrafast with its preset's B-frames (3, b-pyramid), keyint 8."""
    return codecs.encode(clip.frames, "h265", 25, 8, "ultrafast", bframes=None)


def _nearest_original(clip, frames) -> list[int]:
    """For each decoded frame, the index of the original frame closest to it (MSE)."""
    a = clip.frames.astype(np.float32)
    return [int(np.argmin(((a - f.astype(np.float32)) ** 2).mean(axis=(1, 2, 3)))) for f in frames]


def test_bframes_come_in_decode_order_and_decode_to_display_order(clip, h265_b):
    assert h265_b.reordered and sorted(h265_b.pts) == list(range(F))
    assert h265_b.pts[:5] == [0, 4, 2, 1, 3]  # I, P, then the B-pyramid
    out = codecs.decode(h265_b.data, h265_b.lengths, "h265", H, W, pts=h265_b.pts)
    assert out.status == "ok" and out.decoded == F and out.concealed == 0
    assert _nearest_original(clip, out.frames) == list(range(F))  # display order, exactly
    assert PSNR()(clip.frames, out.frames) > 33
    # the packets' display indices matter: taking decode order for display order is wrong
    wrong = codecs.decode(h265_b.data, h265_b.lengths, "h265", H, W)
    assert _nearest_original(clip, wrong.frames) != list(range(F))


def test_lost_b_frame_repeats_the_previous_frame_in_display_order(h265_b):
    i = h265_b.pts.index(3)  # a non-reference B-frame, decoded after pictures 4, 2, 1
    data = bytearray(h265_b.data)
    start = sum(h265_b.lengths[:i])
    data[start:start + h265_b.lengths[i]] = b"\x00" * h265_b.lengths[i]
    out = codecs.decode(bytes(data), h265_b.lengths, "h265", H, W, pts=h265_b.pts)
    assert out.frames.shape == (F, H, W, 3) and out.concealed == 1
    np.testing.assert_array_equal(out.frames[3], out.frames[2])
    assert not np.array_equal(out.frames[4], out.frames[3])


def test_h264_bframes_and_baseline_profile(clip):
    b = codecs.encode(clip.frames, "h264", 25, 8, "medium", bframes=2)
    assert b.reordered
    out = codecs.decode(b.data, b.lengths, "h264", H, W, pts=b.pts)
    assert out.concealed == 0 and _nearest_original(clip, out.frames) == list(range(F))
    base = codecs.encode(clip.frames, "h264", 25, 8, "ultrafast", profile="baseline", bframes=None)
    assert not base.reordered
    with pytest.raises(ValueError, match="bframes"):
        codecs.encode(clip.frames, "h264", 25, 8, profile="baseline", bframes=2)
    with pytest.raises(ValueError, match="profile"):
        codecs.encode(clip.frames, "h265", 25, 8, profile="baseline")


def test_mp4_is_a_real_file_with_its_own_overhead(clip):
    gh = codecs.encode(clip.frames, "h264", 30, 8, "ultrafast", profile="baseline",
                       global_header=True)
    inband = codecs.encode(clip.frames, "h264", 30, 8, "ultrafast", profile="baseline")
    assert gh.extradata and not inband.extradata
    mp4 = codecs.mux_mp4(gh, "h264", H, W)
    assert mp4[4:8] == b"ftyp" and len(mp4) > len(inband.data)
    with av.open(io.BytesIO(mp4)) as c:
        st = c.streams.video[0]
        assert st.profile == "Baseline" or st.profile == "Constrained Baseline"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(st)]
    assert len(frames) == F
    assert PSNR()(clip.frames, np.stack(frames)) > 25


def test_x265_banner_sei_is_not_in_band(clip):
    """The in-band stream carries no x265 option-string SEI (repeated per keyframe it
    would cost ~2.4 kB each); the mp4 keeps it once, as ffmpeg writes it."""
    inband = codecs.encode(clip.frames, "h265", 30, 4, "ultrafast", bframes=None)
    gh = codecs.encode(clip.frames, "h265", 30, 4, "ultrafast", bframes=None, global_header=True)
    assert b"x265 (build" not in inband.data
    assert b"x265 (build" in gh.extradata
    assert b"x265 (build" in codecs.mux_mp4(gh, "h265", H, W)
