"""The streaming ``softcast``: same outputs as the whole-clip implementation on
short clips, bounded memory on long ones, several analog segments when asked."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from lgvsc.link.cbr import BUDGET_FLOOR
from lgvsc.link.channels import AWGN, RayleighBlockFading
from lgvsc.sim.metrics import PSNR
from lgvsc.sim.schemes import softcast as sc_mod
from lgvsc.sim.schemes.softcast import SoftCast, SoftCastConfig
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import Video, VideoSpec, load_video


def _scheme(**kw):
    return SoftCast(SoftCastConfig(name="sc", type="softcast", **kw), RunContext())


def _frames(tx) -> np.ndarray:
    return tx.frames if isinstance(tx.frames, np.ndarray) else np.concatenate(list(tx.frames))


@pytest.fixture(scope="module")
def carphone():
    """40 frames of carphone as a file clip (FileFrames) and as an array."""
    v = load_video(VideoSpec(source="builtin:carphone", frames=40, size=(72, 88)))
    return v, Video(frames=np.asarray(v.frames), name=v.name)


def test_segments_meet_the_budget_and_keep_quality(carphone, monkeypatch):
    _, clip = carphone
    one = _scheme(target_cbr=0.05, gop=8)
    ref = _frames(one.transmit(clip, AWGN(), 30, torch.Generator().manual_seed(0)))
    monkeypatch.setattr(SoftCast, "SEGMENT_VALUES", 4000)
    s = _scheme(target_cbr=0.05, gop=8)
    p = s.plan(clip)
    segs = s.coder.segments(p.num_values)
    assert len(segs) > 5 and all(b - a == 4000 for a, b in segs[:-1])
    assert p.analog_uses == sum(s.analog.symbols_for(b - a) for a, b in segs)
    tx = s.transmit(clip, AWGN(), 30, torch.Generator().manual_seed(0))
    out = _frames(tx)
    budget = s.target_uses(clip)
    assert BUDGET_FLOOR * budget <= tx.channel_uses <= budget
    assert tx.channel_uses == tx.extra["analog_uses"] + tx.extra["meta_uses"] == p.channel_uses
    assert out.shape == clip.frames.shape
    assert abs(PSNR()(clip.frames, out) - PSNR()(clip.frames, ref)) < 0.3


def test_segments_are_the_one_generator_calls_in_order(carphone, monkeypatch):
    """The streamed result equals sending the whole clip's values through the pipe
    segment by segment with the one generator, then the metadata (the draws the
    streaming receiver reproduces with cloned generator states)."""
    _, clip = carphone
    monkeypatch.setattr(SoftCast, "SEGMENT_VALUES", 3000)
    s = _scheme(target_cbr=0.04, gop=8)
    chan, snr = RayleighBlockFading(coherence=7), 6.0
    got = s.transmit(clip, chan, snr, torch.Generator().manual_seed(4))
    out = _frames(got)
    sets = sc_mod.to_sets(clip.frames, 8)
    p = s.coder.plan(sets, s.target_uses(clip), np.tile(sc_mod.lin.RGB_WEIGHTS, len(sets) // 3))
    gen, no = torch.Generator().manual_seed(4), 10 ** (-snr / 10)
    res = [s.analog(torch.from_numpy(p.values[a:b]).float(), chan, no, gen)
           for a, b in s.coder.segments(p.num_values)]
    meta = s.meta_pipe(torch.from_numpy(p.bits), chan, no, gen)
    y = torch.cat([r.x_hat for r in res]).double().numpy()
    var = torch.cat([r.noise_var for r in res]).double().numpy()
    want = sc_mod.from_sets(s.coder.decode(meta.bits.numpy(), [x.shape for x in sets], y, var))
    assert np.array_equal(out, want)
    assert got.channel_uses == sum(r.channel_uses for r in res) + meta.channel_uses


@pytest.mark.parametrize("segment", [None, 2500])
def test_file_clip_and_array_clip_agree(carphone, monkeypatch, segment):
    file_clip, array_clip = carphone
    if segment:
        monkeypatch.setattr(SoftCast, "SEGMENT_VALUES", segment)
    s = _scheme(target_cbr=0.03, gop=16)  # 40 frames: GOPs of 16, 16, 8
    s.plan(file_clip)
    opened = file_clip.frames.reopened
    a = s.transmit(file_clip, AWGN(), 5, torch.Generator().manual_seed(1))
    assert not isinstance(a.frames, np.ndarray)  # a file clip streams
    fa = _frames(a)
    # read forward, whatever the segments (the partial chunk's GOPs once, then in order)
    assert file_clip.frames.reopened - opened <= 2
    b = s.transmit(array_clip, AWGN(), 5, torch.Generator().manual_seed(1))
    assert np.array_equal(fa, _frames(b))
    assert (a.channel_uses, a.counts, a.extra) == (b.channel_uses, b.counts, b.extra)


def test_corrupted_metadata_with_segments_degrades(carphone, monkeypatch):
    file_clip, _ = carphone
    monkeypatch.setattr(SoftCast, "SEGMENT_VALUES", 2000)
    s = _scheme(target_cbr=0.03, gop=8, meta_rate=0.9, meta_modulation="qam64")
    tx = s.transmit(file_clip, AWGN(), -5, torch.Generator().manual_seed(0))
    out = _frames(tx)
    assert out.shape == file_clip.frames.shape and tx.failed and tx.extra["meta_crc_failed"] > 0


class _Lazy:
    """Frames made on demand (a stand-in for a long file clip)."""

    dtype = np.dtype(np.uint8)

    def __init__(self, count: int, h: int = 96, w: int = 128):
        self.shape = (count, h, w, 3)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        y, x = np.mgrid[:self.shape[1], :self.shape[2]]
        return np.stack([(np.stack([x * 2 + i, y * 2 - i, x + y + 3 * i], -1) % 256)
                         .astype(np.uint8) for i in np.arange(self.shape[0])[key]])


def _peak(scheme, video) -> int:
    tracemalloc.start()
    try:
        for _ in scheme.transmit(video, AWGN(), 10, torch.Generator().manual_seed(0)).frames:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_working_set_does_not_grow_with_the_clip(monkeypatch):
    """Within a planning window the plan's per-chunk statistics grow with the frames;
    past it, a clip is sent window by window: 16 and 64 frames in windows of 16."""
    monkeypatch.setattr(SoftCast, "SEGMENT_VALUES", 1 << 14)
    monkeypatch.setattr(SoftCast, "WINDOW_FRAMES", 16)
    peaks, plans = [], []
    for f in (16, 64):
        s = _scheme(target_cbr=0.1, gop=8, chunks=[(8, 8)])
        video = Video(frames=_Lazy(f), name=f"lazy{f}")
        for _ in s.transmit(video, AWGN(), 10, torch.Generator().manual_seed(0)).frames:
            pass  # warm up (the metadata code of this length is built once)
        windows = s.windows(video)
        held = values = 0
        for part in windows:
            plan = s.plan(part)
            held += sum(x.nbytes for x in vars(plan).values() if isinstance(x, np.ndarray))
            values += plan.num_values
            assert plan.values is None
        assert held < 0.1 * 8 * values
        s._plans.clear()
        peaks.append(_peak(s, video))
        plans.append(values)
    assert plans[1] > 3.5 * plans[0]  # four times the values ...
    assert peaks[1] < 1.3 * peaks[0], peaks  # ... in about the same memory
