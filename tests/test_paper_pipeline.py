"""The paper's pipeline wired as the paper describes it (issue 12, section 2).

K follows the keyframe codec's real floor (NTSCC built in code, tiny arch), a SKEM
selection larger than the budget affords is cut and says so, components are built
once per scheme and load once per process, Text-Only captions each chunk of
``frames_per_call`` frames and refuses an empty caption, SFA's length follows F and
K, and the captioner sees every frame of its segment.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from lgvsc.link.cbr import BUDGET_FLOOR, BudgetError
from lgvsc.link.channels import AWGN
from lgvsc.semantic.captioners import CAPTIONERS, Captioner, GivenCaption
from lgvsc.semantic.keyframe_codecs import make_keyframe_codec, transmit_exact
from lgvsc.semantic.keyframe_codecs.ntscc import NTSCC
from lgvsc.semantic.keyframe_codecs.ntscc_arch import make_arch
from lgvsc.semantic.keyframe_codecs.ntscc_checkpoint import save_checkpoint
from lgvsc.semantic.keyframe_codecs.ntscc_model import NTSCCModel
from lgvsc.semantic.model_cache import ModelInfo, ModelKey, model_cache
from lgvsc.semantic.psss import PSSS
from lgvsc.semantic.scorers import SCORERS, Scorer
from lgvsc.semantic.selectors import Selection, cap_keyframes
from lgvsc.semantic.text_bits import encode_texts
from lgvsc.semantic.world_models import WORLD_MODELS, WorldModel
from lgvsc.sim.errors import UserError
from lgvsc.sim.scenario import load_scenario
from lgvsc.sim.schemes.lgvsc import (LGVSC, LGVSCConfig, TextOnly, TextOnlyConfig, floor_uses,
                                     sfa_auto_length)
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import Video, VideoSpec, load_video, probe_video

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SPEC = VideoSpec(source="synthetic:pan", frames=24, size=(64, 64))


@pytest.fixture(scope="module")
def clip():
    return load_video(SPEC, seed=1)


@pytest.fixture(scope="module")
def info():
    return probe_video(SPEC, ".", 1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny NTSCC checkpoint (our format, random weights), built in code."""
    path = tmp_path_factory.mktemp("ntscc") / "tiny.pt"
    save_checkpoint(path, NTSCCModel(make_arch("tiny"), torch.Generator().manual_seed(0)))
    return str(path)


