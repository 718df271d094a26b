"""Streaming: short clips give what the whole-clip implementation gave, bit for bit,
and long clips run in bounded memory."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import short_clips
from lgvsc.sim.metrics import paired_chunks
from lgvsc.sim.schemes.transmission import FrameStream


@pytest.mark.parametrize("channel", sorted(short_clips.CHANNELS))
def test_short_clips_unchanged(channel):
    want = json.loads(short_clips.DATA.read_text())[channel]
    got = short_clips.outcomes(channel)
    assert sorted(got) == sorted(want)
    diff = {u: (got[u], want[u]) for u in want if got[u] != want[u]}
    assert not diff, json.dumps(diff, indent=1)[:3000]


# -- reading a file on demand -------------------------------------------------
@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """A 600-frame 180x320 procedural H.264 file (about 3 s to write)."""
    from lgvsc.sim.longclip import write_clip

    return write_clip(tmp_path_factory.mktemp("long") / "clip.mp4", 600, 180, 320, seed=4,
                      cut_every=150)


def test_file_frames_random_access_matches_a_sequential_read(long_clip):
    from lgvsc.sim.video import VideoSpec, load_video

    spec = VideoSpec(source=str(long_clip), frames=90, start=7, stride=3, size=(72, 128))
    whole = np.concatenate(list(load_video(spec).chunks(13)))
    assert whole.shape == (90, 72, 128, 3)
    v = load_video(spec)
    assert np.array_equal(v.frames[50], whole[50])
    assert np.array_equal(v.frames[10:20], whole[10:20])  # backwards: reopens
    assert np.array_equal(v.frames[[89, 0, 45]], whole[[89, 0, 45]])
    assert np.array_equal(v.frames[-1], whole[-1]) and v.frames.reopened <= 6
    # read in order once, the file's keyframes are known: a late frame read backwards
    # is decoded from the keyframe before it (checked against that read), not the start
    again = load_video(spec)
    list(again.chunks())
    src = spec.start + 80 * spec.stride
    start, before = again.frames._seek_point(src), again.frames.decoded
    assert start > 0
    assert np.array_equal(again.frames[80], whole[80])
    assert again.frames.decoded - before == src - start + 1
    assert len(v.frames._cache) <= v.frames.CACHE
    again = pickle.loads(pickle.dumps(v))  # a worker gets the reference, not frames
    assert again.frames._decoder is None and np.array_equal(again.frames[5], whole[5])
    with pytest.raises(IndexError):
        v.frames[90]


def test_frame_stream_is_checked():
    ok = FrameStream(iter([np.zeros((3, 4, 4, 3), np.uint8)] * 2), 6, 4, 4)
    assert sum(len(c) for c in ok) == 6
    with pytest.raises(RuntimeError, match="read once"):
        list(ok)
    short = FrameStream(iter([np.zeros((3, 4, 4, 3), np.uint8)]), 4, 4, 4)
    with pytest.raises(RuntimeError, match="ended after 3 of its 4"):
        list(short)
    wrong = FrameStream(iter([np.zeros((3, 4, 5, 3), np.uint8)]), 3, 4, 4)
    with pytest.raises(RuntimeError, match="expected uint8"):
        list(wrong)
    assert np.asarray(FrameStream(iter([np.ones((2, 4, 4, 3), np.uint8)]), 2, 4, 4)).sum() == 96


def test_paired_chunks_regroup_and_refuse_a_length_mismatch():
    a = [np.full((5, 2, 2, 3), i, np.uint8) for i in range(3)]
    b = [np.concatenate(a)[s:s + 4] for s in range(0, 15, 4)]
    pairs = list(paired_chunks(iter(a), iter(b)))
    assert [len(x) for x, _ in pairs] == [4, 1, 3, 2, 2, 3]
    assert all(np.array_equal(x, y) for x, y in pairs)
    with pytest.raises(RuntimeError, match="received video has more frames"):
        list(paired_chunks(iter(a), iter(b + [b[0]])))


def test_world_model_chunks_are_its_frames():
    """interp made chunk by chunk = interp made whole; DSA/SFA resampling by chunks =
    resampling the whole segment."""
    from lgvsc.semantic.adapters import SFA, resample, resample_chunks
    from lgvsc.semantic.world_models import SegmentRequest, make_world_model

    rng = np.random.default_rng(0)
    first, last = (rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(2))
    wm = make_world_model("interp")
    req = SegmentRequest(first, last, "", "", None)
    whole = wm.generate(req, 37, 30)
    parts = list(wm.generate_chunks(req, 37, 30, None, size=5))
    assert max(len(p) for p in parts) == 5 and np.array_equal(np.concatenate(parts), whole)
    for n in (1, 7, 37, 80):
        got = np.concatenate(list(resample_chunks(iter(parts), 37, n, size=6)))
        assert np.array_equal(got, resample(whole, n))
    sfa = SFA(length=9)
    assert np.array_equal(np.concatenate(list(sfa.chunks(wm, req, 50, None, size=4))),
                          sfa.frames(wm, req, 50, None))


# -- memory that does not grow with the clip ----------------------------------
MEMORY_SCHEMES = {
    "softcast": {"name": "s", "type": "softcast", "target_cbr": 0.05},
    "codec-ldpc": {"name": "s", "type": "codec-ldpc", "codec": "h264", "qp": 32, "gop": 12},
    # K grows with the clip (keyframe_cbr fixed): 60 keyframes in 300 frames, 120 in 600
    "lgvsc-skim": {"name": "s", "type": "lgvsc", "preset": "skim-sfa", "target_cbr": 0.004,
                   "keyframe_cbr": 0.02},
    "lgvsc-skem": {"name": "s", "type": "lgvsc", "preset": "skem-dsa", "target_cbr": 0.004,
                   "keyframe_cbr": 0.02, "threshold": 0.35},
    "keyframe-jscc": {"name": "s", "type": "keyframe-jscc", "codec": {"type": "softcast-image"},
                      "every": 20, "target_cbr": 0.004},
    "keyframes": "keyframes",
}


def _peak_rss(clip, frames: int, scheme) -> int:
    """Peak RSS (bytes) of one trial of ``scheme`` on the first ``frames`` frames of
    ``clip``, in a fresh process."""
    arg = scheme if isinstance(scheme, str) else json.dumps(scheme)
    p = subprocess.Popen([sys.executable, str(Path(__file__).with_name("memory_probe.py")),
                          str(clip), str(frames), arg], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0, err[-2000:]
    return usage.ru_maxrss * 1024


@pytest.mark.parametrize("scheme", sorted(MEMORY_SCHEMES))
def test_peak_memory_does_not_grow_with_the_clip(long_clip, scheme):
    """600 frames need no more memory than 300 (each scheme spends the same per frame;
    300 is more than a SoftCast planning window), up to less than one uint8 copy of
    the 600-frame clip (104 MB): the whole-clip implementation held the clip, the
    received clip and float64 copies of both for the metrics, so its peak grew by
    over ten copies of the 300 added frames."""
    raw = 600 * 180 * 320 * 3
    short = _peak_rss(long_clip, 300, MEMORY_SCHEMES[scheme])
    long = _peak_rss(long_clip, 600, MEMORY_SCHEMES[scheme])
    assert long - short < raw, (short, long)


def test_softcast_sends_a_long_clip_window_by_window(monkeypatch):
    """A clip longer than SoftCast's planning window is sent as consecutive windows, each
    spending its share of the budget; the trial's accounting is their sum."""
    import torch

    from lgvsc.link.cbr import BUDGET_FLOOR
    from lgvsc.link.channels import AWGN
    from lgvsc.sim.metrics import PSNR
    from lgvsc.sim.schemes import SCHEMES
    from lgvsc.sim.seeding import RunContext
    from lgvsc.sim.video import VideoSpec, load_video

    clip = load_video(VideoSpec(source="builtin:carphone", frames=40, size=(72, 88)))
    cls = SCHEMES.get("softcast")
    cfg = cls.Config.model_validate({"name": "s", "type": "softcast", "target_cbr": 0.05,
                                     "gop": 8})
    whole = cls(cfg, RunContext())
    monkeypatch.setattr(cls, "WINDOW_FRAMES", 16)
    parts = cls(cfg, RunContext())
    assert [p.shape[0] for p in parts.windows(clip)] == [16, 16, 8]
    out = {}
    for name, s in (("whole", whole), ("parts", parts)):
        tx = s.transmit(clip, AWGN(), 25.0, torch.Generator().manual_seed(2))
        frames = np.asarray(tx.frames)
        budget = s.target_uses(clip)
        assert frames.shape == (40, 72, 88, 3) and not tx.failed
        assert BUDGET_FLOOR * budget <= tx.channel_uses <= budget
        out[name] = (PSNR()(clip.frames, frames), tx)
    tx = out["parts"][1]
    assert tx.extra["windows"] == 3 and sum(tx.extra["chunk_grid"].values()) == 3
    assert tx.extra["analog_uses"] + tx.extra["meta_uses"] == tx.channel_uses
    assert tx.counts["bits"] == tx.extra["meta_bits"] == tx.payload_bits
    assert abs(out["parts"][0] - out["whole"][0]) < 1.5, (out["parts"][0], out["whole"][0])
    low = parts.transmit(clip, AWGN(), -12.0, torch.Generator().manual_seed(2))
    np.asarray(low.frames)
    assert low.failed and list(low.failures) == ["metadata"]
    assert "window [0:16]:" in low.failures["metadata"]
