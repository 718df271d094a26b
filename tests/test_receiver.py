import csv

import cv2
import numpy as np
import pytest
import torch

from lgvsc.link.channels import AWGN
from lgvsc.semantic.adapters import DSA, SFA, resample
from lgvsc.semantic.world_models import SegmentRequest, WorldModel, make_world_model
from lgvsc.sim.metrics import PSNR
from lgvsc.sim.runner import run
from lgvsc.sim.scenario import load_scenario, validate
from lgvsc.sim.schemes.lgvsc import LGVSC, LGVSCConfig
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import VideoSpec, load_video


def _pan(steps=8, dx=3, seed=0):
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.integers(0, 256, (160, 400, 3)).astype(np.float32), (0, 0), 4)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return np.stack([big[16:144, 40 + i * dx:264 + i * dx] for i in range(steps + 1)])


def test_interp_rebuilds_a_linear_pan():
    """A 3 px/frame pan over a smooth texture, 8 frames between keyframes: every
    in-between frame within 27 dB PSNR (measured ~28-31 dB; errors at the entering edge)."""
    frames = _pan()
    out = make_world_model("interp").generate(SegmentRequest(frames[0], frames[-1]), len(frames))
    assert out.shape == frames.shape and out.dtype == np.uint8
    for i in range(1, len(frames) - 1):
        assert PSNR()(frames[i:i + 1], out[i:i + 1]) > 27, i
    blend = np.rint((frames[0].astype(float) + frames[-1]) / 2).astype(np.uint8)
    assert PSNR()(frames[4:5], out[4:5]) > PSNR()(frames[4:5], blend[None]) + 5  # not a cross-fade


def test_interp_holds_across_a_cut():
    a, b = _pan(seed=1)[0], _pan(seed=2)[0]
    out = make_world_model("interp").generate(SegmentRequest(a, b), 6)
    assert (out[1:5] == a).all() and (out[5] == b).all()


class RoundUpStub(WorldModel):
    """Frame counts 8k+1; frame j = j (in pixel 0) so resampling can be checked."""

    def __init__(self, anywhere):
        self.places_keyframes_anywhere = anywhere
        self.calls = []

    def valid_length(self, n):
        return 8 * -(-(n - 1) // 8) + 1

    def generate(self, req, length, last_index, generator):
        self.calls.append((length, last_index))
        out = np.zeros((length, 2, 2, 3), np.uint8)
        out[:, 0, 0, 0] = np.arange(length)
        return out


@pytest.mark.parametrize("n", [1, 2, 5, 9, 17, 30])
def test_adapters_return_exact_lengths(n):
    req = SegmentRequest(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8))
    g = torch.Generator()
    for anywhere in (True, False):
        stub = RoundUpStub(anywhere)
        assert len(DSA().frames(stub, req, n, g)) == n
        assert len(SFA(17).frames(stub, req, n, g)) == n
    stub = RoundUpStub(True)
    DSA().frames(stub, req, n, g)
    assert stub.calls[-1] == (stub.valid_length(n), n - 1)  # last keyframe at n - 1
    pan = _pan(steps=2)
    big = SegmentRequest(pan[0], pan[-1])
    for m in (DSA(), SFA(9)):
        assert len(m.frames(make_world_model("interp"), big, n, g)) == n


def test_resample_keeps_both_ends():
    x = np.arange(17)
    assert list(resample(x, 5)) == [0, 4, 8, 12, 16] and list(resample(x, 1)) == [0]


@pytest.fixture(scope="module")
def clip():
    return load_video(VideoSpec(source="synthetic:pan", frames=24, size=(96, 96)), seed=4)


def _lgvsc(preset, cbr=0.01, **kw):
    return LGVSC(LGVSCConfig(name="x", type="lgvsc", preset=preset, target_cbr=cbr, **kw), RunContext())


