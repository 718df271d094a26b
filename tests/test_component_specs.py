"""Registry.check_spec: nested component specs checked before anything runs.

Every refusal is ONE line starting with the field path (``schemes[2].scorer``)
and naming the key; good specs pass; the real-tier checks read the model
folders' layout only -- the loaders are patched to fail the test if called.
Tiny real checkpoints come from tests/vlm_models.py and tests/wm_pipelines.py
(what the loaders accept), broken copies of them from the helpers below.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from lgvsc.link.registry import Registry
from lgvsc.semantic.adapters import ADAPTERS
from lgvsc.semantic.captioners import CAPTIONERS
from lgvsc.semantic.keyframe_codecs import KEYFRAME_CODECS
from lgvsc.semantic.keyframe_codecs.ntscc_arch import make_arch
from lgvsc.semantic.keyframe_codecs.ntscc_checkpoint import model_state, save_checkpoint
from lgvsc.semantic.keyframe_codecs.ntscc_model import NTSCCModel
from lgvsc.semantic.scorers import SCORERS
from lgvsc.semantic.selectors import SELECTORS
from lgvsc.semantic.side_info import SIDE_INFO
from lgvsc.semantic.world_models import WORLD_MODELS

WHERE = "schemes[2].comp"
GIVEN = ("captions", "boundaries")  # what lgvsc fills in for the ``given`` captioner
REGISTRIES = {"scorer": SCORERS, "captioner": CAPTIONERS, "side_info": SIDE_INFO,
              "keyframe_codec": KEYFRAME_CODECS, "world_model": WORLD_MODELS,
              "adapter": ADAPTERS, "selector": SELECTORS}

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# -- fixtures -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny real checkpoints: two VLM layouts, two diffusers pipelines, NTSCC files."""
    from vlm_models import build as build_vlm
    from wm_pipelines import build as build_wm

    root = tmp_path_factory.mktemp("models")
    m = {"qwen": build_vlm("qwen2_vl", root / "qwen", layout="processor"),
         "internvl": build_vlm("internvl", root / "internvl", layout="tokenizer"),
         "ltx": build_wm("ltx", root / "ltx"), "vace": build_wm("wan-vace", root / "vace")}
    tiny = NTSCCModel(make_arch("tiny"))
    save_checkpoint(root / "ours.pt", tiny)
    public = {k.replace("g_a.", "ga.", 1): v for k, v in model_state(tiny).items()}
    torch.save(public, root / "public.pt")
    torch.save(public, root / "legacy.pt", _use_new_zipfile_serialization=False)
    m.update(ours=root / "ours.pt", public=root / "public.pt", legacy=root / "legacy.pt")
    text = root / "notes.txt"
    text.write_text("not a checkpoint\n")
    m["text"] = text
    (root / "empty").mkdir()
    m["empty"] = root / "empty"
    return m