def _images(b, h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (b, -(-h // 8), -(-w // 8), 3))
    img = np.kron(base, np.ones((1, 8, 8, 1)))[:, :h, :w] + rng.integers(-20, 20, (b, h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _lgvsc(cbr, **kw):
    return LGVSC(LGVSCConfig(name="x", type="lgvsc", target_cbr=cbr, **kw), RunContext())


def _send(scheme, clip, snr=10.0, seed=0):
    tx = scheme.transmit(clip, AWGN(), snr, torch.Generator().manual_seed(seed))
    np.asarray(tx.frames)  # a streaming receiver decodes (and accounts) as it is read
    return tx


# -- codec floors -----------------------------------------------------------------------
def test_ntscc_floor_from_its_architecture_without_loading():
    codec = NTSCC()  # the paper arch, random weights: nothing is built for the floor
    assert codec.min_uses(320, 576) == 10_148  # 720 tokens: 5,792 analog + 4,356 index uses
    assert codec._model is None
    assert codec.min_uses(320, 576, 4) <= codec.min_uses(320, 576)  # the indexes share blocks


@pytest.mark.parametrize("batch, hw", [(1, (64, 64)), (3, (64, 64)), (2, (50, 70))])
def test_ntscc_meets_its_floor_and_nothing_below(batch, hw):
    codec = NTSCC(arch="tiny")
    images = _images(batch, *hw)
    floor = codec.min_uses(*hw, batch)
    out = codec.transmit(images, floor, AWGN(), 10.0, torch.Generator().manual_seed(0))
    assert out.channel_uses <= floor * batch
    with pytest.raises(BudgetError, match="too small for NTSCC"):
        codec.encode(images, floor - 1, 10.0)


def test_softcast_image_meets_its_floor_and_nothing_below():
    codec = make_keyframe_codec("softcast-image")
    images = _images(2)
    floor = codec.min_uses(64, 64, 2)
    assert floor == codec.analog.symbols_for(1)
    out = transmit_exact(codec, images, floor, AWGN(), 10.0, torch.Generator().manual_seed(0))
    assert out.channel_uses <= 2 * floor
    with pytest.raises(BudgetError):
        codec.transmit(images, floor - 1, AWGN(), 10.0, torch.Generator().manual_seed(0))


# -- K bound to the NTSCC budget ---------------------------------------------------------
def test_k_follows_the_ntscc_floor_and_says_so(clip, info, ckpt):
    kw = dict(preset="skim-sfa", keyframes=4, captioner={"type": "none"},
              keyframe_codec={"type": "ntscc", "checkpoint": ckpt})
    cfg = LGVSCConfig(name="x", type="lgvsc", target_cbr=2.5e-3, **kw)
    warned = LGVSC.check_video(cfg, info, "schemes[0]")
    assert len(warned) == 1 and "affords 3 of the 4 keyframes" in warned[0], warned
    s = LGVSC(cfg, RunContext())
    tx = _send(s, clip)
    assert len(tx.extra["keyframes"]) == 3
    assert tx.extra["keyframes_capped"] == {"asked": 4, "affordable": 3, "dropped": []}
    floor = s.codec.min_uses(64, 64, 3)
    assert tx.extra["keyframe_budget"] >= floor
    budget = s.target_uses(clip)
    assert BUDGET_FLOOR * budget <= tx.channel_uses <= budget
    roomy = LGVSCConfig(name="x", type="lgvsc", target_cbr=5e-3, **kw)  # 4 fit
    assert LGVSC.check_video(roomy, info, "schemes[0]") == []
    assert "keyframes_capped" not in _send(LGVSC(roomy, RunContext()), clip).extra


def test_a_budget_below_two_ntscc_floors_is_refused(info, ckpt):
    cfg = LGVSCConfig(name="x", type="lgvsc", preset="skim-sfa", target_cbr=1e-3,
                      keyframe_codec={"type": "ntscc", "checkpoint": ckpt})
    with pytest.raises(ValueError, match=r"schemes\[0\].target_cbr: .*ntscc floor \(\d+ uses "
                                         r"each\).*target_cbr >= "):
        LGVSC.check_video(cfg, info, "schemes[0]")


def test_two_schemes_share_one_ntscc_load(clip, ckpt):
    cache = model_cache()
    codec = {"type": "ntscc", "checkpoint": ckpt}
    a = _lgvsc(5e-3, preset="skim-sfa", keyframe_codec=codec, captioner={"type": "none"})
    b = _lgvsc(5e-3, preset="skem-dsa", keyframe_codec=codec, captioner={"type": "none"})
    key = NTSCC.model_info(**{k: v for k, v in codec.items() if k != "type"})[0].key
    cache.release([key])
    before = cache.load_counts[key]
    # the floor comes from the arch stored in the checkpoint (tiny, not the spec's "paper"),
    # read without loading the weights
    assert a.codec.min_uses(64, 64) == NTSCC(arch="tiny").min_uses(64, 64)
    assert key not in cache.loaded()
    _send(a, clip)
    _send(b, clip)
    assert cache.load_counts[key] - before == 1
    assert a.codec.model is b.codec.model
    cache.release([key])


# -- SKEM with a fixed threshold never picks more than the budget affords ---------------
def test_cap_keeps_the_ends_and_the_highest_scores():
    sel = Selection([0, 3, 5, 8, 12, 15], [(3, 0, 0.5), (5, 3, 0.9), (8, 5, 0.5), (12, 8, 0.7)],
                    threshold=0.4)
    out = cap_keyframes(sel, 4)
    assert out.keyframes == [0, 5, 12, 15] and out.dropped == [3, 8]
    assert cap_keyframes(sel, 5).keyframes == [0, 3, 5, 12, 15]  # a tie: the earlier one
    assert cap_keyframes(sel, 6) is sel
    forced = Selection([0, 4, 9], [])  # a keyframe without a score (max_len) goes first
    assert cap_keyframes(Selection([0, 2, 4, 9], [(2, 0, 0.1)]), 3).keyframes == [0, 2, 9]
    assert cap_keyframes(forced, 2).keyframes == [0, 9]
    with pytest.raises(ValueError, match="most"):
        cap_keyframes(sel, 1)


def test_fixed_threshold_skem_is_cut_to_the_budget(clip):
    s = _lgvsc(3e-3, preset="skem-dsa", threshold=-1.0, captioner={"type": "none"})
    tx = _send(s, clip)  # threshold -1: every frame would be a keyframe
    capped = tx.extra["keyframes_capped"]
    k = len(tx.extra["keyframes"])
    assert capped["asked"] == clip.frames.shape[0] and capped["affordable"] == k
    assert len(capped["dropped"]) == capped["asked"] - k
    assert tx.extra["keyframes"][0] == 0 and tx.extra["keyframes"][-1] == 23
    f, h, w = clip.shape
    total = s.target_uses(clip)
    assert k * s.codec.min_uses(h, w, k) + tx.extra["caption_uses"] + tx.extra["side_uses"] \
        <= total
    more = floor_uses(k + 1, h, w, s.codec, s.side.num_bits, s.digital,
                      encode_texts([""] * k).numel())
    assert more > total  # the most that fit
    assert BUDGET_FLOOR * total <= tx.channel_uses <= total


# -- components built once per scheme, cost per clip, the segment's frames --------------
SHARED_VLM = ModelInfo(ModelKey("vlm", "/models/vlm", "bfloat16", "cuda"), 2 ** 30)


class CountingScorer(Scorer):
    built = 0

    @classmethod
    def model_info(cls, **params):
        return [SHARED_VLM]

    def __init__(self):
        super().__init__()
        type(self).built += 1

    def score_batch(self, key, candidates, focus):
        self.cost.forward_passes += len(candidates)
        return [PSSS.from_s_rel(0.9 if abs(float(c.mean()) - float(key.mean())) > 3 else -0.5)
                for c in candidates]


class RecordingCaptioner(Captioner):
    built, calls = 0, []

    @classmethod
    def model_info(cls, **params):
        return [SHARED_VLM]

    def __init__(self):
        type(self).built += 1

    def caption(self, frames, start, end):
        type(self).calls.append((len(frames), start, end))
        return f"frames {start} to {end}"


@pytest.fixture
def stubs(monkeypatch):
    monkeypatch.setitem(SCORERS._items, "counting-stub", CountingScorer)
    monkeypatch.setitem(SCORERS._needs, "counting-stub", SCORERS._needs["classical"])
    monkeypatch.setitem(CAPTIONERS._items, "recording-stub", RecordingCaptioner)
    monkeypatch.setitem(CAPTIONERS._needs, "recording-stub", CAPTIONERS._needs["none"])
    CountingScorer.built, RecordingCaptioner.built, RecordingCaptioner.calls = 0, 0, []


def test_scorer_and_captioner_built_once_cost_per_clip(stubs, clip):
    s = _lgvsc(2e-2, preset="skem-dsa", scorer={"type": "counting-stub"},
               captioner={"type": "recording-stub"})
    other = load_video(VideoSpec(source="synthetic:cuts", frames=24, size=(64, 64)), seed=2)
    costs = []
    for video in (clip, other, clip):
        tx = _send(s, video)
        costs.append(tx.extra["selection_cost"]["scorer"]["pairs"])
    assert CountingScorer.built == 1 and RecordingCaptioner.built == 1
    alone = _lgvsc(2e-2, preset="skem-dsa", scorer={"type": "counting-stub"},
                   captioner={"type": "recording-stub"})
    assert costs[1] == _send(alone, other).extra["selection_cost"]["scorer"]["pairs"]
    assert costs[0] == costs[2] > 0  # reset per clip, not summed over clips


def test_captioner_sees_every_frame_of_its_segment(stubs, clip):
    p = _lgvsc(2e-2, preset="skim-sfa", keyframes=4,
               captioner={"type": "recording-stub"}).plan(clip)
    calls = RecordingCaptioner.calls
    assert [(s, e) for _, s, e in calls] == [(0, 8), (8, 16), (16, 24)]
    assert [n for n, _, _ in calls] == [8, 8, 8] and p.segments == [(0, 8), (8, 16), (16, 23)]


# -- SFA's length from F and K -------------------------------------------------------
def test_sfa_auto_length():
    assert sfa_auto_length(128, 4) == 44 and sfa_auto_length(25, 4) == 9
    assert sfa_auto_length(1, 1) == 2


def test_skim_sfa_equals_skim_dsa_frames_for_equal_segments():
    """Three 11-frame segments: SFA generates 11 (auto), as DSA does; the old fixed 17
    frames resampled to 11 show other instants."""
    clip = load_video(VideoSpec(source="synthetic:pan", frames=31, size=(64, 64)), seed=3)
    sfa = _lgvsc(2e-2, preset="skim-sfa", keyframes=4)
    dsa = _lgvsc(2e-2, selector="skim", adapter="dsa", keyframes=4)
    a, b = _send(sfa, clip), _send(dsa, clip)
    assert sfa.plan(clip).segments == [(0, 10), (10, 20), (20, 30)]
    assert a.extra["sfa_length"] == 11
    np.testing.assert_array_equal(a.frames, b.frames)
    fixed = _lgvsc(2e-2, preset="skim-sfa", keyframes=4, sfa_length=17)  # an integer still works
    c = _send(fixed, clip)
    assert c.extra["sfa_length"] == 17 and not np.array_equal(c.frames, b.frames)


# -- Text-Only ---------------------------------------------------------------------
class TextToVideoStub(WorldModel):
    """Frames whose value is the call number; records (text, frames) of every call."""

    calls = []

    @staticmethod
    def text_to_video_reason(path, pipeline="auto"):
        return None

    def generate_from_text(self, text, frames, size, generator):
        type(self).calls.append((text, frames))
        return np.full((frames, *size, 3), len(type(self).calls), np.uint8)


@pytest.fixture
def t2v(monkeypatch):
    monkeypatch.setitem(WORLD_MODELS._items, "t2v-stub", TextToVideoStub)
    monkeypatch.setitem(WORLD_MODELS._needs, "t2v-stub", WORLD_MODELS._needs["interp"])
    TextToVideoStub.calls = []


def _text_only(**kw):
    cfg = TextOnlyConfig(name="T", type="text-only", world_model={"type": "t2v-stub"}, **kw)
    return TextOnly(cfg, RunContext()), cfg


@pytest.mark.usefixtures("t2v")
def test_text_only_captions_every_chunk_and_counts_them():
    clip = load_video(VideoSpec(source="synthetic:cuts", frames=24, size=(32, 32)), seed=0)
    s, _ = _text_only(frames_per_call=10)
    tx = _send(s, clip, snr=20)
    assert tx.frames.shape == clip.frames.shape
    assert [n for _, n in TextToVideoStub.calls] == [10, 10, 4]
    given = GivenCaption(clip.captions, clip.boundaries)
    want = [given.caption(clip.frames[a:b], a, b) for a, b in ((0, 10), (10, 20), (20, 24))]
    assert tx.extra["captions_sent"] == want == [t for t, _ in TextToVideoStub.calls]
    assert tx.extra["captions_received"] == want
    assert tx.channel_uses == s.digital.channel_uses(encode_texts(want).numel()) > 0
    assert tx.payload_bits == encode_texts(want).numel()
    assert [int(tx.frames[i, 0, 0, 0]) for i in (0, 9, 10, 19, 20, 23)] == [1, 1, 2, 2, 3, 3]
    TextToVideoStub.calls = []
    whole, _ = _text_only(frames_per_call="clip")
    assert _send(whole, clip).frames.shape == clip.frames.shape
    assert [n for _, n in TextToVideoStub.calls] == [24]


@pytest.mark.usefixtures("t2v", "stubs")
def test_text_only_builds_the_configured_captioner():
    clip = load_video(VideoSpec(source="synthetic:pan", frames=12, size=(32, 32)), seed=0)
    s, _ = _text_only(frames_per_call=5, captioner={"type": "recording-stub"})
    tx = _send(s, clip, snr=20)
    assert RecordingCaptioner.built == 1
    assert [(n, a, b) for n, a, b in RecordingCaptioner.calls] == [(5, 0, 5), (5, 5, 10),
                                                                    (2, 10, 12)]
    assert tx.extra["captions_sent"] == ["frames 0 to 5", "frames 5 to 10", "frames 10 to 12"]


@pytest.mark.usefixtures("t2v")
def test_text_only_refuses_an_empty_caption(info):
    s, cfg = _text_only()
    frames = load_video(VideoSpec(source="synthetic:pan", frames=8, size=(32, 32))).frames
    silent = Video(name="silent", frames=frames)
    with pytest.raises(UserError, match=r"scheme 'T', video .*empty caption for frames "
                                        r"\[0, 8\); Text-Only has nothing to send"):
        _send(s, silent)
    assert TextToVideoStub.calls == []  # nothing generated from an empty prompt
    none = TextOnlyConfig(name="T", type="text-only", world_model={"type": "t2v-stub"},
                          captioner={"type": "none"})
    with pytest.raises(ValueError, match=r"schemes\[0\].captioner: 'none' sends no caption"):
        TextOnly.check(none, "schemes[0]")
    bare = dataclasses.replace(info, captions=())
    with pytest.raises(ValueError, match=r"schemes\[0\].captioner: 'given' but video"):
        TextOnly.check_video(cfg, bare, "schemes[0]")
    assert TextOnly.check_video(cfg, info, "schemes[0]") == []


# -- fig3: the paper's NTSCC keyframes, an unset path stops in one line --------------
def test_fig3_sends_ntscc_keyframes_and_needs_its_checkpoint(monkeypatch):
    for var in ("LGVSC_VLM_PATH", "LGVSC_WM_PATH", "LGVSC_T2V_PATH"):
        monkeypatch.setenv(var, "/models/x")
    monkeypatch.delenv("LGVSC_NTSCC_PATH", raising=False)
    with pytest.raises(UserError) as e:
        load_scenario("scenarios/fig3_awgn.yaml")
    msg = str(e.value)
    assert "\n" not in msg and "${LGVSC_NTSCC_PATH} is not set" in msg
    assert "keyframe_codec.checkpoint" in msg
    monkeypatch.setenv("LGVSC_NTSCC_PATH", "/models/ntscc.pt")
    sc = load_scenario("scenarios/fig3_awgn.yaml")
    lg = [s for s in sc.schemes if s["type"] == "lgvsc"]
    assert len(lg) == 2 and all(s["keyframe_codec"] == {"type": "ntscc",
                                                        "checkpoint": "/models/ntscc.pt"}
                                for s in lg)


# -- what a scheme will load, before it loads --------------------------------------------
def test_models_lists_each_model_once(ckpt):
    codec = {"type": "ntscc", "checkpoint": ckpt}
    skim = LGVSCConfig(name="x", type="lgvsc", preset="skim-sfa", target_cbr=1e-2,
                       keyframe_codec=codec)
    infos = LGVSC.models(skim)  # SKIM: no scorer; given captions; interp: no weights
    assert [(i.key.kind, i.key.path) for i in infos] == [("ntscc", str(Path(ckpt).resolve()))]
    assert infos[0].bytes == Path(ckpt).stat().st_size
    two = LGVSCConfig(name="x", type="lgvsc", preset="skem-dsa", target_cbr=1e-2,
                      keyframe_codec=codec, world_model={"type": "interp"})
    assert LGVSC.models(two) == infos
    assert LGVSC.models(LGVSCConfig(name="x", type="lgvsc", target_cbr=1e-2)) == []


def test_a_scorer_and_a_captioner_on_one_vlm_are_one_model(stubs):
    cfg = LGVSCConfig(name="x", type="lgvsc", preset="skem-dsa", target_cbr=1e-2,
                      scorer={"type": "counting-stub"}, captioner={"type": "recording-stub"})
    assert LGVSC.models(cfg) == [SHARED_VLM]
    skim = cfg.model_copy(update={"selector": "skim"})
    assert LGVSC.models(skim) == [SHARED_VLM]  # the captioner still needs it
    assert TextOnly.models(TextOnlyConfig(name="T", type="text-only",
                                          captioner={"type": "recording-stub"})) == [SHARED_VLM]
