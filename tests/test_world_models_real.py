"""Real-tier world models: diffusers pipelines (tiny random, built in code) and Open-Sora helpers.

Tiny ``LTXConditionPipeline``, ``WanImageToVideoPipeline`` (first+last frame)
and ``WanVACEPipeline`` are saved with ``save_pretrained`` and reloaded through
:class:`DiffusersWorldModel` (on the CPU in float32, so runs are
deterministic). Open-Sora is not installed here: its pure helpers and the
not-installed error are tested. ``LGVSC_WM_PATH`` (a local diffusers
pipeline directory) adds a test on real weights (``LGVSC_WM_STEPS``, default 4).
"""

import json
import os
import sys

import numpy as np
import pytest
import torch

from lgvsc.semantic.model_cache import model_cache
from lgvsc.semantic.world_models import WORLD_MODELS, SegmentRequest, make_world_model
from lgvsc.semantic.world_models import diffusers_wm, opensora
from lgvsc.semantic.world_models.diffusers_wm import DiffusersWorldModel
from wm_pipelines import KINDS, build

KEYFRAME_SHAPE = (20, 36, 3)  # generated at LTX (32, 32), Wan (16, 32), resized back


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(autouse=True)
def fresh_cache():
    """Every test starts and ends with no model loaded in this process."""
    model_cache().release()
    yield
    model_cache().release()


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    """kind -> folder of its tiny pipeline (built once per module)."""
    built = {}

    def get(kind):
        if kind not in built:
            built[kind] = build(kind, tmp_path_factory.mktemp(kind), seed=0)
        return built[kind]

    return get


def request(caption="a dog runs on the grass", seed=0):
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 100, KEYFRAME_SHAPE, dtype=np.uint8)
    last = rng.integers(150, 255, KEYFRAME_SHAPE, dtype=np.uint8)
    return SegmentRequest(first=first, last=last, caption=caption, motion_text="motion score: 3.2")


def count_encoder_calls(wm):
    """A list that grows by one per text-encoder forward."""
    calls = []
    wm.pipe.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    return calls


def loads():
    """Loads so far in this process, all keys together."""
    return sum(model_cache().load_counts.values())


# -- diffusers -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_generate_shape_and_prompt_cache(pipe_dir, kind):
    wm = DiffusersWorldModel(pipe_dir(kind), steps=2, device="cpu")
    assert wm.kind == kind and wm.guidance > 1.0  # pipeline default cfg: negative prompt used
    n = wm.valid_length(6)
    assert n == 9
    calls = count_encoder_calls(wm)
    req = request()
    out = wm.generate(req, n, None, torch.Generator().manual_seed(0))
    assert out.shape == (n, *KEYFRAME_SHAPE) and out.dtype == np.uint8
    assert len(calls) == 2  # caption + negative prompt
    # second call, same caption: the cached embeddings are reused, the encoder does not run
    last_index = 5 if wm.places_keyframes_anywhere else None
    again = wm.generate(request(), n, last_index, torch.Generator().manual_seed(0))
    assert again.shape == out.shape and len(calls) == 2
    if last_index is None:
        assert np.array_equal(again, out)  # same seed, same request -> same frames
    wm.prompt_kwargs("a new caption")
    assert len(calls) == 3  # a new caption encodes once; the negative stays cached


@pytest.mark.parametrize("kind,expected", [
    ("ltx", {1: 1, 2: 9, 6: 9, 9: 9, 10: 17, 17: 17, 18: 25}),
    ("wan-flf2v", {1: 1, 2: 5, 5: 5, 6: 9, 9: 9, 10: 13}),
    ("wan-vace", {2: 5, 6: 9, 14: 17}),
])
def test_valid_length_and_sizes(pipe_dir, kind, expected):
    wm = DiffusersWorldModel(pipe_dir(kind), device="cpu")
    assert {n: wm.valid_length(n) for n in expected} == expected
    assert wm.places_keyframes_anywhere == (kind != "wan-flf2v")
    assert wm.target_size(KEYFRAME_SHAPE[:2]) == ((32, 32) if kind == "ltx" else (16, 32))
    assert wm.multiple == (32 if kind == "ltx" else 16)
    fixed = DiffusersWorldModel(pipe_dir(kind), resolution=(64, 96), device="cpu")
    assert fixed.target_size(KEYFRAME_SHAPE[:2]) == (64, 96)


@pytest.mark.parametrize("kind", KINDS)
def test_one_and_two_frame_segments_skip_the_model(pipe_dir, kind):
    before = loads()
    wm = DiffusersWorldModel(pipe_dir(kind), device="cpu")
    req = request()
    g = torch.Generator().manual_seed(0)
    one = wm.generate(SegmentRequest(first=req.first, last=None, caption="x"), 1, None, g)
    assert one.shape == (1, *KEYFRAME_SHAPE) and np.array_equal(one[0], req.first)
    held = wm.generate(SegmentRequest(first=req.first, last=None), 9, None, g)
    assert held.shape == (9, *KEYFRAME_SHAPE) and (held == req.first).all()
    two = wm.generate(req, 2, None, g)
    assert np.array_equal(two, np.stack([req.first, req.last]))
    assert loads() == before and not model_cache().loaded()  # never loaded