@pytest.mark.parametrize("preset", ["skim-sfa", "skem-dsa"])
def test_end_to_end_better_at_high_snr(clip, preset):
    s = _lgvsc(preset)
    lo = s.transmit(clip, AWGN(), 0, torch.Generator().manual_seed(0))
    hi = s.transmit(clip, AWGN(), 20, torch.Generator().manual_seed(0))
    assert lo.frames.shape == hi.frames.shape == clip.frames.shape
    assert PSNR()(clip.frames, hi.frames) > PSNR()(clip.frames, lo.frames)
    f, h, w = clip.shape
    assert hi.channel_uses / (3 * h * w * f) <= 0.01
    assert hi.extra["captions_received"] == hi.extra["captions_sent"]


def test_always_f_frames_even_with_corrupted_captions_and_side_info(clip):
    s = _lgvsc("skem-dsa", side_info={"type": "grid"}, rate=0.9, modulation="qam64")
    tx = s.transmit(clip, AWGN(), -8, torch.Generator().manual_seed(1))
    np.asarray(tx.frames)  # the receiver runs as its frames are read
    assert tx.frames.shape == clip.frames.shape
    assert tx.counts["block_errors"] > 0  # the digital parts did arrive corrupted
    assert len(tx.extra["captions_received"]) == len(tx.extra["captions_sent"])


def test_skim_sfa_equals_skim_dsa_segmentation(clip):
    a = _lgvsc("skim-sfa").plan(clip)
    b = _lgvsc(None, selector="skim", adapter="dsa").plan(clip)
    assert a.segments == b.segments


def test_text_only_is_unavailable_on_the_embedded_tier(tmp_path, capsys):
    sc = validate({"name": "t", "kind": "video", "metrics": ["psnr"],
                   "videos": [{"source": "synthetic:static", "frames": 8, "size": [32, 32]}],
                   "channel": {"type": "awgn", "snr_db": [10]},
                   "schemes": [{"name": "Text-Only", "type": "text-only"},
                               {"name": "S", "type": "softcast", "target_cbr": 0.01, "gop": 4}]})
    out = run(sc, tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert err.count("scheme 'Text-Only' cannot run here") == 1 and "text-to-video" in err
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["scheme"] for r in rows} == {"S"}  # no made-up video


def test_scenario_variables(tmp_path, monkeypatch, write_yaml):
    from lgvsc.sim.errors import UserError

    doc = ("name: v\nkind: video\nvideos: [{source: '${CLIP}'}]\n"
           "channel: {type: awgn, snr_db: [1]}\nschemes: [{name: S, type: softcast, target_cbr: 0.01}]\n")
    path = write_yaml(doc)
    monkeypatch.delenv("CLIP", raising=False)
    with pytest.raises(UserError, match=r"videos\[0\].source: \$\{CLIP\} is not set"):
        load_scenario(path)
    monkeypatch.setenv("CLIP", "builtin:carphone")
    assert load_scenario(path).videos[0].source == "builtin:carphone"


def test_shipped_lgvsc_scenarios_validate(monkeypatch):
    for var in ("LGVSC_VLM_PATH", "LGVSC_WM_PATH", "LGVSC_T2V_PATH", "LGVSC_NTSCC_PATH"):
        monkeypatch.setenv(var, "/models/x")
    for name in ("quickstart.yaml", "fig3_awgn.yaml"):
        sc = load_scenario(f"scenarios/{name}")
        assert {"lgvsc"} <= {s["type"] for s in sc.schemes}


def test_keyframe_count_from_target_cbr(clip):
    f, h, w = clip.shape
    s = _lgvsc("skem-dsa", cbr=0.005, keyframe_cbr=1 / 48)
    k = s.target_keyframes(clip.frames)
    total, per = int(0.005 * 3 * h * w * f), int(3 * h * w / 48)
    cost = lambda n: n * per + s.digital.channel_uses((n - 1) * s.side.num_bits)  # noqa: E731
    assert cost(k) <= total < cost(k + 1)
    assert abs(len(s.plan(clip).keyframes) - k) <= 1  # the closest count SKEM can reach
