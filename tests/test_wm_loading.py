"""Diffusers world model: one pipeline per process, lazy loading, offload, version limits.

Tiny random pipelines (``wm_pipelines``) on the CPU: two world models on one folder
share one loaded pipeline (counted in ``model_cache().load_counts``); building one
and ``model_info`` load nothing; the folder's config files give the same factors and
defaults as the loaded pipeline; LTX-Video 0.9.1-style folders (dynamic-shift
scheduler) run with ``LTXPipeline``'s schedule; Wan ``expand_timesteps`` folders are
refused for first/last-frame mode; ``offload`` needs CUDA.
"""

import json
import shutil

import numpy as np
import pytest
import torch

from lgvsc.semantic.model_cache import estimate_bytes, model_cache
from lgvsc.semantic.world_models import WORLD_MODELS, SegmentRequest
from lgvsc.semantic.world_models import diffusers_wm
from lgvsc.semantic.world_models.diffusers_wm import DiffusersWorldModel
from wm_pipelines import KINDS, build

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(autouse=True)
def fresh_cache():
    model_cache().release()
    yield
    model_cache().release()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """kind -> folder of its tiny pipeline (built once per module)."""
    built = {}

    def get(kind):
        if kind not in built:
            built[kind] = build(kind, tmp_path_factory.mktemp(kind), seed=0)
        return built[kind]

    return get


def request(shape=(32, 32, 3), caption="a dog runs on the grass"):
    rng = np.random.default_rng(0)
    return SegmentRequest(first=rng.integers(0, 100, shape, dtype=np.uint8),
                          last=rng.integers(150, 255, shape, dtype=np.uint8), caption=caption)


def no_loads(monkeypatch):
    import diffusers

    def boom(*a, **k):
        raise AssertionError("a pipeline was loaded")

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", boom)


# -- one pipeline per process ---------------------------------------------------------------
def test_two_world_models_on_one_folder_share_one_pipeline(folder):
    path = folder("ltx")
    a = DiffusersWorldModel(path, steps=2, device="cpu")
    b = DiffusersWorldModel(str(path), steps=3, guidance=1.0, device="cpu")  # other settings
    key = a.info.key
    assert b.info.key == key and key.kind == "diffusers:LTXConditionPipeline"
    assert key.path == str(path.resolve()) and (key.dtype, key.device) == ("float32", "cpu")
    counts = model_cache().load_counts
    before = counts[key]
    for wm in (a, b, a):
        out = wm.generate(request(), 9, 4, torch.Generator().manual_seed(0))
        assert out.shape == (9, 32, 32, 3)
    assert counts[key] == before + 1 and a.pipe is b.pipe
    model_cache().release([key])
    a.generate(request(), 9, None, torch.Generator().manual_seed(0))  # released: loads again
    assert counts[key] == before + 2


def test_building_and_model_info_load_nothing(folder, monkeypatch):
    no_loads(monkeypatch)
    for kind in KINDS:
        path = folder(kind)
        wm = DiffusersWorldModel(path, device="cpu")
        info = DiffusersWorldModel.model_info(path=str(path), device="cpu")
        assert [i.key for i in info] == [wm.info.key]
        assert wm.valid_length(6) == 9 and wm.target_size((20, 36)) in ((32, 32), (16, 32))
        with pytest.raises(AssertionError, match="loaded"):
            wm.pipe
    assert not model_cache().loaded()


def test_model_info_keys_and_estimate(folder):
    path = folder("wan-flf2v")
    (info,) = DiffusersWorldModel.model_info(path=str(path), device="cpu", dtype="bfloat16")
    assert info.key.kind == "diffusers:WanImageToVideoPipeline" and info.key.dtype == "bfloat16"
    (half,) = DiffusersWorldModel.model_info(path=str(path), device="cuda", dtype="auto")
    assert (half.key.device, half.key.dtype) == ("cuda", "bfloat16")
    (off,) = DiffusersWorldModel.model_info(path=str(path), device="cuda", offload="model")
    assert off.key.options == (("offload", "model"),) and off.key != half.key
    assert DiffusersWorldModel.model_info(path=str(path), device="cuda",
                                          cpu_offload=True)[0].key == off.key
    assert "text_encoder" in info.note and "image_encoder" in info.note
    # the VAE and the image encoder stay float32 (as loaded), the rest in bfloat16
    expect = sum(estimate_bytes(path / n, "float32" if n in ("vae", "image_encoder")
                                else "bfloat16")
                 for n in ("transformer", "text_encoder", "vae", "image_encoder"))
    assert info.bytes == expect
    assert WORLD_MODELS.get("interp").model_info() == []