def test_request_errors(pipe_dir):
    before = loads()
    wm = DiffusersWorldModel(pipe_dir("wan-flf2v"), device="cpu")
    req, g = request(), torch.Generator()
    with pytest.raises(ValueError, match="valid_length"):
        wm.generate(req, 6, None, g)
    with pytest.raises(ValueError, match="last frame only"):
        wm.generate(req, 9, 5, g)
    with pytest.raises(ValueError, match="last_index"):
        wm.generate(req, 9, 9, g)
    with pytest.raises(ValueError, match="request.last"):
        wm.generate(SegmentRequest(first=req.first, last=req.last[:10]), 9, None, g)
    with pytest.raises(ValueError, match="generator"):
        wm.generate(req, 9, None, None)
    assert loads() == before  # refused before loading


def test_settings_errors(pipe_dir, tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        DiffusersWorldModel(tmp_path / "nowhere")
    index = {"_class_name": "StableDiffusionPipeline"}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="StableDiffusionPipeline.*LTXConditionPipeline"):
        DiffusersWorldModel(tmp_path)
    with pytest.raises(ValueError, match="pipeline must be"):
        DiffusersWorldModel(tmp_path, pipeline="sora")
    for kw, name in ((dict(steps=0), "steps"), (dict(guidance=-1.0), "guidance"),
                     (dict(resolution=(32,)), "resolution"),
                     (dict(cpu_offload="yes"), "cpu_offload"),
                     (dict(offload="cpu"), "offload: must be one of none, model, sequential"),
                     (dict(offload="sequential", cpu_offload=True), "cpu_offload: true means"),
                     (dict(max_sequence_length=0), "max_sequence_length"),
                     (dict(dtype="int8"), "dtype"), (dict(device="tpu"), "device")):
        with pytest.raises(ValueError, match=name):
            DiffusersWorldModel(pipe_dir("ltx"), **kw)
    with pytest.raises(ValueError, match="resolution"):
        DiffusersWorldModel(pipe_dir("ltx"), resolution=(48, 64))  # not multiples of 32
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cpu_offload: True needs a CUDA device"):
            DiffusersWorldModel(pipe_dir("ltx"), cpu_offload=True)
        for mode in ("model", "sequential"):
            with pytest.raises(ValueError, match=f"offload: '{mode}' needs a CUDA device, got "
                                                 "device 'cpu'"):
                DiffusersWorldModel(pipe_dir("ltx"), offload=mode)


def test_auto_detection_and_registry(pipe_dir):
    assert WORLD_MODELS.get("diffusers") is DiffusersWorldModel
    assert WORLD_MODELS.get("opensora") is opensora.OpenSoraWorldModel
    for kind in KINDS:
        assert diffusers_wm.detect_pipeline(pipe_dir(kind)) == kind
    wm = make_world_model("diffusers", path=str(pipe_dir("ltx")), pipeline="ltx", steps=3,
                          guidance=1.0, device="cpu")
    assert wm.steps == 3 and "negative_prompt_embeds" not in wm.prompt_kwargs("x")


def test_vace_inputs():
    from PIL import Image

    a, b = Image.new("RGB", (8, 4), (1, 2, 3)), Image.new("RGB", (8, 4), (9, 9, 9))
    video, mask = diffusers_wm.vace_inputs(a, b, 9, 5)
    assert len(video) == len(mask) == 9 and video[0] is a and video[5] is b
    assert [np.asarray(m).max() for m in mask] == [0, 255, 255, 255, 255, 0, 255, 255, 255]
    assert np.asarray(video[8]).tolist()[0][0] == [diffusers_wm.VACE_FILL] * 3


# -- Open-Sora helpers -----------------------------------------------------------


def test_opensora_latent_frames_and_valid_length():
    assert [opensora.latent_frames(n) for n in (1, 5, 9, 16, 17, 18, 34, 51)] == \
        [1, 2, 3, 4, 5, 6, 10, 15]
    assert [opensora.valid_length(n) for n in (1, 2, 6, 9, 14, 17, 18, 19, 35, 51)] == \
        [1, 5, 9, 9, 17, 17, 18, 22, 35, 51]
    for n in range(1, 80):
        v = opensora.valid_length(n)
        assert v >= n and opensora.valid_length(v) == v and v % 17 % 4 in (0, 1)
    with pytest.raises(ValueError, match="n_frames"):
        opensora.latent_frames(0)


