"""Train an NTSCC keyframe model.

    python -m lgvsc.semantic.keyframe_codecs.ntscc_train --data DIR --out DIR \\
        [--steps N] [--crop 256] [--batch B] [--lmbda L] [--snr-range 0 10] \\
        [--lr 1e-4] [--arch paper|small|tiny] [--resume]

Each step draws a batch of random crops and an SNR uniformly from
``--snr-range`` (dB) and an eta uniformly from ``--eta-range``, sends the
masked JSCC values through a differentiable AWGN channel on power-normalised
symbols, and minimises

    loss = MSE(x, x_ntscc) + ntc_weight * MSE(x, x_ntc) + lmbda * bpp

with MSE on [0, 1] pixels, ``x_ntc`` the image decoded from the quantised y
(NTSCC's NTC term, which stabilises training) and ``bpp`` = (bits of y + bits
of z) / pixels from the likelihoods. The EntropyBottleneck's aux loss is
minimised by its own optimiser (CompressAI convention). ``--steps`` is the
total step count: ``--resume`` reloads ``OUT/last.pt`` (model, both
optimisers, step, random-generator states) and continues up to it.
Checkpoints (``OUT/last.pt``, :mod:`.ntscc_checkpoint` format) are written
every ``--save-every`` steps and at the end.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .ntscc_arch import ARCH_PRESETS, make_arch
from .ntscc_checkpoint import load_model, save_checkpoint
from .ntscc_data import list_images, sample_batch
from .ntscc_model import NTSCCModel

LAST = "last.pt"


@dataclass(frozen=True)
class StepConfig:
    """Loss weights: ``lmbda`` per bit per pixel; ``clip_grad`` max grad norm (0: off)."""

    lmbda: float = 0.0025
    ntc_weight: float = 1.0
    clip_grad: float = 1.0


def make_optimizers(model: NTSCCModel, lr: float, aux_lr: float):
    """(Adam on the main parameters, Adam on the EntropyBottleneck quantiles)."""
    return (torch.optim.Adam(model.main_parameters(), lr=lr),
            torch.optim.Adam(model.aux_parameters(), lr=aux_lr))


def train_step(model: NTSCCModel, x: torch.Tensor, opt, aux_opt, cfg: StepConfig,
               snr_db: float | None, eta: float, generator: torch.Generator) -> dict:
    """One optimisation step on batch ``x`` [B, 3, H, W] in [0, 1]; returns floats."""
    model.train()
    opt.zero_grad(set_to_none=True)
    out = model(x, snr_db, eta, generator)
    loss = out["mse"] + cfg.ntc_weight * out["mse_ntc"] + cfg.lmbda * out["bpp"]
    loss.backward()
    if cfg.clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(model.main_parameters(), cfg.clip_grad)
    opt.step()
    aux_opt.zero_grad(set_to_none=True)
    aux = model.aux_loss()
    aux.backward()
    aux_opt.step()
    mse = out["mse"].item()
    return {"loss": loss.item(), "mse": mse, "psnr": -10 * math.log10(max(mse, 1e-10)),
            "bpp": out["bpp"].item(), "cbr": out["cbr"], "aux": aux.item()}


def _uniform(lo: float, hi: float, generator: torch.Generator) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lgvsc.semantic.keyframe_codecs.ntscc_train",
                                description="Train an NTSCC keyframe model.")
    p.add_argument("--data", required=True, help="folder of training images (png/jpg)")
    p.add_argument("--out", required=True, help="output folder for checkpoints")
    p.add_argument("--steps", type=int, default=100000, help="total training steps")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lmbda", type=float, default=StepConfig.lmbda, help="weight of bpp")
    p.add_argument("--snr-range", type=float, nargs=2, default=(0.0, 10.0), metavar=("LO", "HI"))
    p.add_argument("--eta-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="eta per batch (default: the arch's eta)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--aux-lr", type=float, default=1e-3)
    p.add_argument("--ntc-weight", type=float, default=StepConfig.ntc_weight)
    p.add_argument("--clip-grad", type=float, default=StepConfig.clip_grad)
    p.add_argument("--arch", default="paper", choices=sorted(ARCH_PRESETS))
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--latent-channels", type=int, default=None)
    p.add_argument("--no-snr-adaptive", action="store_true", help="no SNR input to f_e / f_d")
    p.add_argument("--use-side-info", action="store_true", help="send z, refine y from it")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights "
                   "(ours or public NTSCC_JSAC22; public ones use --arch)")
    p.add_argument("--resume", action="store_true", help=f"continue from OUT/{LAST}")
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p


def _check_args(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    for name in ("steps", "crop", "batch", "save_every", "log_every"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.snr_range[0] > a.snr_range[1]:
        p.error("--snr-range LO must be <= HI")
    if a.eta_range is not None and not 0 < a.eta_range[0] <= a.eta_range[1]:
        p.error("--eta-range needs 0 < LO <= HI")
    if a.lmbda < 0 or a.lr <= 0 or a.aux_lr <= 0:
        p.error("--lmbda must be >= 0 and --lr / --aux-lr > 0")


def _arch_overrides(a: argparse.Namespace) -> dict:
    over = {"snr_adaptive": not a.no_snr_adaptive, "use_side_info": a.use_side_info}
    if a.width is not None:
        over["width"] = a.width
    if a.latent_channels is not None:
        over["latent_channels"] = a.latent_channels
    return over


def _new_run(a: argparse.Namespace):
    """(model, start step, state dict to restore or None) for a fresh run / --init / --resume."""
    last = Path(a.out) / LAST
    if a.resume:
        if not last.is_file():
            raise ValueError(f"--resume: no checkpoint {last}")
        model, obj = load_model(last)
        return model, int(obj["step"]), obj
    if a.init:
        model, _ = load_model(a.init, a.arch, **_arch_overrides(a))
        return model, 0, None
    arch = make_arch(a.arch, img_size=a.crop, **_arch_overrides(a))
    return NTSCCModel(arch, torch.Generator().manual_seed(a.seed)), 0, None


def _generators(a: argparse.Namespace, device: torch.device, obj: dict | None):
    """(data generator on CPU, noise generator on ``device``), restored on resume."""
    data = torch.Generator().manual_seed(a.seed + 1)
    noise = torch.Generator(device=device).manual_seed(a.seed + 2)
    if obj is not None:
        data.set_state(obj["generator"]["data"])
        noise.set_state(obj["generator"]["noise"])
    return data, noise


def _save(path: Path, model, opt, aux_opt, step: int, gens, args) -> None:
    states = {"data": gens[0].get_state(), "noise": gens[1].get_state()}
    save_checkpoint(path, model, optimizer=opt.state_dict(), aux_optimizer=aux_opt.state_dict(),
                    step=step, generator=states, args=vars(args))
    print(f"saved {path} at step {step}", flush=True)


def _log(step: int, total: int, m: dict, snr: float, eta: float, dt: float) -> None:
    print(f"step {step}/{total} loss {m['loss']:.5f} mse {m['mse']:.5f} psnr {m['psnr']:.2f} dB "
          f"bpp {m['bpp']:.3f} cbr {m['cbr']:.4f} aux {m['aux']:.1f} snr {snr:.1f} dB "
          f"eta {eta:.3f} {dt:.2f} s/step", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    _check_args(p, a)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        files = list_images(a.data)
        model, step, obj = _new_run(a)
    except ValueError as e:
        p.error(str(e))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(a.device)
    model.to(device)
    opt, aux_opt = make_optimizers(model, a.lr, a.aux_lr)
    if obj is not None:
        opt.load_state_dict(obj["optimizer"])
        aux_opt.load_state_dict(obj["aux_optimizer"])
        print(f"resumed from {out / LAST} at step {step}", flush=True)
    gens = _generators(a, device, obj)
    eta_lo, eta_hi = a.eta_range or (model.arch.eta, model.arch.eta)
    cfg = StepConfig(a.lmbda, a.ntc_weight, a.clip_grad)
    print(f"NTSCC training: {len(files)} images, arch {model.arch.to_dict()}", flush=True)
    while step < a.steps:
        t0 = time.time()
        x = sample_batch(files, a.crop, a.batch, gens[0]).to(device)
        snr, eta = _uniform(*a.snr_range, gens[0]), _uniform(eta_lo, eta_hi, gens[0])
        m = train_step(model, x, opt, aux_opt, cfg, snr, eta, gens[1])
        step += 1
        if step % a.log_every == 0 or step == a.steps:
            _log(step, a.steps, m, snr, eta, time.time() - t0)
        if step % a.save_every == 0 and step < a.steps:
            _save(out / LAST, model, opt, aux_opt, step, gens, a)
    _save(out / LAST, model, opt, aux_opt, step, gens, a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