@pytest.mark.parametrize("kind", KINDS)
def test_estimate_matches_the_loaded_pipeline(folder, kind):
    wm = DiffusersWorldModel(folder(kind), device="cpu")
    tensors = {t.data_ptr(): t for m in wm.pipe.components.values()
               if isinstance(m, torch.nn.Module) for t in m.state_dict().values()}  # tied once
    loaded = sum(t.numel() * t.element_size() for t in tensors.values())
    assert abs(wm.info.bytes - loaded) <= 0.01 * loaded


@pytest.mark.parametrize("kind", [*KINDS, "ltx-dynamic"])
def test_config_files_give_what_the_loaded_pipeline_says(folder, kind):
    wm = DiffusersWorldModel(folder(kind), device="cpu")
    temporal, multiple = wm.temporal, wm.multiple
    p = wm.pipe
    if wm.kind == "ltx":
        assert temporal == p.vae_temporal_compression_ratio
        spatial = p.vae_spatial_compression_ratio * p.transformer_spatial_patch_size
    else:
        assert temporal == p.vae_scale_factor_temporal
        spatial = p.vae_scale_factor_spatial * p.transformer.config.patch_size[1]
    assert multiple % spatial == 0 and multiple % diffusers_wm.MIN_MULTIPLE[wm.kind] == 0
    import inspect

    sig = inspect.signature(p.__call__).parameters
    assert wm.guidance == sig["guidance_scale"].default
    assert wm.max_sequence_length == sig["max_sequence_length"].default


# -- offload --------------------------------------------------------------------------------
def test_offload_settings(folder):
    path = str(folder("ltx"))
    check = DiffusersWorldModel.check_weights
    for mode in ("model", "sequential"):
        with pytest.raises(ValueError, match=f"^offload: '{mode}' needs a CUDA device, got "
                                             "device 'cpu'$"):
            check(path=path, offload=mode, device="cpu")
        check(path=path, offload=mode, device="cuda")  # the units may run on a GPU machine
    with pytest.raises(ValueError, match="^cpu_offload: True needs a CUDA device"):
        check(path=path, cpu_offload=True, device="cpu")
    with pytest.raises(ValueError, match="^offload: must be one of none, model, sequential"):
        check(path=path, offload=True)
    with pytest.raises(ValueError, match="^cpu_offload: true means offload: model"):
        check(path=path, offload="sequential", cpu_offload=True)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="^offload: 'model' needs a CUDA device"):
            DiffusersWorldModel(path, offload="model")  # device auto -> cpu here


@pytest.mark.parametrize("mode,method", [("none", "to"), ("model", "enable_model_cpu_offload"),
                                         ("sequential", "enable_sequential_cpu_offload")])
def test_offload_calls_the_diffusers_method(folder, monkeypatch, mode, method):
    """Which diffusers call each ``offload`` makes (the CUDA device itself is mocked)."""
    import diffusers

    calls = []
    for name in ("to", "enable_model_cpu_offload", "enable_sequential_cpu_offload"):
        monkeypatch.setattr(diffusers.DiffusionPipeline, name,
                            lambda self, *a, _n=name, **k: calls.append((_n, a, k)))
    wm = DiffusersWorldModel(folder("ltx"), device="cpu")
    wm.offload = mode
    wm._load()
    assert [c[0] for c in calls] == [method]
    if mode != "none":
        assert calls[0][2] == {"device": torch.device("cpu")}


# -- LTX-Video 0.9.0 / 0.9.1: dynamic shifting ------------------------------------------------
def test_plain_ltx_condition_pipeline_fails_on_a_dynamic_shift_folder(folder):
    """The bug being worked around: diffusers' LTXConditionPipeline never passes ``mu``."""
    from diffusers import LTXConditionPipeline
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    from PIL import Image

    pipe = LTXConditionPipeline.from_pretrained(str(folder("ltx-dynamic")), local_files_only=True)
    img = Image.new("RGB", (32, 32))
    with pytest.raises(ValueError, match="`mu` must be passed"):
        pipe(prompt="x", conditions=[LTXVideoCondition(image=img, frame_index=0)], height=32,
             width=32, num_frames=9, num_inference_steps=2, output_type="np")


