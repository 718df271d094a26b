"""Weight-backed metrics, exercised with random weights built in code.

Real weights: set LGVSC_VGG16 / LGVSC_CLIP to run them on real checkpoints
(tests/test_metrics_deep.py::test_real_weights_if_given).
"""

import importlib
import os

import numpy as np
import pytest
import torch

from lgvsc.sim.metrics import METRICS, resolve_metrics


def _frames(seed, n=2, size=48):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def random_vgg16(tmp_path_factory):
    """A torchvision vgg16 state dict (features only) with random weights, on disk."""
    from torchvision.models import vgg16

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    state = {f"features.{k}": v for k, v in vgg16(weights=None).features.state_dict().items()}
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2),
                     vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8),
                     projection_dim=8)
    path = tmp_path_factory.mktemp("clip")
    CLIPModel(cfg).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.mark.parametrize("name", ["lpips", "dists"])
def test_vgg_metrics_with_random_weights(monkeypatch, random_vgg16, name):
    importlib.import_module({"lpips": "lpips", "dists": "DISTS_pytorch"}[name])  # hf extra
    monkeypatch.setenv("LGVSC_VGG16", str(random_vgg16))
    m = METRICS.get(name)()
    assert m.unavailable_reason() is None
    x, y = _frames(0), _frames(1)
    same, diff = m(x, x.copy()), m(x, y)
    assert same == pytest.approx(0.0, abs=1e-4) and diff > same
    assert m.frame_scores(x, y).shape == (2,)


def test_clip_with_tiny_model(monkeypatch, tiny_clip):
    monkeypatch.setenv("LGVSC_CLIP", str(tiny_clip))
    m = METRICS.get("clip")()
    assert m.unavailable_reason() is None
    x, y = _frames(0, 3), _frames(1, 3)
    assert m(x, x.copy()) == pytest.approx(1.0, abs=1e-5)
    assert 0.0 <= m(x, y) < 1.0


def test_missing_weights_are_unavailable_not_zero(monkeypatch, tmp_path):
    monkeypatch.setenv("LGVSC_VGG16", str(tmp_path / "nope.pth"))
    monkeypatch.setenv("LGVSC_CLIP", str(tmp_path / "nope"))
    ok, missing = resolve_metrics(["psnr", "lpips", "dists", "clip"])
    assert list(ok) == ["psnr"]
    assert "LGVSC_VGG16" in missing["lpips"] and "LGVSC_CLIP" in missing["clip"]


def test_unavailable_metric_recorded_once_and_never_zero(monkeypatch, tmp_path, capsys):
    from lgvsc.sim.runner import run
    from lgvsc.sim.scenario import validate

    monkeypatch.setenv("LGVSC_VGG16", str(tmp_path / "nope.pth"))
    sc = validate({"name": "t", "kind": "video", "seed": 0, "metrics": ["psnr", "lpips"],
                   "videos": [{"source": "synthetic:static", "frames": 4, "size": [32, 32]}],
                   "channel": {"type": "awgn", "snr_db": [5, 10]},
                   "schemes": [{"name": "S", "type": "softcast", "target_cbr": 0.01, "gop": 4}]})
    out = run(sc, tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert err.count("metric lpips unavailable") == 1
    import csv

    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert all(r["lpips"] == "" and r["unavailable"] == "lpips" and r["psnr"] for r in rows)


@pytest.mark.skipif(not (os.environ.get("LGVSC_VGG16") or os.environ.get("LGVSC_CLIP")),
                    reason="set LGVSC_VGG16 / LGVSC_CLIP to check real weights")
def test_real_weights_if_given():
    ok, _ = resolve_metrics(["lpips", "dists", "clip"])
    x = _frames(0, 2, 64)
    for name, m in ok.items():
        assert np.isfinite(m(x, x.copy())), name
