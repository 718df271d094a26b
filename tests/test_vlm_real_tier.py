"""The VLM real tier as a real run uses it (issue 12), on tiny random checkpoints built in code.

* one loaded VLM per process: a scorer and a captioner on one folder, dtype and device
  load it once (``model_cache().load_counts``); building them loads nothing; a released
  model is reloaded on the next use (and the scorer's caches follow the new copy);
* the processor loader catches only the expected exceptions, says which path it took,
  and the fallback tiles InternVL frames as the processor does;
* paper mode asks for a fixed format, splits answers of several shapes, and never
  judges a text against itself: failed splits are judged in direct mode and counted;
* the captioner shows several frames of the segment;
* forward passes use the ``cache`` argument (no deprecation warning);
* InternVL2-8B (remote code) is refused with the stand-ins named.
"""

import inspect
import json
import shutil

import numpy as np
import pytest
import torch

from lgvsc.semantic.captioners.vlm import VLMCaptioner
from lgvsc.semantic.model_cache import estimate_bytes, model_cache
from lgvsc.semantic.psss import DESCRIBE_PROMPT, PSSS
from lgvsc.semantic.scorers import Cost
from lgvsc.semantic.scorers.vlm import VLMScorer, split_descriptions
from lgvsc.semantic import vlm_backend
from lgvsc.semantic.vlm_backend import (PROCESSOR_IMAGE_KWARGS, Generation, VLMBackend,
                                        load_processor, vlm_info, vlm_key)
from vlm_models import build

pytestmark = pytest.mark.usefixtures("torch_one_thread")
FOCUS = "the action"


@pytest.fixture(autouse=True)
def fresh_cache():
    model_cache().release()
    yield
    model_cache().release()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """(arch, layout, extra build kwargs) -> folder of its tiny checkpoint (built once)."""
    built = {}

    def get(arch="internvl", layout="processor", **kw):
        k = (arch, layout, tuple(sorted(kw.items())))
        if k not in built:
            built[k] = build(arch, tmp_path_factory.mktemp(arch), layout=layout, seed=0, **kw)
        return built[k]

    return get


def frames(n, shape=(40, 64, 3), seed=0):
    rng = np.random.default_rng(seed)
    return list(rng.integers(0, 255, size=(n, *shape), dtype=np.uint8))


