"""Gap of each 5G LDPC decoder to the normal approximation at a target BLER.

5G LDPC k=1024, rate 1/2 (n=1024 QPSK channel uses), AWGN. For each decoder
configuration at 20 and 50 iterations it simulates an Es/N0 grid (step 0.25 dB,
from 0.5 dB up until the BLER falls below the target), interpolates log10(BLER)
linearly in Es/N0 to where it crosses the target (default 1e-2) and prints
that Es/N0, the normal approximation's (QPSK-constrained input, same n and k)
and the gap in dB.

    python bench/na_gap.py [--target 1e-2] [--errors 50] [--max-blocks 20000] [--skip-sionna]
                           [--sionna-50]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy.optimize import brentq

from lgvsc.link import theory
from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.code import LDPCCode, LDPCDecoding
from lgvsc.link.ldpc_fast import CN_RULES, SCHEDULES
from lgvsc.link.modem import Modem

K, RATE, MOD = 1024, 0.5, "qpsk"


def bler(code, modem, snr_db, errors, max_blocks, seed, batch=500):
    gen = torch.Generator().manual_seed(seed)
    no = snr_db_to_no(snr_db)
    blocks = errs = 0
    while errs < errors and blocks < max_blocks:
        u = torch.randint(0, 2, (batch, K), generator=gen).float()
        y, h = AWGN()(modem.modulate(code.encode(u)), no, gen)
        errs += int((code.decode(modem.demodulate(y, h, no)) != u).any(dim=1).sum())
        blocks += batch
    return errs, blocks


def crossing(decoding, target, errors, max_blocks):
    """(Es/N0 where the BLER crosses ``target`` or None, the points simulated)."""
    modem = Modem(MOD)
    code = LDPCCode(K, RATE, modem.m, decoding)
    pts, snr = [], 0.5
    while snr <= 4.0:
        e, b = bler(code, modem, snr, errors, max_blocks, seed=int(snr * 100))
        pts.append((snr, e / b, e, b))
        if e / b < target:
            break
        snr += 0.25
    logt = math.log10(target)
    for (s0, p0, *_), (s1, p1, *_) in zip(pts, pts[1:]):
        if p0 >= target > p1 and p1 > 0:
            l0, l1 = math.log10(p0), math.log10(p1)
            return s0 + (logt - l0) * (s1 - s0) / (l1 - l0), pts
    return None, pts


def configs(skip_sionna: bool, sionna_50: bool):
    for iters in (20, 50):
        if not skip_sionna and (iters == 20 or sionna_50):
            yield f"sionna flooding boxplus-phi {iters} it", LDPCDecoding("sionna", iters)
        for schedule in SCHEDULES:
            for rule in CN_RULES:
                yield (f"fast {schedule} {rule} {iters} it",
                       LDPCDecoding("fast", iters, rule, schedule))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=1e-2)
    ap.add_argument("--errors", type=int, default=50)
    ap.add_argument("--max-blocks", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-sionna", action="store_true")
    ap.add_argument("--sionna-50", action="store_true",
                    help="also Sionna at 50 iterations (several minutes)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n_uses = int(K / RATE) // Modem(MOD).m
    logt = math.log10(a.target)
    na = brentq(lambda s: math.log10(max(float(theory.bler_normal_approx(
        n_uses, K, np.array([s]), MOD)[0]), 1e-300)) - logt, -5.0, 15.0, xtol=1e-3)
    print(f"normal approximation (n={n_uses} uses, k={K}, QPSK input): {na:.2f} dB "
          f"at BLER {a.target:g}")
    for name, dec in configs(a.skip_sionna, a.sionna_50):
        sim, pts = crossing(dec, a.target, a.errors, a.max_blocks)
        shown = "  ".join(f"{s:.2f}:{e}/{b}" for s, _, e, b in pts)
        if sim is None:
            print(f"{name:42s} does not cross {a.target:g} on the grid ({shown})")
        else:
            print(f"{name:42s} {sim:5.2f} dB  gap {sim - na:4.2f} dB   ({shown})", flush=True)


if __name__ == "__main__":
    main()
