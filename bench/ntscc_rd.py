"""PSNR vs CBR of an NTSCC checkpoint on a folder of images (e.g. Kodak).

Each image goes through the real pipes (AnalogPipe for the JSCC values,
DigitalPipe for the length indexes / z) on AWGN; CBR = channel uses /
(3 H W), reported in total and for the analog part alone (the public NTSCC
figures count the analog part plus an idealised side-info cost). Without
``--cbr`` the codec runs at a fixed eta (``--eta``, the paper's 0.2) under a
generous budget, which reproduces the public setting.

    python bench/ntscc_rd.py --checkpoint ckpt.pth --images kodak/ [--snr 10]
        [--cbr 0.02 0.04] [--eta 0.2] [--arch paper] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lgvsc.link.analog import AnalogPipe
from lgvsc.link.channels import AWGN
from lgvsc.link.digital import DigitalPipe
from lgvsc.semantic.keyframe_codecs.ntscc import NTSCC


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-12))


def run(codec: NTSCC, files: list[Path], budget_cbr: float | None, snr: float, seed: int):
    rows = []
    for k, f in enumerate(files):
        img = np.asarray(Image.open(f).convert("RGB"))[None]
        pixels = 3 * img.shape[1] * img.shape[2]
        budget = int(budget_cbr * pixels) if budget_cbr else pixels  # CBR 1: never binding
        out = codec.transmit(img, budget, AWGN(), snr, torch.Generator().manual_seed(seed + k))
        rows.append((psnr(img[0], out.images[0]), out.channel_uses / pixels,
                     out.analog_uses / pixels))
    return np.mean(rows, axis=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--snr", type=float, default=10.0)
    ap.add_argument("--cbr", type=float, nargs="*", default=None)
    ap.add_argument("--eta", type=float, default=0.2, help="eta cap (fixed eta without --cbr)")
    ap.add_argument("--arch", default="paper", help="arch of a public state dict")
    ap.add_argument("--modulation", default="qpsk")
    ap.add_argument("--rate", type=float, default=0.5, help="LDPC rate of the side info")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    files = sorted(p for p in Path(a.images).iterdir() if p.suffix.lower() in (".png", ".jpg"))
    codec = NTSCC.from_checkpoint(a.checkpoint, arch=a.arch, device=a.device,
                                  analog=AnalogPipe("zf"), digital=DigitalPipe(a.modulation,
                                                                               "ldpc5g", a.rate),
                                  default_snr_db=a.snr, max_eta=a.eta)
    for target in a.cbr or [None]:
        codec.max_eta = None if target else a.eta
        p, total, analog = run(codec, files, target, a.snr, a.seed)
        label = f"budget CBR {target:.4f}" if target else f"fixed eta {a.eta}"
        print(f"{label}: PSNR {p:.2f} dB, CBR total {total:.4f} (analog {analog:.4f}) "
              f"at {a.snr} dB over {len(files)} images", flush=True)


if __name__ == "__main__":
    main()
