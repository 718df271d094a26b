"""One load per model per process, released after the last unit that needs it, and a
start-of-run line per model with its device and memory (issue 12, point 1).

The ``fake-models`` scheme declares the models named in its entry (``models()``,
nothing loaded) and, per unit, asks the process's model cache for each of them (a
stand-in object), so loads and releases are counted without weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import Field

from lgvsc.semantic.model_cache import ModelInfo, ModelKey, model_cache
from lgvsc.sim import units as units_mod
from lgvsc.sim.model_plan import keep_sets, loading_lines, order_units, scheme_resources
from lgvsc.sim.runner import run
from lgvsc.sim.scenario import validate
from lgvsc.sim.schemes import SCHEMES, SchemeConfig
from lgvsc.sim.schemes.transmission import Transmission, VideoScheme
from lgvsc.sim.units import plan_units, unit_fingerprints

GIB = 2 ** 30


class FakeModelsConfig(SchemeConfig):
    #: [name, device, GiB] of each model a unit uses
    models: list[tuple[str, str, float]] = Field(default_factory=list)
    #: names of models a unit loads without declaring them
    undeclared: list[str] = Field(default_factory=list)


def fake_key(name: str, device: str = "cpu") -> ModelKey:
    return ModelKey("fake", f"/models/{name}", "bfloat16", device)


class FakeModels(VideoScheme):
    """Sends the clip unchanged; each unit gets its models from the model cache."""

    Config = FakeModelsConfig

    @classmethod
    def models(cls, cfg):
        return [ModelInfo(fake_key(n, d), int(g * GIB)) for n, d, g in cfg.models]

    def transmit(self, video, channel, snr_db, generator):
        for info in self.models(self.cfg):
            model_cache().get(info.key, object, info.bytes)
        for n in self.cfg.undeclared:
            model_cache().get(fake_key(n), object)
        y, _ = channel(torch.zeros(4, dtype=torch.complex64), 1.0, generator)
        return Transmission(video.frames.copy(), 4, extra=dict(noise=float(y.real.sum())))


def register_fake() -> None:
    """Register ``fake-models`` in this process (Ray workers call it at start)."""
    if "fake-models" not in SCHEMES.names():
        SCHEMES.register("fake-models")(FakeModels)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(SCHEMES._items, "fake-models", FakeModels)
    monkeypatch.setitem(SCHEMES._needs, "fake-models", SCHEMES._needs["softcast"])
    model_cache().release()
    yield
    model_cache().release()


def scenario(schemes, **over) -> dict:
    sc = {"name": "t-models", "kind": "video", "seed": 1,
          "videos": [{"source": "synthetic:pan", "frames": 4, "size": [16, 16]}],
          "channel": {"type": "awgn", "snr_db": [3, 9]}, "monte_carlo": {"trials": 2},
          "metrics": ["psnr"], "schemes": schemes}
    sc.update(over)
    return sc


A = {"name": "A", "type": "fake-models", "models": [["vlm", "cpu", 1.0], ["wm", "cuda", 2.0]]}
B = {"name": "B", "type": "fake-models", "models": [["vlm", "cpu", 1.0], ["t2v", "cuda", 1.5]]}
C = {"name": "C", "type": "fake-models"}


def test_each_model_loads_once_and_goes_after_its_last_unit(fake, tmp_path, capsys):
    cache = model_cache()
    events = []
    cache.log = events.append
    before = dict(cache.load_counts)
    builds = dict(units_mod.SCHEME_BUILDS)
    try:
        run(validate(scenario([A, C, B])), tmp_path / "r", progress=False)
    finally:
        cache.log = None
    err = capsys.readouterr().err
    vlm, wm, t2v = fake_key("vlm"), fake_key("wm", "cuda"), fake_key("t2v", "cuda")
    for k in (vlm, wm, t2v):  # 4 units each, one load
        assert cache.load_counts[k] - before.get(k, 0) == 1
    assert not cache.loaded()  # all released at the end
    # A's units, then B's (shares the VLM with A), then C's: wm goes before t2v comes
    order = [e.removeprefix("lgvsc: ") for e in events]
    assert order.index(f"released {wm.label()}") < order.index(
        f"loading {t2v.label()}, ~1.5 GiB of weights")
    assert order.index(f"loading {t2v.label()}, ~1.5 GiB of weights") < order.index(
        f"released {vlm.label()}")
    assert sum(e.startswith(f"loading {vlm.label()}") for e in order) == 1
    # the start-of-run lines: each model once, with its schemes; a total per device
    assert f"lgvsc: will load {vlm.label()}: ~1.0 GiB of weights for scheme 'A', scheme 'B'" in err
    assert f"will load {wm.label()}: ~2.0 GiB of weights for scheme 'A'" in err
    assert err.count(f"will load {vlm.label()}") == 1
    assert ("lgvsc: on cuda: 2 models, ~3.5 GiB of weights in all, at most ~2.0 GiB loaded "
            "at once") in err
    assert "lgvsc: on cpu: 1 models, ~1.0 GiB of weights in all, at most ~1.0 GiB" in err
    for name in "ABC":  # one scheme object per process, dropped when its units are done
        assert units_mod.SCHEME_BUILDS[name] - builds.get(name, 0) == 1
    assert not [k for k in units_mod._SCHEMES if k[1] in "ABC"]


def test_units_grouped_by_shared_models(fake):
    other = {"name": "X", "type": "fake-models", "models": [["other", "cuda", 1.0]]}
    sc = validate(scenario([A, other, B]))
    order = [u.scheme for u in order_units(sc, plan_units(sc))]
    assert order == ["A"] * 4 + ["B"] * 4 + ["X"] * 4
    assert keep_sets([u for u in plan_units(sc)])[0] == {"A", "X", "B"}


def test_pool_workers_warned_with_the_figure(fake):
    sc = validate(scenario([A]))
    lines = loading_lines(sc, plan_units(sc), pool_workers=3)
    assert any("3 worker processes each load their own copy" in line
               and "3 x ~2.0 GiB = ~6.0 GiB" in line for line in lines)
    assert not any("worker processes" in line for line in loading_lines(sc, plan_units(sc)))
    assert loading_lines(validate(scenario([C])), plan_units(validate(scenario([C])))) == []


def test_undeclared_model_is_said_and_released_with_its_scheme(fake, tmp_path, capsys):
    hidden = {"name": "H", "type": "fake-models", "undeclared": ["secret"]}
    before = model_cache().load_counts[fake_key("secret")]
    run(validate(scenario([hidden])), tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert err.count(f"scheme 'H' loaded {fake_key('secret').label()}, which its models() "
                     "does not list") == 1
    assert model_cache().load_counts[fake_key("secret")] == before + 1  # not per unit
    assert not model_cache().loaded()


def test_run_kept_releases_only_what_later_units_do_not_need(fake):
    sc = validate(scenario([A, B]))
    blob = sc.model_dump_json()
    units = plan_units(sc)
    keeps = keep_sets(units)
    seen = []
    for u, k in zip(units, keeps):  # a pool worker that gets every unit, in order
        units_mod.run_kept(blob, u, k, None)
        seen.append(set(model_cache().loaded()))
    vlm, wm, t2v = fake_key("vlm"), fake_key("wm", "cuda"), fake_key("t2v", "cuda")
    assert seen[3] == {vlm, wm} and seen[4] == {vlm, t2v}  # wm released before B's first unit
    units_mod.retire(blob, ())
    assert not model_cache().loaded()


# -- resources: where units run, never what they compute ----------------------------------
def test_resources_do_not_enter_fingerprints(fake, tmp_path):
    plain = validate(scenario([A]))
    placed = validate(scenario([{**A, "resources": {"num_gpus": 0.5, "num_cpus": 2}}]))
    assert unit_fingerprints(plain, plan_units(plain)) == unit_fingerprints(placed, plan_units(placed))
    assert "resources" not in plain.schemes[0]  # an entry without it dumps as before
    assert scheme_resources(placed, "A").num_gpus == 0.5
    assert scheme_resources(plain, "A").num_gpus == 1  # a model on CUDA: one GPU per unit
    assert scheme_resources(validate(scenario([C])), "C").num_gpus == 0
    out = run(plain, tmp_path / "r", progress=False)
    run(placed, out, progress=False)  # same folder: nothing changed, nothing refused


@pytest.mark.parametrize("res, msg", [({"num_gpus": 1.5}, "whole number"),
                                      ({"num_gpus": -1}, "greater than or equal"),
                                      ({"num_cpus": 0}, "greater than"),
                                      ({"gpus": 1}, "resources.gpus: unknown key")])
def test_bad_resources_refused(fake, res, msg):
    with pytest.raises(ValueError, match=msg):
        validate(scenario([{**A, "resources": res}]))


# -- deep metrics share the cache ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2),
                     vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8),
                     projection_dim=8)
    path = tmp_path_factory.mktemp("clip")
    CLIPModel(cfg).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_deep_metric_loads_once_per_process(monkeypatch, tiny_clip):
    from lgvsc.sim.metrics import METRICS
    from lgvsc.sim.metrics_deep import deep_model_info

    monkeypatch.setenv("LGVSC_CLIP", str(tiny_clip))
    a, b = METRICS.get("clip")(), METRICS.get("clip")()
    (info,) = deep_model_info(a)
    assert info.key == ModelKey("clip", str(tiny_clip.resolve()), "float32", "cpu")
    assert info.bytes and info.bytes > 0 and deep_model_info(METRICS.get("psnr")()) == []
    n = model_cache().load_counts[info.key]
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert a(x, x) == pytest.approx(b(x, x))
    assert model_cache().load_counts[info.key] == n + 1 and info.key in model_cache().loaded()
    model_cache().release([info.key])
