import json

import numpy as np
import pytest
import torch

from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.digital import DigitalPipe
from lgvsc.semantic.calibration import calibrate_threshold
from lgvsc.semantic.captioners import GivenCaption, make_captioner
from lgvsc.semantic.psss import PSSS, psss_prompt
from lgvsc.semantic.scorers import Scorer, make_scorer
from lgvsc.semantic.selectors import SKEM, SKIM, boundary_f1
from lgvsc.semantic.side_info import MotionScalar
from lgvsc.semantic.text_bits import decode_texts
from lgvsc.semantic.transmitter import Transmitter, keyframes_for_budget
from lgvsc.sim.cli import main
from lgvsc.sim.synthetic import PRESETS, render_synthetic
from lgvsc.sim.video import VideoSpec, load_video

BIKES_CUTS = (30, 76, 137, 187, 242)


class SceneStub(Scorer):
    """Frames carry a scene id in pixel (0, 0, 0); S_rel = 0.9 across scenes, -0.5 within."""

    def score_batch(self, key, candidates, focus):
        self.cost.forward_passes += 1
        return [PSSS.from_s_rel(0.9 if c[0, 0, 0] != key[0, 0, 0] else -0.5) for c in candidates]


def _scene_clip(ids):
    f = np.zeros((len(ids), 4, 4, 3), np.uint8)
    f[:, 0, 0, 0] = ids
    return f


def test_psss_formulas():
    p = PSSS(p_yes=0.2, p_no=0.7)
    assert p.s_abs == 0.2 and p.s_rel == pytest.approx(0.5) and p.mass == pytest.approx(0.9)
    assert PSSS.from_s_rel(0.35).s_rel == pytest.approx(0.35)
    with pytest.raises(ValueError, match="p_yes"):
        PSSS(p_yes=1.2, p_no=0.0)
    with pytest.raises(ValueError, match="<= 1"):
        PSSS(p_yes=0.6, p_no=0.6)
    q = psss_prompt("a cat", "a dog", "the animal")
    assert q.startswith("a cat, a dog. Determine whether") and "perspective of the animal" in q


def test_skim_equal_segments_and_last_frame():
    frames = _scene_clip([0] * 64)
    assert SKIM(4).select(frames).keyframes == [0, 16, 32, 48, 63]
    assert SKIM(3).select(frames[:10]).keyframes == [0, 3, 6, 9]
    assert SKIM(4).select(frames[:1]).keyframes == [0]
    assert SKIM(4).select(frames[:1]).segments() == [(0, 0)]


def test_skem_exact_keyframes_with_stub():
    ids = [0] * 10 + [1] * 5 + [2] * 2 + [3] * 8  # scene changes at 10, 15, 17
    frames = _scene_clip(ids)
    assert SKEM(SceneStub()).select(frames).keyframes == [0, 10, 15, 17, 24]
    # min_len drops the change 2 frames after 15 (17 is within min_len 3 of 15): the next
    # candidate, 18, differs from keyframe 15 too
    assert SKEM(SceneStub(), min_len=3).select(frames).keyframes == [0, 10, 15, 18, 24]
    # max_len forces keyframes inside the long first scene
    assert SKEM(SceneStub(), max_len=4).select(frames).keyframes == [0, 4, 8, 10, 14, 15, 17, 21, 24]
    # stride 2 sees frames 2, 4, ...: changes at 10 and then 16 (scene 2) and 18 (scene 3)
    assert SKEM(SceneStub(), stride=2).select(frames).keyframes == [0, 10, 16, 18, 24]
    # a higher threshold than every score: only the first and last frames
    assert SKEM(SceneStub(), threshold=0.95).select(frames).keyframes == [0, 24]
    # batching finds the same keyframes and counts the calls it made
    stub = SceneStub()
    sel = SKEM(stub, batch=4).select(frames)
    assert sel.keyframes == [0, 10, 15, 17, 24] and stub.cost.forward_passes < 24


def test_skem_prefilter_prunes_candidates():
    frames = _scene_clip([0] * 10 + [1] * 10)
    vlm, pre = SceneStub(), SceneStub()
    sel = SKEM(vlm, prefilter=pre, prefilter_threshold=0.0).select(frames)
    assert sel.keyframes == [0, 10, 19]
    assert vlm.cost.pairs == 1 and pre.cost.pairs == 18


