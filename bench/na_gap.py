"""Gap of the 5G LDPC link to the normal approximation at a target BLER.

Simulates LDPC k=1024, rate 1/2, 16-QAM, 20 BP iterations on AWGN on a fine
SNR grid around its waterfall, interpolates log10(BLER) linearly in SNR to
find where it crosses the target (default 1e-2), and prints that SNR, the SNR
where the normal approximation (QAM-constrained input, same n and k) crosses
it, and the gap in dB.

    python bench/na_gap.py [--target 1e-2] [--errors 50] [--max-blocks 20000]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy.optimize import brentq

from lgvsc.link import theory
from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.code import LDPCCode
from lgvsc.link.digital import BlockLink
from lgvsc.link.modem import Modem


def bler(link, snr_db, errors, max_blocks, seed, batch=500):
    gen = torch.Generator().manual_seed(seed)
    blocks = errs = 0
    while errs < errors and blocks < max_blocks:
        u = torch.randint(0, 2, (batch, link.k), generator=gen).float()
        errs += int((link(u, AWGN(), snr_db_to_no(snr_db), gen).u_hat != u).any(dim=1).sum())
        blocks += batch
    return errs, blocks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=1e-2)
    ap.add_argument("--errors", type=int, default=50)
    ap.add_argument("--max-blocks", type=int, default=20000)
    ap.add_argument("--grid", type=float, nargs="+", default=[6.5, 6.75, 7.0, 7.25])
    a = ap.parse_args()
    k, rate, mod = 1024, 0.5, "qam16"
    link = BlockLink(LDPCCode(k, rate, 4, 20), Modem(mod))
    n_uses = link.n // 4
    pts = []
    for i, s in enumerate(a.grid):
        e, b = bler(link, s, a.errors, a.max_blocks, seed=1000 + i)
        pts.append((s, e / b))
        print(f"  {s:5.2f} dB  BLER {e / b:.3e}  ({e} errors / {b} blocks)", flush=True)
    logt = math.log10(a.target)
    sim = None
    for (s0, p0), (s1, p1) in zip(pts, pts[1:]):
        if p0 >= a.target > p1 and p1 > 0:
            l0, l1 = math.log10(p0), math.log10(p1)
            sim = s0 + (logt - l0) * (s1 - s0) / (l1 - l0)
    na = brentq(lambda s: math.log10(max(float(theory.bler_normal_approx(n_uses, k, s, mod)),
                                          1e-300)) - logt, 0.0, 15.0, xtol=1e-3)
    print(f"normal approximation (n={n_uses} uses, k={k}, 16-QAM input): {na:.2f} dB at BLER {a.target:g}")
    if sim is None:
        print("simulated BLER does not cross the target inside the grid; widen --grid")
    else:
        print(f"simulated LDPC: {sim:.2f} dB  ->  gap {sim - na:.2f} dB")


if __name__ == "__main__":
    main()