def test_opensora_mask_strategy_strings():
    two = opensora.mask_strategy(2)
    assert two == "0,0,0,0,1,0;0,1,0,-1,1,0"
    # the Open-Sora v1.2 docs' two-image example, "0;0,1,0,-1,1", with defaults filled in
    assert opensora.parse_mask_strategy(two) == opensora.parse_mask_strategy("0;0,1,0,-1,1")
    three = opensora.mask_strategy(3)
    assert three == "0,0,0,0,1,0;0,1,0,-1,1,0;1,3,-1,0,1,0;1,2,0,-1,1,0"
    assert opensora.mask_strategy(3, previous_frames=0) == \
        "0,0,0,0,1,0;0,1,0,-1,1,0;1,1,0,0,1,0;1,2,0,-1,1,0"
    four = opensora.parse_mask_strategy(opensora.mask_strategy(4, previous_frames=2,
                                                               edit_ratio=0.25))
    assert four[-2:] == [(2, 5, -2, 0, 2, 0.25), (2, 3, 0, -1, 1, 0.25)]
    # keyframe i sits in the last latent frame (target -1) of loop i-1
    assert [(t[0], t[1]) for t in four if t[3] == -1] == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(ValueError, match="n_keyframes"):
        opensora.mask_strategy(1)


def test_opensora_trim_boundaries():
    video = np.arange(20 * 2 * 2 * 3, dtype=np.int64).reshape(20, 2, 2, 3).astype(np.uint8)
    keys = [0, 8, 13, 19]  # K = 4 keyframes, F = 20 frames
    segs = [video[a:b + 1] for a, b in zip(keys, keys[1:])]
    assert sum(len(s) for s in segs) == 20 + 4 - 2
    out = opensora.trim_boundaries(segs)
    assert out.shape == video.shape and np.array_equal(out, video)
    with pytest.raises(ValueError, match="segment 1"):
        opensora.trim_boundaries([video[:3], video[:3, :1]])


def test_opensora_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensora", None)  # makes `import opensora` fail
    with pytest.raises(ValueError) as err:
        make_world_model("opensora")
    msg = str(err.value)
    assert "\n" not in msg and "Open-Sora is not installed" in msg
    assert "'diffusers'" in msg and "LTX" in msg and "Wan" in msg and "'interp'" in msg
    with pytest.raises(ValueError, match="resolution"):
        opensora.OpenSoraWorldModel(resolution=(320, 570))


# -- real weights ------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("LGVSC_WM_PATH"),
                    reason="set LGVSC_WM_PATH to a local diffusers LTX / Wan pipeline directory")
def test_real_pipeline():
    wm = DiffusersWorldModel(os.environ["LGVSC_WM_PATH"],
                             steps=int(os.environ.get("LGVSC_WM_STEPS", "4")))
    h, w = 2 * wm.multiple * 4, 3 * wm.multiple * 4
    yy, xx = np.mgrid[0:h, 0:w]
    first = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 60)], -1).astype(np.uint8)
    req = SegmentRequest(first=first, last=first[:, ::-1].copy(), caption="a colorful gradient",
                         motion_text="motion score: 2.0")
    n = wm.valid_length(9)
    out = wm.generate(req, n, None, torch.Generator().manual_seed(0))
    assert out.shape == (n, h, w, 3) and out.dtype == np.uint8 and out.std() > 1.0


def test_text_only_scheme_with_a_tiny_ltx_pipeline(tmp_path):
    """Text-Only on the real tier: the caption alone, through LTX text-to-video."""
    import torch

    from lgvsc.link.channels import AWGN
    from lgvsc.sim.schemes.lgvsc import TextOnly, TextOnlyConfig
    from lgvsc.sim.seeding import RunContext
    from lgvsc.sim.video import VideoSpec, load_video

    path = build("ltx", tmp_path / "ltx")
    cfg = TextOnlyConfig(name="t", type="text-only",
                         world_model={"type": "diffusers", "path": str(path), "steps": 2})
    assert TextOnly.unavailable_reason(cfg) is None
    before = loads()
    clip = load_video(VideoSpec(source="synthetic:static", frames=5, size=(32, 32)))
    tx = TextOnly(cfg, RunContext()).transmit(clip, AWGN(), 10, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)  # generated as the frames are read
    assert tx.frames.shape == clip.frames.shape and tx.frames.dtype == np.uint8
    assert tx.extra["captions_received"] == tx.extra["captions_sent"] == list(clip.captions[:1])
    assert tx.channel_uses > 0 and loads() == before + 1  # LTXPipeline on the loaded components
    wan = TextOnlyConfig(name="t", type="text-only",
                         world_model={"type": "diffusers", "path": str(path), "pipeline": "wan-flf2v"})
    assert "needs keyframes" in TextOnly.unavailable_reason(wan)


@pytest.mark.parametrize("kind", ["ltx", "wan-flf2v"])
def test_tiny_pipelines_through_dsa_and_sfa_give_exact_segment_lengths(pipe_dir, kind):
    from lgvsc.semantic.adapters import DSA, SFA

    wm = DiffusersWorldModel(pipe_dir(kind), steps=2)
    g = torch.Generator().manual_seed(0)
    for n in (6, 7):  # rounded up to 9 (LTX 8k+1, Wan 4k+1), then trimmed / resampled
        for adapter in (DSA(), SFA(9)):
            out = adapter.frames(wm, request(), n, g)
            assert out.shape == (n, *KEYFRAME_SHAPE) and out.dtype == np.uint8
