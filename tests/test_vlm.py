"""Real-tier VLM scorer and captioner on tiny random checkpoints built in code.

Three architectures; InternVL and Qwen2.5-VL are saved with their full
processor + chat template (the AutoProcessor path), Qwen2-VL with only a
tokenizer (chat template) and an image processor (the hand-expanded fallback).
``LGVSC_VLM_PATH`` (a local checkpoint folder or cached repo id) adds a test on
real weights.
"""

import json
import os

import numpy as np
import pytest
import torch

from lgvsc.semantic.captioners import CAPTIONERS
from lgvsc.semantic.captioners.vlm import VLMCaptioner, sample_indices
from lgvsc.semantic.psss import DEFAULT_FOCUS
from lgvsc.semantic.scorers import SCORERS, make_scorer
from lgvsc.semantic.scorers.vlm import VLMScorer, split_descriptions
from lgvsc.semantic.vlm_backend import NO_FORMS, SUPPORTED, YES_FORMS, VLMBackend, chatml
from vlm_models import build

CASES = {"internvl": "processor", "qwen2_vl": "tokenizer", "qwen2_5_vl": "processor"}
FOCUS = "the action"


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """arch -> folder of its tiny checkpoint (built once per module)."""
    built = {}

    def get(arch):
        if arch not in built:
            built[arch] = build(arch, tmp_path_factory.mktemp(arch), layout=CASES[arch], seed=0)
        return built[arch]

    return get


def frames(n, shape=(40, 64, 3), seed=0):
    """n distinct uint8 frames: random texture plus a bright block at a moving place."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 120, size=(n, *shape), dtype=np.uint8)
    for i in range(n):
        x = (8 * i) % (shape[1] - 12)
        out[i, 10:26, x:x + 12] = 255
    return list(out)


def test_split_descriptions():
    assert split_descriptions("Image-1: a red car. Image-2: a blue bike.") == ("a red car.", "a blue bike.")
    assert split_descriptions("a dog\na cat") == ("a dog", "a cat")
    assert split_descriptions("A dog runs. A cat sleeps.") == ("A dog runs.", "A cat sleeps.")
    assert split_descriptions("just one") is None  # never a text compared with itself
    assert split_descriptions("") is None


def test_registered_and_pure_helpers():
    assert "vlm" in SCORERS and "vlm" in CAPTIONERS
    assert sample_indices(10, 1) == [0] and sample_indices(10, 3) == [0, 4, 9]
    assert sample_indices(2, 4) == [0, 1]
    assert chatml("hi") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("mode", ["direct", "paper"])
@pytest.mark.parametrize("arch", list(CASES))
def test_psss_both_modes(model_dir, arch, mode):
    """(a)+(b): S_rel = P(No) - P(Yes) in (-1, 1), mass in (0, 1], for every arch and mode."""
    scorer = make_scorer("vlm", path=str(model_dir(arch)), mode=mode, max_new_tokens=6)
    key, *cands = frames(3)
    out = scorer.score(key, cands, FOCUS)
    assert len(out) == 2 and scorer.cost.pairs == 2
    for p in out:
        assert -1 < p.s_rel < 1 and p.s_rel == p.p_no - p.p_yes
        assert 0 < p.mass <= 1


@pytest.mark.parametrize("arch", list(CASES))
def test_processor_or_fallback_path(model_dir, arch):
    """The full checkpoints take the processor + chat template path, the partial one the fallback."""
    b = VLMBackend(model_dir(arch))
    assert (b.processor is not None) == (CASES[arch] == "processor") and b.arch == arch


def test_yes_no_full_vocabulary(model_dir):
    """P(Yes), P(No): sums of the float32 softmax over the whole vocabulary, single-token forms."""
    b = VLMBackend(model_dir("internvl"))
    tok = b.tokenizer
    for forms, ids in ((YES_FORMS, b.yes_ids), (NO_FORMS, b.no_ids)):
        want = {tok.encode(w, add_special_tokens=False)[0] for w in forms
                if len(tok.encode(w, add_special_tokens=False)) == 1}
        assert set(ids) == want and len(ids) >= 2
    logits = torch.randn(3, len(tok), generator=torch.Generator().manual_seed(1))
    p_yes, p_no = b.yes_no(logits)
    sm = torch.softmax(logits.double(), -1)
    assert torch.allclose(p_yes.double(), sm[:, b.yes_ids].sum(-1), atol=1e-6)
    assert torch.allclose(p_no.double(), sm[:, b.no_ids].sum(-1), atol=1e-6)


@pytest.mark.parametrize("arch", list(CASES))
def test_direct_cache_batch_equals_uncached(model_dir, arch):
    """(c): cached prefix + reused features + batching == plain forward, within 1e-5."""
    scorer = VLMScorer(model_dir(arch), mode="direct", dtype="float32", batch=3)
    key, *cands = frames(6)
    cands += [cands[0], frames(1, shape=(56, 40, 3), seed=3)[0]]  # a repeat and another shape
    got = scorer.score(key, cands, FOCUS) + scorer.score(key, cands[:2], DEFAULT_FOCUS)
    ref = [scorer.uncached_score(key, c, FOCUS) for c in cands]
    ref += [scorer.uncached_score(key, c, DEFAULT_FOCUS) for c in cands[:2]]
    for g, r in zip(got, ref):
        assert abs(g.p_yes - r.p_yes) < 1e-5 and abs(g.p_no - r.p_no) < 1e-5


class Splitting(VLMScorer):
    """Random weights write no labels: split the words in halves (counting tests)."""

    @staticmethod
    def splitter(text):
        words = text.split() or ["x", "y"]
        return " ".join(words[:len(words) // 2]) or "x", " ".join(words[len(words) // 2:])


def test_counters(model_dir):
    """(d): paper costs more token-steps than direct on the same pairs; direct grows by the
    suffix per candidate, the prefix is counted once per keyframe."""
    path = model_dir("internvl")
    key, *cands = frames(5)
    direct = VLMScorer(path, mode="direct", batch=2)
    P, S = direct.prompt_lengths(key, cands[0], FOCUS)
    direct.score(key, cands[:1], FOCUS)
    assert direct.cost.token_steps == P + S
    assert direct.cost.forward_passes == 4  # key vision, prefix, candidate vision, suffix
    direct.score(key, cands[1:], FOCUS)  # same keyframe: prefix and key features reused
    assert direct.cost.token_steps == P + 4 * S
    assert direct.cost.forward_passes == 4 + 2 * 2  # 2 batches of 2: vision + suffix each
    direct.score(key, cands[:2], FOCUS)  # features cached: no vision pass
    assert direct.cost.token_steps == P + 6 * S and direct.cost.forward_passes == 9

    paper = Splitting(path, mode="paper", max_new_tokens=6, min_new_tokens=6)
    paper.score(key, cands, FOCUS)
    assert paper.cost.forward_passes == 4 * (1 + 6 + 1)  # vision, 6 generate steps, judge
    assert paper.cost.split_failures == 0 and paper.cost.truncated == 4  # forced lengths
    fresh = VLMScorer(path, mode="direct", batch=2)
    fresh.score(key, cands, FOCUS)
    assert fresh.cost.token_steps == P + 4 * S < paper.cost.token_steps


@pytest.mark.parametrize("arch", list(CASES))
def test_captioner(model_dir, arch):
    """(e): a caption string from the first frame and from 3 sampled frames."""
    seg = np.stack(frames(5))
    for n in (1, 3):
        cap = CAPTIONERS.get("vlm")(path=str(model_dir(arch)), frames=n, max_new_tokens=5)
        text = cap.caption(seg, 0, 5)
        assert isinstance(text, str) and text == text.strip()


def test_errors(model_dir, tmp_path):
    """(f): unknown architecture, missing path and bad settings are ValueErrors naming them."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match=r"'llama'.*internvl, qwen2_5_vl, qwen2_vl"):
        VLMScorer(tmp_path)
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ValueError, match="no-such-model"):
        VLMScorer(missing)
    with pytest.raises(ValueError, match="no-such-model"):
        VLMCaptioner(missing)
    path = model_dir("internvl")
    for kw, name in ((dict(mode="fast"), "mode"), (dict(batch=0), "batch"), (dict(dtype="int8"), "dtype"),
                     (dict(device="tpu"), "device"), (dict(max_new_tokens=0), "max_new_tokens"),
                     (dict(min_new_tokens=999), "min_new_tokens")):
        with pytest.raises(ValueError, match=name):
            VLMScorer(path, **kw)
    with pytest.raises(ValueError, match="frames"):
        VLMCaptioner(path, frames=0)
    with pytest.raises(ValueError, match="uint8"):
        VLMScorer(path).score(frames(1)[0], [np.zeros((8, 8), np.uint8)])
    assert set(SUPPORTED) == {"internvl", "qwen2_vl", "qwen2_5_vl"}


