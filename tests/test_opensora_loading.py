"""Open-Sora v1.2.0 world model without Open-Sora: weight formats, loading routes, prompts.

Open-Sora is not installed here. The weight paths are tiny synthetic folders and
files (a Hugging Face folder: ``config.json`` + ``model.safetensors``; a ColossalAI
checkpoint: a ``model`` subfolder; ``.pt`` / ``.safetensors`` files); the loading
routes and :class:`OpenSoraWorldModel` run against a fake of the Open-Sora API
(:func:`fake_api`) that records what it is asked to build and load.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lgvsc.semantic.model_cache import model_cache
from lgvsc.semantic.world_models import SegmentRequest
from lgvsc.semantic.world_models import opensora
from lgvsc.semantic.world_models.opensora import OpenSoraWorldModel


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    model_cache().release()
    yield
    model_cache().release()


def hf_folder(path: Path, model_type: str) -> Path:
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type}))
    save_file({"w": torch.zeros(2)}, str(path / "model.safetensors"))
    return path


def cache_repo(repo_id: str, source: Path) -> Path:
    """``source`` copied into the HF cache (``$HF_HUB_CACHE``) as ``repo_id``."""
    import os
    import shutil

    repo = Path(os.environ["HF_HUB_CACHE"]) / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / "0123abcd"
    shutil.copytree(source, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    return snap


@pytest.fixture
def weights(tmp_path):
    """Synthetic STDiT3 / VAE weights in every format, and a tiny T5 folder."""
    from safetensors.torch import save_file

    from wm_pipelines import _t5, tokenizer

    w = {"stdit_hf": hf_folder(tmp_path / "stdit", "STDiT3"),
         "vae_hf": hf_folder(tmp_path / "vae", "VideoAutoencoderPipeline"),
         "colossal": tmp_path / "epoch0-global_step10", "pt": tmp_path / "ema.pt",
         "st": tmp_path / "stdit3.safetensors", "empty": tmp_path / "empty",
         "t5": tmp_path / "t5"}
    (w["colossal"] / "model").mkdir(parents=True)
    (w["colossal"] / "model" / "pytorch_model.bin.index.json").write_text("{}")
    torch.save({"w": torch.zeros(2)}, w["pt"])
    save_file({"w": torch.zeros(2)}, str(w["st"]))
    w["empty"].mkdir()
    tok = tokenizer()
    _t5("T5EncoderModel", len(tok)).save_pretrained(str(w["t5"]))
    tok.save_pretrained(str(w["t5"]))
    return {k: str(v) for k, v in w.items()}


# -- formats and checks -----------------------------------------------------------------------
def test_weights_format(weights):
    fmt = opensora.weights_format
    assert fmt(weights["stdit_hf"]) == fmt(weights["vae_hf"]) == "hf"
    assert fmt("hpcai-tech/OpenSora-STDiT-v3") == "hf"  # a repo id
    assert fmt(weights["colossal"]) == "colossalai"
    assert (fmt(weights["pt"]), fmt(weights["st"]), fmt(weights["empty"])) == \
        ("pt", "safetensors", "unknown")


def test_check_weights_takes_hugging_face_folders(weights):
    check = OpenSoraWorldModel.check_weights
    spec = dict(model=weights["stdit_hf"], vae=weights["vae_hf"], text_encoder=weights["t5"],
                local_files_only=False)
    check(**spec)
    check(**{**spec, "model": weights["colossal"], "vae": weights["pt"]})
    check(**{**spec, "model": weights["st"]})
    with pytest.raises(ValueError, match="^vae: .* holds model_type 'STDiT3', not Open-Sora "
                                         "v1.2.0's 'VideoAutoencoderPipeline'"):
        check(**{**spec, "vae": weights["stdit_hf"]})
    with pytest.raises(ValueError, match="^model: .* without a 'model' subfolder .* without "
                                         "config.json \\+ weight files"):
        check(**{**spec, "model": weights["empty"]})
    snap = cache_repo("hpcai-tech/OpenSora-STDiT-v3", Path(weights["stdit_hf"]))
    check(**{**spec, "model": "hpcai-tech/OpenSora-STDiT-v3"})
    (info,) = OpenSoraWorldModel.model_info(**{**spec, "model": "hpcai-tech/OpenSora-STDiT-v3"},
                                            device="cpu")
    assert info.key.path == str(snap.resolve()) and info.key.kind == "opensora"
    assert dict(info.key.options) == {"text_encoder": str(Path(weights["t5"]).resolve()),
                                      "vae": str(Path(weights["vae_hf"]).resolve())}
    assert "T5 (float32)" in info.note and info.bytes > 0


# -- a fake Open-Sora API ----------------------------------------------------------------------
class FakeSTDiT(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw, self.w = kw, torch.nn.Parameter(torch.zeros(2))
        self.y_embedder = torch.nn.Identity()


class FakeVAE(torch.nn.Module):
    out_channels = 4

    def __init__(self, **kw):
        super().__init__()
        self.kw, self.w = kw, torch.nn.Parameter(torch.zeros(2))

    def get_latent_size(self, size):
        t, h, w = size
        return [opensora.latent_frames(t), h // 8, w // 8]

    def encode(self, x):
        return torch.zeros(x.shape[0], 4, *self.get_latent_size(x.shape[2:]))

    def decode(self, z, num_frames):
        return torch.zeros(z.shape[0], 3, num_frames, z.shape[3] * 8, z.shape[4] * 8)


class FakeT5:
    def __init__(self, from_pretrained, model_max_length, local_files_only, device):
        self.path, self.local_files_only = from_pretrained, local_files_only
        self.output_dim, self.model_max_length, self.y_embedder = 8, model_max_length, None


def fake_api():
    calls = []

    def record(name, cls):
        return classmethod(lambda c, path, **k: calls.append((name, path, k)) or cls(**k))

    class Sampler:
        def __init__(self, **kw):
            self.kw = kw

        def sample(self, model, text_encoder, z, prompts, **kw):
            calls.append(("sample", prompts, kw["mask"]))
            return z

    builders = {"t5": FakeT5, "STDiT3-XL/2": FakeSTDiT, "OpenSoraVAE_V1_2": FakeVAE,
                "rflow": Sampler}

    def build_module(cfg, registry, **kw):
        cfg = dict(cfg)
        kind = cfg.pop("type")
        calls.append(("build", kind, cfg))
        return builders[kind](**cfg, **kw)

    stdit = type("STDiT3", (FakeSTDiT,), {"from_pretrained": record("stdit_from_pretrained",
                                                                     FakeSTDiT)})
    vae = type("VAE", (FakeVAE,), {"from_pretrained": record("vae_from_pretrained", FakeVAE)})
    api = SimpleNamespace(
        MODELS="MODELS", SCHEDULERS="SCHEDULERS", build_module=build_module, STDiT3=stdit,
        VideoAutoencoderPipeline=vae,
        load_checkpoint=lambda model, path, strict=False: calls.append(("ckpt", path, strict)),
        apply_mask_strategy=lambda z, refs, ms, loop, align=None: calls.append(("mask", ms)),
        prepare_multi_resolution_info=lambda *a: {}, text_preprocessing=lambda t: t)
    return api, calls


def test_loading_routes(weights):
    api, calls = fake_api()
    model = opensora.load_weights(api, "model", weights["stdit_hf"], True, qk_norm=True)
    assert isinstance(model, FakeSTDiT)
    assert calls == [("stdit_from_pretrained", weights["stdit_hf"],
                      {"local_files_only": True, "qk_norm": True})]  # not a ColossalAI ckpt
    calls.clear()
    opensora.load_weights(api, "model", "hpcai-tech/OpenSora-STDiT-v3", False)
    assert calls == [("stdit_from_pretrained", "hpcai-tech/OpenSora-STDiT-v3",
                      {"local_files_only": False})]
    for key, path, kind in (("model", "colossal", "STDiT3-XL/2"),
                            ("vae", "pt", "OpenSoraVAE_V1_2")):
        calls.clear()
        opensora.load_weights(api, key, weights[path], True)
        assert calls[0][:2] == ("build", kind) and calls[0][2]["from_pretrained"] is None
        assert calls[1] == ("ckpt", weights[path], True)  # strict
    calls.clear()
    assert opensora.load_weights(api, "model", weights["st"], True).w.shape == (2,)
    assert [c[0] for c in calls] == ["build"]
    calls.clear()
    opensora.load_weights(api, "vae", weights["vae_hf"], True)
    (name, path, kw), = calls
    assert (name, path, kw["local_files_only"]) == ("vae_from_pretrained", weights["vae_hf"], True)
    assert kw["vae_2d"]["from_pretrained"] == opensora.SPATIAL_VAE[0]
    assert kw["vae_2d"]["local_files_only"] is True and kw["micro_frame_size"] == 17
    with pytest.raises(ValueError, match="neither a Hugging Face folder"):
        opensora.load_weights(api, "model", weights["empty"], True)


def test_a_safetensors_file_loads_strictly(weights, tmp_path):
    from safetensors.torch import save_file

    api, _ = fake_api()
    bad = tmp_path / "bad.safetensors"
    save_file({"other": torch.zeros(2)}, str(bad))
    with pytest.raises(RuntimeError, match="Missing key"):
        opensora.load_weights(api, "model", str(bad), True)


# -- prompts --------------------------------------------------------------------------------
def test_prompt_suffixes_in_v120_order():
    assert opensora.append_scores("a dog", 6.5, 3.24, "pan left") == \
        "a dog aesthetic score: 6.5. motion score: 3.2. camera motion: pan left."
    assert opensora.append_scores("a dog motion score: 1.0.", 6.5, 3.2) == \
        "a dog motion score: 1.0. aesthetic score: 6.5."  # present ones are not added again
    req = SegmentRequest(first=None, last=None, caption="A dog runs. ",
                         motion_text="motion score: 3.2")
    assert opensora.segment_prompt(req, 6.5) == \
        "A dog runs. aesthetic score: 6.5. motion score: 3.2."
    assert opensora.segment_prompt(req, None) == "A dog runs. motion score: 3.2."
    req.motion_text = "camera pans left"
    assert opensora.segment_prompt(req, 6.5) == \
        "A dog runs. aesthetic score: 6.5. camera pans left."


# -- the world model on the fake API ----------------------------------------------------------
def test_world_model_is_lazy_shares_one_bundle_and_prompts_as_v120(weights, monkeypatch):
    api, calls = fake_api()
    monkeypatch.setattr(opensora, "load_api", lambda: api)
    spec = dict(model=weights["stdit_hf"], vae=weights["vae_hf"], text_encoder=weights["t5"],
                resolution=(32, 48), device="cpu")
    a, b = OpenSoraWorldModel(**spec), OpenSoraWorldModel(**spec, steps=5)
    assert [c[1] for c in calls] == ["rflow", "rflow"]  # samplers only: nothing loaded
    assert a.info.key == b.info.key == OpenSoraWorldModel.model_info(**spec)[0].key
    rng = np.random.default_rng(0)
    req = SegmentRequest(first=rng.integers(0, 255, (20, 36, 3), dtype=np.uint8),
                         last=rng.integers(0, 255, (20, 36, 3), dtype=np.uint8),
                         caption="a dog runs", motion_text="motion score: 3.2")
    before = model_cache().load_counts[a.info.key]
    for wm in (a, b):
        out = wm.generate(req, 9, None, torch.Generator().manual_seed(0))
        assert out.shape == (9, 20, 36, 3) and out.dtype == np.uint8
    assert model_cache().load_counts[a.info.key] == before + 1
    loads = [c for c in calls if c[0].endswith("from_pretrained")]
    assert [(c[0], c[2]["local_files_only"]) for c in loads] == [
        ("vae_from_pretrained", True), ("stdit_from_pretrained", True)]
    t5 = [c for c in calls if c[:2] == ("build", "t5")]
    assert len(t5) == 1 and t5[0][2]["local_files_only"] is True
    prompts = [c[1] for c in calls if c[0] == "sample"]
    assert prompts == [["a dog runs aesthetic score: 6.5. motion score: 3.2."]] * 2