def no_backend_loads(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a VLM was loaded")

    monkeypatch.setattr(VLMBackend, "__init__", boom)


# -- one loaded VLM per process ------------------------------------------------------------
def test_scorer_and_captioner_share_one_load(folder):
    path = folder()
    direct = VLMScorer(path, device="cpu")
    paper = VLMScorer(str(path), mode="paper", device="cpu", dtype="float32", max_new_tokens=4)
    cap = VLMCaptioner(str(path), device="cpu", frames=2, max_new_tokens=4)
    key = direct.key
    assert paper.key == cap.key == key
    assert key == VLMScorer.model_info(path=str(path), device="cpu")[0].key
    assert key == VLMCaptioner.model_info(path=path, device="cpu", dtype="float32")[0].key
    assert (key.kind, key.path, key.dtype, key.device) == ("vlm", str(path.resolve()), "float32",
                                                           "cpu")
    counts = model_cache().load_counts
    before = counts[key]
    key_frame, *cands = frames(3)
    direct.score(key_frame, cands, FOCUS)
    paper.score(key_frame, cands[:1], FOCUS)
    cap.caption(np.stack(cands), 0, 2)
    assert counts[key] == before + 1
    assert direct.backend is paper.backend is cap.backend
    assert model_cache().loaded() == [key]


def test_building_and_model_info_load_nothing(folder, monkeypatch):
    path = folder()
    no_backend_loads(monkeypatch)
    for _ in range(3):  # one per video, as plan() does: free
        s = VLMScorer(path, mode="paper", device="cpu")
        c = VLMCaptioner(path, device="cpu")
        assert s.key == c.key
    infos = VLMScorer.model_info(path=str(path), device="cpu") + VLMCaptioner.model_info(
        path=str(path), device="cpu")
    assert {i.key for i in infos} == {s.key}
    assert not model_cache().loaded()
    with pytest.raises(AssertionError, match="loaded"):
        s.score(*frames(2)[:1], frames(1, seed=1), FOCUS)


def test_release_and_reuse_reloads(folder):
    path = folder()
    scorer = VLMScorer(path, device="cpu", batch=2)
    key_frame, *cands = frames(4)
    first = scorer.score(key_frame, cands, FOCUS)
    counts = model_cache().load_counts
    n = counts[scorer.key]
    old = scorer.backend
    assert len(scorer._features_lru) == 4
    assert model_cache().release([scorer.key]) == [scorer.key]
    again = scorer.score(key_frame, cands, FOCUS)  # loads again, caches rebuilt on the new copy
    assert counts[scorer.key] == n + 1 and scorer.backend is not old
    assert [p.p_yes for p in again] == pytest.approx([p.p_yes for p in first], abs=1e-6)
    del old


def test_model_info_keys_without_loading(folder, monkeypatch):
    path = folder()
    no_backend_loads(monkeypatch)
    (info,) = VLMScorer.model_info(path=str(path), device="cpu", dtype="bfloat16")
    assert info.key.dtype == "bfloat16"
    assert info.bytes == estimate_bytes(path, "bfloat16") > 0
    assert vlm_info(path, "cpu", "float32").bytes == 2 * info.bytes
    cuda = vlm_key(path, "cuda:1", "auto")  # computed on a machine without that GPU
    assert (cuda.device, cuda.dtype) == ("cuda:1", "bfloat16")
    assert vlm_key(path, "cpu", "float16") != vlm_key(path, "cpu", "float32")
    assert "vlm" in info.line() and "GiB" in info.line()


# -- the processor loader -------------------------------------------------------------------
TILED = dict(image_size=448, patch_size=56, max_patches=12)  # 448-px tiles, 16 tokens each


def test_fallback_tiles_like_the_processor(folder, capsys):
    """A 320x576 frame: 2 tiles + thumbnail on both paths; same pixels, same token ids."""
    with_proc = VLMBackend(folder(layout="processor", **TILED), device="cpu")
    fallback = VLMBackend(folder(layout="tokenizer", **TILED), device="cpu")
    err = capsys.readouterr().err
    assert with_proc.load_path == "processor" and fallback.load_path == "fallback"
    assert "InternVLProcessor with its chat template" in err
    line = [x for x in err.splitlines() if "fallback path" in x]
    assert len(line) == 1 and "crop_to_patches=True" in line[0]
    assert "does not render an image" in fallback.load_note
    frame = frames(1, shape=(320, 576, 3))[0]
    a, b = with_proc.pixels(frame), fallback.pixels(frame)
    assert a["pixel_values"].shape == b["pixel_values"].shape == (3, 3, 448, 448)
    assert torch.equal(a["pixel_values"], b["pixel_values"])
    prompt = f"Image-1: {vlm_backend.IMAGE}\nDescribe it."
    ea = with_proc.encode(with_proc.chat(prompt), [frame])
    eb = fallback.encode(fallback.chat(prompt), [frame])
    assert torch.equal(ea["input_ids"], eb["input_ids"])
    assert int((ea["input_ids"] == with_proc.image_token_id).sum()) == 3 * 16
    assert torch.equal(ea["pixel_values"], eb["pixel_values"])


def test_processor_image_kwargs_mirror_transformers():
    """The fallback passes what the processor classes pass (a transformers change shows here)."""
    from transformers import InternVLProcessor, Qwen2_5_VLProcessor, Qwen2VLProcessor

    assert PROCESSOR_IMAGE_KWARGS == {"internvl": dict(InternVLProcessor.images_kwargs)}
    for cls in (Qwen2VLProcessor, Qwen2_5_VLProcessor):
        assert "images_kwargs" not in vars(cls)


def test_processor_attribute_error_falls_back_loudly(folder, tmp_path, capsys):
    """A tokenizer without InternVL's special-token names: AutoProcessor raises
    AttributeError, the fallback is taken and says why."""
    path = tmp_path / "no-tokenizer-config"
    shutil.copytree(folder(), path)
    (path / "tokenizer_config.json").unlink()
    proc, why = load_processor(str(path))
    assert proc is None and why.startswith("AutoProcessor failed: AttributeError")
    b = VLMBackend(path, device="cpu")
    assert b.load_path == "fallback" and "AttributeError" in capsys.readouterr().err


def test_unexpected_processor_errors_propagate(folder, monkeypatch):
    import transformers

    def broken(*a, **k):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", broken)
    with pytest.raises(RuntimeError, match="a real bug"):
        load_processor(str(folder()))


# -- paper mode: the split ------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("Image-1: A man rides a bike.\nImage-2: A man walks a dog.",
     ("A man rides a bike.", "A man walks a dog.")),
    ("**Image-1:** a red car\n**Image-2:** a blue bike", ("a red car", "a blue bike")),
    ("Image 1: a dog; Image 2: a cat", ("a dog", "a cat")),
    ("1. A dog on the grass.\n2. A cat on a sofa.", ("A dog on the grass.", "A cat on a sofa.")),
    ("1) a dog. 2) a cat.", ("a dog.", "a cat.")),
    ("1. Image-1: a dog\n2. Image-2: a cat", ("a dog", "a cat")),
    ("The first image shows a red car, and the second image shows a blue bike.",
     ("The first image shows a red car", "the second image shows a blue bike.")),
    ("In the first image a dog runs. In the second image a cat sleeps.",
     ("In the first image a dog runs.", "In the second image a cat sleeps.")),
    ("Image 1 shows a dog. Image 2 shows a cat.", ("Image 1 shows a dog.", "Image 2 shows a cat.")),
    ("a dog\na cat", ("a dog", "a cat")),
    ("A dog runs. A cat sleeps.", ("A dog runs.", "A cat sleeps.")),
])
def test_split_shapes(text, want):
    assert split_descriptions(text) == want


