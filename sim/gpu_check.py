"""``lgvsc doctor --gpu`` / ``make gpu-check``: every real-tier path on tiny models.

Builds tiny random models in code (:mod:`lgvsc.sim.tiny_models`: VLMs,
diffusers pipelines, an NTSCC checkpoint, CLIP and VGG16; nothing is
downloaded) in a temporary folder and runs each real-tier path end to end on
the device -- CUDA in bfloat16 when available (``--device cuda``), else (or
with ``--device cpu``) the CPU in float32: the VLM scorer in direct and paper
mode and the VLM captioner on each backend, every diffusers world-model
pipeline, NTSCC through the channel, the ``lgvsc`` scheme (SKEM+DSA with the
VLM scorer and captioner, NTSCC keyframes and an LTX world model) and the
``text-only`` scheme through the runner on a tiny scenario, and the deep
metrics. One line per check::

    ok <name> <seconds>
    FAIL <name>: <one-line reason>
    skip <name>: <why>

Exit status 1 when a check failed. :data:`CHECKS` is the table (name,
function); a check raises to fail, :class:`Skipped` to skip.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..semantic.model_cache import model_cache
from . import tiny_models


class Skipped(Exception):
    """A check that cannot run here (its reason is printed)."""


@dataclass
class Env:
    """Where the checks run: ``device`` ("cpu" | "cuda"), the real tier's ``dtype``
    name, and ``root``, the temporary folder the tiny models are built in (each once)."""

    device: str
    dtype: str
    root: Path
    _built: dict = field(default_factory=dict)

    def model(self, name: str) -> str:
        """The folder (or file) of tiny model ``name``, built on first use."""
        if name not in self._built:
            self._built[name] = str(BUILD[name](self.root / name))
        return self._built[name]

    def generator(self, seed: int = 0) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def spec(self, **kw) -> dict:
        """A component spec on this device and dtype."""
        return dict(kw, device=self.device, dtype=self.dtype)


BUILD: dict[str, Callable[[Path], Path]] = {
    # answers of max_new_tokens tokens: a random model that stops at once gives "" captions
    **{a: (lambda a: lambda p: tiny_models.build_vlm(a, p, never_stop=True))(a)
       for a in tiny_models.VLM_ARCHS},
    **{k: (lambda k: lambda p: tiny_models.build_pipeline(k, p))(k)
       for k in (*tiny_models.PIPELINE_KINDS, "ltx-dynamic")},
    "ntscc": lambda p: tiny_models.build_ntscc(p.with_suffix(".pt")),
    "clip": tiny_models.build_clip,
    "vgg16": lambda p: tiny_models.build_vgg16(p.with_suffix(".pth")),
}


def _frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [n, h, w, 3]: blocky random images (a little structure for the codecs)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, -(-h // 8), -(-w // 8), 3))
    img = np.kron(base, np.ones((1, 8, 8, 1)))[:, :h, :w] + rng.integers(-20, 20, (n, h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


# -- the checks -------------------------------------------------------------------------
def check_scorer(env: Env, arch: str, mode: str) -> None:
    from ..semantic.scorers import make_scorer

    scorer = make_scorer("vlm", **env.spec(path=env.model(arch), mode=mode, max_new_tokens=8))
    key, *cands = _frames(3)
    scores = scorer.score(key, cands)
    if len(scores) != 2 or not all(np.isfinite(s.s_rel) for s in scores):
        raise RuntimeError(f"expected 2 finite scores, got {scores}")


def check_captioner(env: Env, arch: str) -> None:
    from ..semantic.captioners import make_captioner

    cap = make_captioner("vlm", **env.spec(path=env.model(arch), frames=2, max_new_tokens=8))
    text = cap.caption(_frames(4), 0, 4)
    if not isinstance(text, str):
        raise RuntimeError(f"caption is not text: {text!r}")


def check_world_model(env: Env, kind: str) -> None:
    from ..semantic.world_models import SegmentRequest, make_world_model

    pipeline = {"ltx-dynamic": "ltx"}.get(kind, kind)
    wm = make_world_model("diffusers", **env.spec(path=env.model(kind), pipeline=pipeline,
                                                  steps=2))
    first, last = _frames(2, 32, 32)
    n = wm.valid_length(5)
    out = wm.generate(SegmentRequest(first, last, "a red car drives past a tree"), n, None,
                      env.generator())
    if out.shape != (n, 32, 32, 3) or out.dtype != np.uint8:
        raise RuntimeError(f"generated {out.shape} {out.dtype}, expected ({n}, 32, 32, 3) uint8")


def check_opensora(env: Env) -> None:
    import importlib.util

    from ..semantic.world_models.opensora import SUPPORTED_TAG

    if importlib.util.find_spec("opensora") is None:
        raise Skipped(f"Open-Sora is not installed (not on PyPI: hpcaitech/Open-Sora tag "
                      f"{SUPPORTED_TAG} from source)")
    raise Skipped("no tiny Open-Sora model is built in code; `lgvsc doctor` checks its folders")


def check_ntscc(env: Env) -> None:
    from ..link.channels import AWGN
    from ..semantic.keyframe_codecs import make_keyframe_codec

    codec = make_keyframe_codec("ntscc", checkpoint=env.model("ntscc"), arch="tiny",
                                device=env.device)
    images = _frames(2, 64, 64)
    budget = 2 * codec.min_uses(64, 64, 2)
    out = codec.transmit(images, budget, AWGN(), 10.0, env.generator())
    if out.images.shape != images.shape or not 0 < out.channel_uses <= 2 * budget:
        raise RuntimeError(f"got {out.images.shape} images in {out.channel_uses} channel uses "
                           f"(budget {budget} per image)")


def _run_scheme(env: Env, scheme: dict) -> None:
    """``scheme`` through the runner on a tiny clip in a temporary folder; every model
    it uses must load exactly once."""
    from .runner import run
    from .scenario import validate

    sc = validate({"name": "gpu-check", "kind": "video", "seed": 0, "device": env.device,
                   "videos": [{"source": "synthetic:cuts", "frames": 17, "size": [64, 64]}],
                   "channel": {"type": "awgn", "snr_db": [20]}, "metrics": ["psnr"],
                   "schemes": [scheme]})
    from .model_plan import scheme_models

    keys = [i.key for i in scheme_models(sc, scheme["name"])]
    before = {k: model_cache().load_counts[k] for k in keys}
    out = Path(tempfile.mkdtemp(dir=env.root, prefix="run-"))
    run(sc, out, progress=False)
    twice = [f"{k.label()} x{model_cache().load_counts[k] - before[k]}" for k in keys
             if model_cache().load_counts[k] - before[k] != 1]
    if twice:
        raise RuntimeError(f"models not loaded exactly once: {', '.join(twice)}")
    if not (out / "summary.csv").is_file():
        raise RuntimeError(f"no summary.csv in {out}")


def check_lgvsc(env: Env) -> None:
    vlm = env.model("internvl")
    _run_scheme(env, {
        # 710 channel uses: 2 or 3 NTSCC keyframes (as SKEM picks) of 154..383 uses each
        # (what the tiny arch can spend at 64x64), captions of 8 tokens at 3 bits per use
        "name": "LGVSC", "type": "lgvsc", "preset": "skem-dsa", "target_cbr": 3.4e-3,
        "keyframes": 3, "rate": 0.75, "modulation": "qam16",
        "scorer": env.spec(type="vlm", path=vlm, mode="direct", max_new_tokens=8),
        "captioner": env.spec(type="vlm", path=vlm, max_new_tokens=8),
        "keyframe_codec": {"type": "ntscc", "checkpoint": env.model("ntscc"), "arch": "tiny",
                           "device": env.device},
        "world_model": env.spec(type="diffusers", path=env.model("ltx"), steps=2)})


def check_text_only(env: Env) -> None:
    _run_scheme(env, {
        "name": "Text-Only", "type": "text-only", "rate": 0.75, "modulation": "qam16",
        "captioner": env.spec(type="vlm", path=env.model("internvl"), max_new_tokens=8),
        "world_model": env.spec(type="diffusers", path=env.model("ltx"), steps=2)})


@contextmanager
def _env_var(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def check_metric(env: Env, name: str) -> None:
    """A deep metric on the device: the user's weights (``LGVSC_VGG16`` / ``LGVSC_CLIP``)
    when set, else tiny random ones built here."""
    from .metrics import METRICS

    var, model = {"clip": ("LGVSC_CLIP", "clip")}.get(name, ("LGVSC_VGG16", "vgg16"))
    value = os.environ.get(var) or env.model(model)
    with _env_var(var, value):
        metric = METRICS.get(name)(env.device)
        reason = metric.unavailable_reason()
        if reason:
            raise Skipped(reason)
        x = _frames(2, 32, 32)
        same, diff = metric(x, x.copy()), metric(x, _frames(2, 32, 32, seed=1))
        (info,) = metric.model_info()
        model_cache().release([info.key])
    if not (np.isfinite(same) and np.isfinite(diff)) or same == diff:
        raise RuntimeError(f"identical frames score {same}, different ones {diff}")


CHECKS: list[tuple[str, Callable[[Env], None]]] = [
    *[(f"vlm-scorer-{mode}[{arch}]", (lambda a, m: lambda env: check_scorer(env, a, m))(arch, mode))
      for arch in tiny_models.VLM_ARCHS for mode in ("direct", "paper")],
    *[(f"vlm-captioner[{arch}]", (lambda a: lambda env: check_captioner(env, a))(arch))
      for arch in tiny_models.VLM_ARCHS],
    *[(f"world-model[diffusers {k}]", (lambda k: lambda env: check_world_model(env, k))(k))
      for k in ("ltx", "ltx-dynamic", "wan-flf2v", "wan-vace")],
    ("world-model[opensora]", check_opensora),
    ("keyframe-codec[ntscc]", check_ntscc),
    ("scheme[lgvsc skem-dsa: vlm scorer + vlm captioner + ntscc + diffusers ltx]", check_lgvsc),
    ("scheme[text-only: vlm captioner + diffusers ltx]", check_text_only),
    *[(f"metric[{n}]", (lambda n: lambda env: check_metric(env, n))(n))
      for n in ("lpips", "dists", "clip")],
]


@contextmanager
def _quiet_stdout():
    """Inside: standard output (Python's and file descriptor 1) goes to standard error."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _reason(e: BaseException) -> str:
    """One line: the exception and the innermost place in this project it came through."""
    text = " ".join(str(e).split())[:300] or type(e).__name__
    root = Path(__file__).resolve().parents[1]  # the checkout (or the installed package)
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if Path(f.filename).resolve().is_relative_to(root)
              and Path(f.filename).resolve().relative_to(root).parts[0] != ".venv"]
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {text}{where}"