def test_dynamic_shift_folder_runs_with_ltx_pipelines_schedule(folder):
    path = folder("ltx-dynamic")
    assert json.loads((path / "model_index.json").read_text())["_class_name"] == "LTXPipeline"
    assert diffusers_wm.version_limits(path)[0].startswith("LTX-Video 0.9.0/0.9.1")
    wm = DiffusersWorldModel(path, steps=4, device="cpu")
    assert wm.kind == "ltx" and wm.pipe.scheduler.config.use_dynamic_shifting
    seen = []
    wm.pipe.transformer.register_forward_pre_hook(
        lambda m, a, k: seen.append(float(k["timestep"].max())), with_kwargs=True)
    out = wm.generate(request(), 17, 9, torch.Generator().manual_seed(0))
    assert out.shape == (17, 32, 32, 3) and out.dtype == np.uint8
    assert wm.pipe.scheduler.config.use_dynamic_shifting  # the swap is undone
    keyframe_run, seen[:] = list(seen), []
    # what diffusers' own LTXPipeline samples at for the same video
    wm.text_pipe()(prompt="x", height=32, width=32, num_frames=17, num_inference_steps=4,
                   guidance_scale=1.0, output_type="np", generator=torch.Generator())
    assert keyframe_run == pytest.approx(seen, abs=1e-3)  # guidance 3 runs cfg in one batch
    shifted = wm.ltx_timesteps(17, 32, 32)
    assert shifted == pytest.approx(seen, abs=1e-3)
    # not the condition pipeline's own linear-quadratic schedule
    from diffusers.pipelines.ltx.pipeline_ltx_condition import linear_quadratic_schedule

    assert shifted != pytest.approx((linear_quadratic_schedule(4) * 1000).tolist(), abs=1)
    fixed = DiffusersWorldModel(folder("ltx"), device="cpu")
    assert fixed.ltx_timesteps(17, 32, 32) is None  # 0.9.5+ style: nothing to do


def test_text_to_video_uses_ltx_pipeline_on_the_loaded_components(folder, monkeypatch):
    import diffusers

    ran = []
    real = diffusers.LTXPipeline.__call__
    monkeypatch.setattr(diffusers.LTXPipeline, "__call__",
                        lambda self, *a, **k: ran.append(self) or real(self, *a, **k))
    wm = DiffusersWorldModel(folder("ltx-dynamic"), steps=2, device="cpu")
    counts = model_cache().load_counts
    before = counts[wm.info.key]
    video = wm.generate_from_text("a dog runs", 5, (20, 36), torch.Generator().manual_seed(0))
    wm.generate(request(), 9, None, torch.Generator().manual_seed(0))
    assert video.shape == (5, 20, 36, 3) and len(ran) == 1
    assert ran[0].transformer is wm.pipe.transformer and counts[wm.info.key] == before + 1


# -- Wan expand_timesteps ---------------------------------------------------------------------
def test_wan_expand_timesteps_refuses_first_last_frame_mode(folder, tmp_path, monkeypatch):
    path = tmp_path / "wan22"
    shutil.copytree(folder("wan-flf2v"), path)
    index = json.loads((path / "model_index.json").read_text())
    (path / "model_index.json").write_text(json.dumps({**index, "expand_timesteps": True}))
    no_loads(monkeypatch)
    with pytest.raises(ValueError) as err:
        DiffusersWorldModel(path, device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("path: ") and "expand_timesteps: true" in msg
    assert "ignores last_image" in msg and "pipeline: wan-vace" in msg
    with pytest.raises(ValueError, match="^path: .*expand_timesteps: true"):
        DiffusersWorldModel.check_weights(path=str(path))
    with pytest.raises(ValueError, match=r"^s\.world_model\.path: .*ignores last_image"):
        WORLD_MODELS.check_spec({"type": "diffusers", "path": str(path)}, "s.world_model")
    assert "first/last-frame mode refused" in diffusers_wm.version_limits(path)[0]
    # the same folder without the flag is fine
    (path / "model_index.json").write_text(json.dumps(index))
    DiffusersWorldModel.check_weights(path=str(path))
    assert diffusers_wm.version_limits(path) == []