@pytest.mark.parametrize("text", [
    "Image-1: A man rides a bike down a long road next to",  # truncated before Image-2
    "Image-1: A man rides a bike.\nImage-2:",  # second half empty
    "Image-1: a car near image 2 and a tree",  # a mention, not a label
    "A man rides a bike.",  # one description
    "A man rides. He waves. A dog runs.",  # three unlabelled sentences: ambiguous
    "",
])
def test_split_failures_are_none(text):
    assert split_descriptions(text) is None


def test_describe_prompt_asks_for_the_format_it_splits():
    assert "Image-1: <one sentence>\nImage-2: <one sentence>" in DESCRIBE_PROMPT
    assert split_descriptions("Image-1: a dog runs.\nImage-2: a cat sits.") == (
        "a dog runs.", "a cat sits.")
    default = inspect.signature(VLMScorer).parameters["max_new_tokens"].default
    assert default >= 96


class NeverSplits(VLMScorer):
    splitter = staticmethod(lambda text: None)


def test_failed_splits_are_judged_directly_and_counted(folder):
    path = folder()
    scorer = NeverSplits(path, mode="paper", device="cpu", max_new_tokens=3)
    key_frame, *cands = frames(4)
    got = scorer.score(key_frame, cands, FOCUS)
    assert scorer.cost.split_failures == 3 and scorer.cost.as_dict()["split_failures"] == 3
    ref = [VLMScorer(path, device="cpu").uncached_score(key_frame, c, FOCUS) for c in cands]
    for g, r in zip(got, ref):  # the direct judgement of the pair, not a text vs itself
        assert abs(g.p_yes - r.p_yes) < 1e-6 and abs(g.p_no - r.p_no) < 1e-6
    # per pair: round-1 vision + 3 generate steps, then the direct forward (vision + LLM)
    assert scorer.cost.forward_passes == 3 * (1 + 3 + 2)