@pytest.mark.parametrize("preset", PRESETS)
def test_classical_scorer_finds_synthetic_boundaries(preset):
    f1s = []
    for seed in range(3):
        for f, h, w in ((64, 128, 224), (40, 96, 96)):
            clip = render_synthetic(preset, f, h, w, seed + 20)  # seeds not used in calibration
            sel = SKEM(make_scorer("classical")).select(clip.frames)
            f1s.append(boundary_f1(sel.keyframes[1:-1], clip.boundaries))
    assert np.mean(f1s) >= 0.95, f1s


def test_classical_scorer_finds_bikes_cuts():
    frames = load_video(VideoSpec(source="builtin:bikes")).frames
    sel = SKEM(make_scorer("classical")).select(frames)
    assert all(c in sel.keyframes for c in BIKES_CUTS)  # recall 1
    f1 = boundary_f1(sel.keyframes[1:-1], BIKES_CUTS)
    assert f1 >= 0.5  # extra keyframes where a car crosses the frame, shots 30-137
    eta, auto = calibrate_threshold(frames, make_scorer("classical"), 7)
    assert len(auto.keyframes) == 7
    assert boundary_f1(auto.keyframes[1:-1], BIKES_CUTS, tol=3) == 1.0


def test_calibration_hits_target_and_scores_once():
    clip = render_synthetic("cuts", 64, 96, 96, 3)
    scorer = make_scorer("classical")
    eta, sel = calibrate_threshold(clip.frames, scorer, len(clip.boundaries) + 2)
    assert len(sel.keyframes) == len(clip.boundaries) + 2
    assert boundary_f1(sel.keyframes[1:-1], clip.boundaries) == 1.0
    single = make_scorer("classical")
    SKEM(single, threshold=eta).select(clip.frames)
    assert scorer.cost.pairs < 4 * single.cost.pairs  # memoised across ~30 trial thresholds
    for target in (2, 5, 9):
        assert len(calibrate_threshold(clip.frames, make_scorer("classical"), target)[1].keyframes) == target


def test_transmitter_plan_budget_and_captions_over_the_air():
    clip = render_synthetic("objects", 48, 64, 96, 1)
    pipe = DigitalPipe("qpsk", rate=0.5)
    side = MotionScalar(pairs=2)
    tx = Transmitter(SKEM(make_scorer("classical")), GivenCaption(clip.captions, clip.boundaries),
                     side, pipe, keyframe_uses=500)
    plan = tx.plan(clip.frames)
    assert plan.keyframes[0] == 0 and plan.keyframes[-1] == 47
    assert len(plan.segments) == len(plan.keyframes) - 1 == len(plan.captions) == len(plan.side_info)
    assert plan.captions[0] == clip.captions[0]
    assert plan.side_bits.numel() == side.num_bits * len(plan.segments)
    b = plan.budget
    assert b["keyframes"] == 500 * len(plan.keyframes)
    assert b["captions"] == pipe.channel_uses(plan.caption_bits.numel())
    assert b["total"] == b["keyframes"] + b["captions"] + b["side_info"]
    g = torch.Generator().manual_seed(0)
    good = pipe(plan.caption_bits, AWGN(), snr_db_to_no(15), g)
    assert decode_texts(good.bits, len(plan.captions)) == plan.captions
    bad = pipe(plan.caption_bits, AWGN(), snr_db_to_no(-6), g)  # corrupted captions decode
    got = decode_texts(bad.bits, len(plan.captions))
    assert len(got) == len(plan.captions) and all(isinstance(c, str) for c in got)
    k = keyframes_for_budget(10_000, 1000, 300, pipe, 40)
    cost = lambda n: n * 1000 + pipe.channel_uses((n - 1) * 300)  # noqa: E731
    assert cost(k) <= 10_000 < cost(k + 1)


def test_given_and_none_captioners():
    g = GivenCaption(["a", "b", "c"], [10, 20])
    assert g.caption(None, 0, 10) == "a" and g.caption(None, 5, 15) == "a; then b"
    assert make_captioner("none").caption(None, 0, 5) == ""
    with pytest.raises(ValueError, match="captions"):
        GivenCaption(["a"], [3])


def test_cli_keyframes_json(capsys):
    assert main(["keyframes", "synthetic:cuts", "--frames", "48", "--size", "96", "96",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"keyframes", "scores"} and out["keyframes"][0] == 0
    assert all({"frame", "keyframe", "s_rel"} <= set(s) for s in out["scores"])
    assert main(["keyframes", "synthetic:cuts", "--threshold", "auto"]) == 2
    assert "--target-keyframes" in capsys.readouterr().err
    assert main(["keyframes", "builtin:nope"]) == 2