@pytest.fixture(autouse=True)
def no_loading(monkeypatch, tmp_path):
    """Any weight loader called by a check fails the test; the HF cache is empty."""
    import diffusers
    import safetensors.torch
    import transformers

    from lgvsc.semantic import vlm_backend
    from lgvsc.semantic.keyframe_codecs import ntscc, ntscc_checkpoint
    from lgvsc.semantic.world_models import diffusers_wm

    def boom(*a, **k):
        raise AssertionError("a spec check loaded weights")

    for owner, name in [(transformers.PreTrainedModel, "from_pretrained"),
                        (transformers.AutoTokenizer, "from_pretrained"),
                        (transformers.AutoProcessor, "from_pretrained"),
                        (transformers.AutoImageProcessor, "from_pretrained"),
                        (diffusers.DiffusionPipeline, "from_pretrained"),
                        (diffusers.ModelMixin, "from_pretrained"),
                        (safetensors.torch, "load_file"), (vlm_backend.VLMBackend, "__init__"),
                        (diffusers_wm.DiffusersWorldModel, "_load"), (ntscc, "load_model"),
                        (ntscc_checkpoint, "load_model"), (NTSCCModel, "load_state_dict")]:
        monkeypatch.setattr(owner, name, boom)
    real_load = torch.load

    def mapped_only(*a, **k):
        if not k.get("mmap"):
            raise AssertionError("a spec check read a checkpoint's tensors")
        return real_load(*a, **k)

    monkeypatch.setattr(torch, "load", mapped_only)
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def cache_repo(cache: Path, repo_id: str, source: Path | None = None,
               files: dict[str, str] | None = None) -> Path:
    """Put ``source`` (a folder) and/or ``files`` into the HF cache layout as ``repo_id``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / "0123abcd"
    if source is not None:
        shutil.copytree(source, snap)
    for name, text in (files or {}).items():
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_text(text)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text("0123abcd")
    return snap


def copy_of(src: Path, tmp_path: Path, name: str = "copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    path.write_text(json.dumps(data))


def refused(registry: Registry, spec, key: str | None, *needles: str, supplied=()) -> str:
    """The one-line refusal, which starts with the field path of ``key``."""
    with pytest.raises(ValueError) as info:
        registry.check_spec(spec, WHERE, supplied)
    msg = str(info.value)
    assert "\n" not in msg, msg
    head = f"{WHERE}.{key}: " if key else f"{WHERE}: "
    assert msg.startswith(head), msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def passes(registry: Registry, spec, supplied=(), within_s: float = 10.0) -> None:
    t = time.perf_counter()
    registry.check_spec(spec, WHERE, supplied)
    assert time.perf_counter() - t < within_s  # layout checks, not model loads


# -- the generic part, for every registry ------------------------------------------------
@pytest.mark.parametrize("family", sorted(REGISTRIES))
def test_shape_type_and_unknown_type(family):
    reg = REGISTRIES[family]
    names = ", ".join(reg.names())
    refused(reg, "vlm", None, "expected a mapping with type:", names)
    refused(reg, ["vlm"], None, "expected a mapping")
    refused(reg, {}, "type", "missing required field; valid: " + names)
    refused(reg, {"path": "/x"}, "type", "missing required field")
    refused(reg, {"type": "no-such"}, "type", f"unknown {family} type 'no-such'; valid: {names}")
    refused(reg, {"type": ["vlm"]}, "type", "unknown")


EMBEDDED = [(family, name) for family, reg in REGISTRIES.items() for name in reg.names()
            if not reg.requirements(name).weights and name != "skem"]


@pytest.mark.parametrize("family,name", EMBEDDED)
def test_defaults_of_every_embedded_component_pass(family, name):
    supplied = GIVEN if (family, name) == ("captioner", "given") else ()
    passes(REGISTRIES[family], {"type": name}, supplied)


@pytest.mark.parametrize("family,name", EMBEDDED)
def test_unknown_key_of_every_embedded_component(family, name):
    msg = refused(REGISTRIES[family], {"type": name, "bogus_key": 1}, "bogus_key",
                  f"unknown key for {family} {name!r}; allowed:",
                  supplied=GIVEN if name == "given" else ())
    assert "captions" not in msg  # supplied keys are not offered


def test_registration_needs_check_weights():
    reg = Registry("widget", check_weights=True)

    class NoCheck:
        pass

    with pytest.raises(TypeError, match="widget 'w' is registered with weights= but "
                                        "'NoCheck' has no check_weights"):
        reg.register("w", weights="a folder (path:)")(NoCheck)
    reg.register("plain")(NoCheck)  # weight-free: nothing to check
    Registry("widget").register("w", weights="x")(NoCheck)  # registries that do not ask
    for family, r in REGISTRIES.items():
        assert r.checks_weights, family
        for name in r.names():
            if r.requirements(name).weights:
                assert callable(getattr(r.get(name), "check_weights", None)), (family, name)


# -- weight-free components: their own values ---------------------------------------------
BAD_EMBEDDED = [
    (SCORERS, {"type": "classical", "slope": -1}, "slope", "slope must be > 0"),
    (SCORERS, {"type": "classical", "d_at_035": 2}, "d_at_035", "(0, 1)"),
    (SCORERS, {"type": "classical", "slope": "steep"}, None, "given slope='steep'"),
    (SIDE_INFO, {"type": "grid", "grid": [0, 4]}, "grid", "grid must be two ints"),
    (SIDE_INFO, {"type": "scalar", "method": "lk"}, "method", "dis, farneback"),
    (SIDE_INFO, {"type": "scalar", "pairs": 0}, "pairs", ">= 1"),
    (KEYFRAME_CODECS, {"type": "softcast-image", "chunks": 9}, "chunks", "chunks must be a grid"),
    (KEYFRAME_CODECS, {"type": "softcast-image", "analog": "zf"}, "analog", "allowed: chunks, "
                                                                            "design_snr_db"),
    (WORLD_MODELS, {"type": "interp", "method": "raft"}, "method", "'dis' or 'farneback'"),
    (WORLD_MODELS, {"type": "interp", "consistency_px": 0}, "consistency_px", "> 0"),
    (ADAPTERS, {"type": "sfa", "length": 1}, "length", ">= 2"),
    (ADAPTERS, {"type": "dsa", "length": 17}, "length", "allowed: (none)"),
    (SELECTORS, {"type": "skim", "segments": 0}, "segments", ">= 1"),
    (SELECTORS, {"type": "skem"}, "scorer", "missing required field"),
    (CAPTIONERS, {"type": "none", "prompt": "x"}, "prompt", "unknown key for captioner 'none'"),
]


@pytest.mark.parametrize("registry,spec,key,needle", BAD_EMBEDDED)
def test_bad_embedded_values(registry, spec, key, needle):
    refused(registry, spec, key, needle)


def test_given_captioner_and_supplied_parameters():
    passes(CAPTIONERS, {"type": "given"}, GIVEN)
    passes(CAPTIONERS, {"type": "none"}, GIVEN)
    refused(CAPTIONERS, {"type": "given"}, "captions", "missing required field")
    refused(CAPTIONERS, {"type": "given", "captions": ["a dog"]}, "captions",
            "filled in by the scheme at run time", supplied=GIVEN)
    refused(CAPTIONERS, {}, "type", "valid: given, none, vlm", supplied=GIVEN)
    refused(CAPTIONERS, {"type": "given", "boundaries": [3]}, "boundaries",
            "filled in by the scheme", supplied=GIVEN)


def test_good_embedded_values():
    passes(SIDE_INFO, {"type": "grid", "grid": [2, 3], "bits": 5})
    passes(KEYFRAME_CODECS, {"type": "softcast-image", "chunks": [16, 16], "design_snr_db": 8})
    passes(ADAPTERS, {"type": "sfa", "length": 9})
    passes(SELECTORS, {"type": "skim", "segments": 3})
    passes(WORLD_MODELS, {"type": "interp", "method": "farneback"})


# -- VLM scorer and captioner -----------------------------------------------------------------
@pytest.mark.parametrize("registry", [SCORERS, CAPTIONERS], ids=["scorer", "captioner"])
@pytest.mark.parametrize("which", ["qwen", "internvl"])
def test_vlm_folders_pass(models, registry, which):
    passes(registry, {"type": "vlm", "path": str(models[which])}, GIVEN, within_s=2.0)


def test_vlm_settings_pass_and_fail(models):
    path = str(models["qwen"])
    passes(SCORERS, {"type": "vlm", "path": path, "mode": "paper", "device": "cuda:1",
                     "dtype": "bfloat16", "batch": 4})
    passes(CAPTIONERS, {"type": "vlm", "path": path, "frames": 4, "device": "cpu"})
    for spec, key, needle in [
            ({"mode": "fast"}, "mode", "direct, paper"), ({"batch": 0}, "batch", ">= 1"),
            ({"min_new_tokens": 999}, "min_new_tokens", "[0, max_new_tokens=128]"),
            ({"device": "gpu"}, "device", "'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
            ({"dtype": "fp16"}, "dtype", "bfloat16, float16, float32"),
            ({"modes": "paper"}, "modes", "unknown key for scorer 'vlm'; allowed: path, mode")]:
        refused(SCORERS, {"type": "vlm", "path": path, **spec}, key, needle)
    for spec, key, needle in [({"frames": 0}, "frames", ">= 1"),
                              ({"prompt": "<image> what?"}, "prompt", "without '<image>'"),
                              ({"dtype": "half"}, "dtype", "got 'half'")]:
        refused(CAPTIONERS, {"type": "vlm", "path": path, **spec}, key, needle)
    refused(SCORERS, {"type": "vlm"}, "path", "missing required field")
    refused(SCORERS, {"type": "vlm", "path": ""}, "path", "must be a local folder or a Hugging "
                                                          "Face repo id")


def _broken_vlm(models, tmp_path, what: str) -> Path:
    d = copy_of(models["qwen"], tmp_path)
    if what == "llama":
        edit_json(d / "config.json", model_type="llama", architectures=["LlamaForCausalLM"])
    elif what == "internvl_chat":
        edit_json(d / "config.json", model_type="internvl_chat")
    elif what == "bad-json":
        (d / "config.json").write_text("{not json")
    elif what == "no-weights":
        (d / "model.safetensors").unlink()
    elif what == "missing-shard":
        (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
            "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    elif what == "no-tokenizer":
        (d / "tokenizer.json").unlink()
    elif what == "no-image-processor":
        edit_json(d / "processor_config.json", image_processor=None)
    return d


@pytest.mark.parametrize("what,needles", [
    ("llama", ("model_type 'llama' (LlamaForCausalLM)", "supported model_type: internvl, "
                                                        "qwen2_5_vl, qwen2_vl")),
    ("internvl_chat", ("'internvl_chat'", "OpenGVLab/InternVL3-8B-hf")),
    ("bad-json", ("config.json' is not a valid JSON file",)),
    ("no-weights", ("has no weight files (*.safetensors, *.bin",)),
    ("missing-shard", ("incomplete", "lists 2 shard files, 1 missing",
                       "model-00002-of-00002.safetensors")),
    ("no-tokenizer", ("has no tokenizer files",)),
    ("no-image-processor", ("has no image processor config",)),
])
@pytest.mark.parametrize("registry", [SCORERS, CAPTIONERS], ids=["scorer", "captioner"])
def test_broken_vlm_folders(models, tmp_path, registry, what, needles):
    d = _broken_vlm(models, tmp_path, what)
    refused(registry, {"type": "vlm", "path": str(d)}, "path", f"'{d}", *needles)


@pytest.mark.parametrize("which,needles", [
    ("ltx", ("has no config.json (not a Hugging Face model folder", "diffusers pipeline "
                                                                    "(LTXConditionPipeline)")),
    ("empty", ("has no config.json", "it is empty")),
    ("text", ("has no config.json", "it is a file")),
])
def test_vlm_path_holding_the_wrong_thing(models, which, needles):
    refused(SCORERS, {"type": "vlm", "path": str(models[which]), "mode": "paper"}, "path",
            *needles)


def test_vlm_repo_id_and_the_hf_cache(models, no_loading):
    cache = no_loading
    for path in ("OpenGVLab/InternVL3-8B-hf", "/models/InternVL3-8B"):
        refused(SCORERS, {"type": "vlm", "path": path}, "path",
                f"'{path}' is not a local folder and not in the Hugging Face cache ({cache})")
    cache_repo(cache, "tiny/qwen-vl", models["qwen"])
    passes(SCORERS, {"type": "vlm", "path": "tiny/qwen-vl"})
    passes(CAPTIONERS, {"type": "vlm", "path": "tiny/qwen-vl"})
    cache_repo(cache, "tiny/partial", files={"README.md": "x"})
    refused(CAPTIONERS, {"type": "vlm", "path": "tiny/partial"}, "path",
            "in the Hugging Face cache", "no config.json")


# -- diffusers world model ------------------------------------------------------------------
def test_diffusers_pipelines_pass(models):
    passes(WORLD_MODELS, {"type": "diffusers", "path": str(models["ltx"])}, within_s=2.0)
    passes(WORLD_MODELS, {"type": "diffusers", "path": str(models["ltx"]), "pipeline": "ltx",
                          "resolution": [64, 96], "steps": 4, "dtype": "float32"})
    passes(WORLD_MODELS, {"type": "diffusers", "path": str(models["vace"])})
    passes(WORLD_MODELS, {"type": "diffusers", "path": str(models["vace"]),
                          "pipeline": "wan-vace", "cpu_offload": True, "device": "cuda"})


def _broken_pipeline(models, tmp_path, what: str) -> Path:
    d = copy_of(models["ltx"], tmp_path)
    if what == "no-vae-folder":
        shutil.rmtree(d / "vae")
    elif what == "no-transformer-weights":
        (d / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    elif what == "no-scheduler-config":
        (d / "scheduler" / "scheduler_config.json").unlink()
    elif what == "no-tokenizer":
        for f in (d / "tokenizer").iterdir():
            f.unlink()
    elif what == "vae-not-listed":
        edit_json(d / "model_index.json", vae=None)
    elif what == "unknown-class":
        edit_json(d / "model_index.json", _class_name="StableDiffusionPipeline")
    elif what == "bad-json":
        (d / "model_index.json").write_text("[1, 2")
    return d


@pytest.mark.parametrize("what,key,needles", [
    ("no-vae-folder", "path", ("incomplete: component 'vae' (diffusers AutoencoderKLLTXVideo) "
                               "has no folder",)),
    ("no-transformer-weights", "path", ("component 'transformer'", "has no weight files")),
    ("no-scheduler-config", "path", ("component 'scheduler'", "no scheduler_config.json")),
    ("no-tokenizer", "path", ("component 'tokenizer'", "no tokenizer files")),
    ("vae-not-listed", "path", ("lacks component 'vae' that LTXConditionPipeline needs",)),
    ("unknown-class", "path", ("'StableDiffusionPipeline', which is not supported; supported: "
                               "LTXConditionPipeline",)),
    ("bad-json", "path", ("model_index.json' is not a valid JSON file",)),
])
def test_broken_pipeline_folders(models, tmp_path, what, key, needles):
    d = _broken_pipeline(models, tmp_path, what)
    refused(WORLD_MODELS, {"type": "diffusers", "path": str(d)}, key, *needles)


def test_diffusers_wrong_things_and_settings(models, no_loading):
    ltx = str(models["ltx"])
    refused(WORLD_MODELS, {"type": "diffusers", "path": ltx, "pipeline": "wan-flf2v"},
            "pipeline", "'wan-flf2v' loads a WanImageToVideoPipeline folder",
            "holds 'LTXConditionPipeline'")
    refused(WORLD_MODELS, {"type": "diffusers", "path": str(models["qwen"])}, "path",
            "has no model_index.json (not a diffusers pipeline folder",
            "a model of type 'qwen2_vl'")
    refused(WORLD_MODELS, {"type": "diffusers", "path": str(models["empty"])}, "path",
            "no model_index.json", "empty")
    refused(WORLD_MODELS, {"type": "diffusers", "path": "/no/such/pipeline"}, "path",
            "is not a local folder", "nothing is downloaded")
    snap = cache_repo(no_loading, "tiny/ltx", models["ltx"])
    refused(WORLD_MODELS, {"type": "diffusers", "path": "tiny/ltx"}, "path",
            f"the Hugging Face cache has it at '{snap}', give that folder")
    for spec, key, needle in [
            ({"pipeline": "cogvideo"}, "pipeline", "'auto' or one of ltx, wan-flf2v, wan-vace"),
            ({"steps": 0}, "steps", ">= 1"), ({"guidance": -1}, "guidance", ">= 0"),
            ({"resolution": [48, 64]}, "resolution", "multiples of 32 for the ltx pipeline"),
            ({"resolution": "big"}, "resolution", "(H, W) positive integers"),
            ({"cpu_offload": True, "device": "cpu"}, "cpu_offload", "needs a CUDA device"),
            ({"device": "tpu"}, "device", "got 'tpu'"), ({"dtype": "int8"}, "dtype", "int8"),
            ({"scheduler": "euler"}, "scheduler", "unknown key for world_model 'diffusers'")]:
        refused(WORLD_MODELS, {"type": "diffusers", "path": ltx, **spec}, key, needle)
    refused(WORLD_MODELS, {"type": "diffusers"}, "path", "missing required field")


# -- Open-Sora -----------------------------------------------------------------------------------
@pytest.fixture
def opensora_files(models, tmp_path):
    """Local STDiT3 / VAE checkpoint files and a T5 folder (config + weights + tokenizer)."""
    from safetensors.torch import save_file

    stdit = tmp_path / "stdit3.safetensors"
    save_file({"w": torch.zeros(2)}, str(stdit))
    vae = tmp_path / "vae.pth"
    torch.save({"w": torch.zeros(2)}, vae)
    t5 = copy_of(models["ltx"] / "text_encoder", tmp_path, "t5")
    shutil.copy(models["ltx"] / "tokenizer" / "tokenizer.json", t5)
    return {"model": str(stdit), "vae": str(vae), "text_encoder": str(t5)}


def test_opensora_local_files(opensora_files, no_loading, tmp_path, models):
    spec = {"type": "opensora", **opensora_files}
    passes(WORLD_MODELS, {**spec, "local_files_only": False})
    refused(WORLD_MODELS, spec, "vae", "also loads 'PixArt-alpha/pixart_sigma_sdxlvae_T5_"
                                       "diffusers' (subfolder 'vae')", str(no_loading))
    cache_repo(no_loading, "PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers",
               files={"vae/config.json": "{}"})
    passes(WORLD_MODELS, spec)
    passes(WORLD_MODELS, {**spec, "resolution": [240, 432], "steps": 10, "dtype": "float16"})
    for over, key, needle in [
            ({"model": str(models["text"])}, "model", "must end in .safetensors, .pt or .pth"),
            ({"vae": str(models["empty"])}, "vae", "without a 'model' subfolder"),
            ({"model": str(models["qwen"])}, "model", "holds model_type 'qwen2_vl', not "
                                                      "Open-Sora v1.2.0's 'STDiT3'"),
            ({"text_encoder": str(models["qwen"])}, "text_encoder",
             "holds model_type 'qwen2_vl', not a T5 encoder"),
            ({"text_encoder": str(models["ltx"])}, "text_encoder", "has no config.json"),
            ({"model": "hpcai-tech/OpenSora-STDiT-v3"}, "model", "not in the Hugging Face cache"),
            ({"resolution": [100, 200]}, "resolution", "multiples of 16"),
            ({"steps": 0}, "steps", ">= 1"), ({"edit_ratio": 2}, "edit_ratio", "[0, 1]"),
            ({"local_files_only": "yes"}, "local_files_only", "true or false"),
            ({"device": "mps"}, "device", "'mps'")]:
        refused(WORLD_MODELS, {**spec, **over}, key, needle)
    bad = tmp_path / "fake.pt"
    bad.write_text("hello")
    refused(WORLD_MODELS, {**spec, "vae": str(bad)}, "vae", "is not a checkpoint")


def test_opensora_defaults_need_the_cache(no_loading):
    refused(WORLD_MODELS, {"type": "opensora"}, "model",
            f"'hpcai-tech/OpenSora-STDiT-v3' is not a local folder and not in the Hugging Face "
            f"cache ({no_loading})")


# -- NTSCC ---------------------------------------------------------------------------------------
def test_ntscc_checkpoints_pass(models):
    passes(KEYFRAME_CODECS, {"type": "ntscc"})  # random weights
    passes(KEYFRAME_CODECS, {"type": "ntscc", "checkpoint": str(models["ours"])})
    passes(KEYFRAME_CODECS, {"type": "ntscc", "checkpoint": str(models["public"]),
                             "arch": "tiny", "max_eta": 0.2, "device": "cuda:0"})
    passes(KEYFRAME_CODECS, {"type": "ntscc", "checkpoint": str(models["legacy"]),
                             "arch": "tiny"})  # header only: legacy files cannot be mapped


@pytest.mark.parametrize("over,key,needles", [
    ({"checkpoint": "TEXT"}, "checkpoint", ("is not a torch checkpoint (its header is not "
                                            "torch.save zip or legacy torch.save pickle)",)),
    ({"checkpoint": "EMPTY"}, "checkpoint", ("is not a file", "it is empty")),
    ({"checkpoint": "/no/such.pt"}, "checkpoint", ("'/no/such.pt' does not exist",)),
    ({"checkpoint": "PUBLIC"}, "checkpoint", ("does not match the model", "missing keys")),
    ({"checkpoint": "PUBLIC", "arch": "tiny", "rate_choices": [4, 8]}, "checkpoint",
     ("NTSCC checkpoint",)),
    ({"arch": "huge"}, "arch", ("arch must be one of ['paper', 'small', 'tiny']",)),
    ({"width": 6}, "width", ("multiple of 4",)),
    ({"widht": 64}, "widht", ("unknown key for keyframe_codec 'ntscc'; allowed: checkpoint",)),
    ({"digital": "ldpc"}, "digital", ("unknown key",)),
    ({"default_snr_db": float("inf")}, "default_snr_db", ("finite",)),
    ({"max_eta": 0}, "max_eta", ("> 0 or None",)),
    ({"device": "quantum"}, "device", ("torch device string",)),
])
def test_ntscc_refusals(models, over, key, needles):
    over = {k: str(models[v.lower()]) if v in ("TEXT", "EMPTY", "PUBLIC") else v
            for k, v in over.items()}
    refused(KEYFRAME_CODECS, {"type": "ntscc", **over}, key, *needles)


def test_ntscc_shape_mismatch_names_the_file(tmp_path):
    wide = tmp_path / "wide.pt"
    torch.save(model_state(NTSCCModel(make_arch("tiny", latent_channels=32))), wide)
    refused(KEYFRAME_CODECS, {"type": "ntscc", "checkpoint": str(wide), "arch": "tiny"},
            "checkpoint", f"NTSCC checkpoint {wide}", "shape mismatches")
    passes(KEYFRAME_CODECS, {"type": "ntscc", "checkpoint": str(wide), "arch": "tiny",
                             "latent_channels": 32})


def test_the_loader_guard_works(models):
    """The patched loaders do fire when a component really loads (so the passes above
    prove that the checks load nothing)."""
    from lgvsc.semantic.keyframe_codecs.ntscc import NTSCC
    from lgvsc.semantic.world_models.diffusers_wm import DiffusersWorldModel

    with pytest.raises(AssertionError, match="loaded weights"):
        SCORERS.get("vlm")(str(models["qwen"]), device="cpu").backend  # lazy: first use loads
    with pytest.raises(AssertionError, match="loaded weights"):
        DiffusersWorldModel(str(models["ltx"]), device="cpu").pipe  # lazy: first use loads
    with pytest.raises(AssertionError, match="loaded weights"):
        NTSCC(checkpoint=str(models["ours"])).model  # lazy: first use loads
    with pytest.raises(AssertionError, match="tensors"):
        torch.load(models["ours"])