@pytest.mark.skipif(not os.environ.get("LGVSC_VLM_PATH"), reason="set LGVSC_VLM_PATH to real weights")
def test_real_weights():
    """(g): real checkpoint: yes/no mass is large, cached == uncached, captions are text."""
    path = os.environ["LGVSC_VLM_PATH"]
    scorer = VLMScorer(path, mode="direct", batch=2)
    tol = 1e-4 if scorer.backend.dtype == torch.float32 else 3e-2
    h, w = 224, 320
    sky = np.zeros((h, w, 3), np.uint8)
    sky[:] = (90, 160, 235)
    ball = sky.copy()
    ball[80:150, 120:190] = (230, 40, 30)
    dark = np.full((h, w, 3), 15, np.uint8)
    got = scorer.score(sky, [sky.copy(), ball, dark], DEFAULT_FOCUS)
    for g, c in zip(got, [sky, ball, dark]):
        r = scorer.uncached_score(sky, c, DEFAULT_FOCUS)
        assert abs(g.p_yes - r.p_yes) < tol and abs(g.p_no - r.p_no) < tol
        assert g.mass > 0.5, f"yes/no mass {g.mass:.3f}: the prompt did not elicit yes/no"
    assert got[0].s_rel < got[2].s_rel  # identical frames are more similar than sky vs dark
    paper = VLMScorer(path, mode="paper")
    assert all(-1 < p.s_rel < 1 for p in paper.score(sky, [ball], DEFAULT_FOCUS))
    text = VLMCaptioner(path, max_new_tokens=24).caption(np.stack([ball, sky]), 0, 2)
    assert isinstance(text, str) and text