def run_checks(env: Env, checks=None, out=None, only: str | None = None) -> dict[str, str]:
    """Run ``checks`` (default :data:`CHECKS`; ``only``: those whose name contains it),
    printing one line each to ``out``; {name: "ok" | "FAIL" | "skip"}."""
    out = out or sys.stdout
    status = {}
    for name, fn in checks or CHECKS:
        if only and only not in name:
            continue
        t0 = time.perf_counter()
        try:
            with _quiet_stdout():  # libraries' prints and progress bars are not the report
                fn(env)
            if env.device == "cuda":
                torch.cuda.synchronize()  # asynchronous CUDA errors belong to this check
            model_cache().release()  # each check loads what it needs itself
        except Skipped as e:
            status[name] = "skip"
            print(f"skip {name}: {e}", file=out, flush=True)
            continue
        except Exception as e:  # noqa: BLE001 -- a diagnostic: report, never change a result
            status[name] = "FAIL"
            print(f"FAIL {name}: {_reason(e)}", file=out, flush=True)
            continue
        status[name] = "ok"
        print(f"ok {name} {time.perf_counter() - t0:.1f}", file=out, flush=True)
    return status


def resolve(device: str) -> tuple[str, str]:
    """(device, dtype): ``auto`` -> cuda when available; bfloat16 on CUDA, float32 on CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("lgvsc: error: --device cuda: no CUDA device is available here")
    return device, "bfloat16" if device == "cuda" else "float32"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lgvsc-gpu-check", description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--only", help="run the checks whose name contains this text")
    a = p.parse_args(argv)
    device, dtype = resolve(a.device)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"gpu-check on {device} ({name}) in {dtype}, torch {torch.__version__}", flush=True)
    cache = model_cache()
    log, cache.log = cache.log, (lambda line: None)  # loads are not the report
    try:
        with tempfile.TemporaryDirectory(prefix="lgvsc-gpu-check-") as root:
            status = run_checks(Env(device, dtype, Path(root)), only=a.only)
    finally:
        cache.log = log
        cache.release()
    failed = sum(v == "FAIL" for v in status.values())
    print(f"{len(status) - failed} of {len(status)} checks passed or skipped, {failed} failed",
          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