@pytest.mark.parametrize("answer, stopped, judged, failures, truncated", [
    ("Image-1: a dog runs.\nImage-2: a cat sits.", True, ("a dog runs.", "a cat sits."), 0, 0),
    ("Image-1: a dog runs.\nImage-2: a cat", False, ("a dog runs.", "a cat"), 0, 1),
    ("Image-1: a dog runs on the", False, None, 1, 1),
    ("a dog runs", True, None, 1, 0),
])
def test_paper_mode_counts(folder, monkeypatch, answer, stopped, judged, failures, truncated):
    scorer = VLMScorer(folder(), mode="paper", device="cpu")
    b = scorer.backend
    monkeypatch.setattr(b, "generate", lambda enc, n, m=0: Generation(answer, 7, stopped))
    questions = []

    def judge(question):
        questions.append(question)
        return PSSS(0.25, 0.5)

    monkeypatch.setattr(scorer, "_judge", judge)
    (out,) = scorer.score(*frames(2)[:1], frames(1, seed=2), FOCUS)
    c = scorer.cost
    assert (c.split_failures, c.truncated) == (failures, truncated)
    assert set(Cost().as_dict()) >= {"split_failures", "truncated"}
    if judged is None:
        assert not questions and out != PSSS(0.25, 0.5)  # judged in direct mode
    else:
        (q,) = questions
        assert q.startswith(f"{judged[0]}, {judged[1]}. Determine")


# -- captioner --------------------------------------------------------------------------------
def test_captioner_shows_several_frames(folder, monkeypatch):
    path = folder()
    assert inspect.signature(VLMCaptioner).parameters["frames"].default == 4
    seg = np.stack(frames(10))
    seen = []
    cap = VLMCaptioner(path, device="cpu", max_new_tokens=3)
    b = cap.backend
    real = b.encode

    def spy(text, imgs=()):
        seen.append((text, [int(np.flatnonzero([np.array_equal(i, f) for f in seg])[0])
                            for i in imgs]))
        return real(text, imgs)

    monkeypatch.setattr(b, "encode", spy)
    assert isinstance(cap.caption(seg, 0, 10), str)
    text, picked = seen[-1]
    assert picked == [0, 3, 6, 9] and text.count("Frame") == 4
    VLMCaptioner(path, device="cpu", frames=1, max_new_tokens=3).caption(seg, 0, 10)
    assert seen[-1][1] == [0]
    VLMCaptioner(path, device="cpu", max_new_tokens=3).caption(seg[:2], 0, 2)
    assert seen[-1][1] == [0, 1]


# -- the cache argument -------------------------------------------------------------------------
class Recorder:
    """Stands in for transformers' logger (the other way a deprecated name is reported)."""

    def __init__(self):
        self.lines = []

    def warning_once(self, msg, *a, **k):
        self.lines.append(str(msg))


def deprecations(run, monkeypatch) -> list[str]:
    """Messages naming past_key_values (FutureWarning or transformers log) while ``run()``."""
    import warnings

    from transformers.utils import generic

    rec = Recorder()
    monkeypatch.setattr(generic, "logger", rec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [m for m in [str(w.message) for w in caught] + rec.lines if "past_key_values" in m]


def test_no_deprecated_cache_argument(folder, monkeypatch):
    path = folder()
    direct = VLMScorer(path, device="cpu", batch=2)
    paper = VLMScorer(path, mode="paper", device="cpu", max_new_tokens=3)
    key_frame, *cands = frames(4)

    def score():
        direct.score(key_frame, cands, FOCUS)  # prefix cache + batched suffixes
        paper.score(key_frame, cands[:1], FOCUS)  # generate + judge

    assert deprecations(score, monkeypatch) == []
    b = direct.backend  # the old name is heard (so the check above can fail)
    old = deprecations(lambda: b.model(input_ids=torch.tensor([[1, 2, 3]]), past_key_values=None,
                                       use_cache=True), monkeypatch)
    assert old and "cache" in old[0]


# -- InternVL2-8B ------------------------------------------------------------------------------
def test_internvl2_remote_code_is_refused_with_stand_ins(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "internvl_chat", "architectures": ["InternVLChatModel"],
         "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"}}))
    for build_it in (lambda: VLMScorer(tmp_path), lambda: VLMCaptioner(tmp_path)):
        with pytest.raises(ValueError) as e:
            build_it()
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("path: ")
        for needle in ("internvl_chat", "InternVL2-8B", "OpenGVLab/InternVL2_5-8B-MPO-hf",
                       "OpenGVLab/InternVL3-8B-hf", "threshold: auto", "direct"):
            assert needle in msg
    doc = " ".join(VLMScorer.__doc__.split())
    assert "InternVL2_5-8B-MPO-hf" in doc and "threshold: auto" in doc and "0.35" in doc
