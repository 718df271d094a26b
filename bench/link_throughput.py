"""Decoded information throughput of the digital pipe's LDPC link.

Prints Mbit/s of information bits through encode -> 16-QAM -> AWGN -> APP
demapping -> BP decoding for 5G LDPC k=1024, rate 1/2, 20 iterations
(batch 500, the paper baseline's setting), for each check-node rule side by
side in one run, so the ratios are comparable on a noisy machine.

    python bench/link_throughput.py [--batch 500] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.code import LDPCCode
from lgvsc.link.digital import BlockLink
from lgvsc.link.modem import Modem


def throughput(cn_update: str, batch: int, repeats: int, snr_db: float = 6.0) -> float:
    link = BlockLink(LDPCCode(1024, 0.5, 4, 20, cn_update), Modem("qam16"))
    gen = torch.Generator().manual_seed(0)
    u = torch.randint(0, 2, (batch, 1024), generator=gen).float()
    link(u[:8], AWGN(), snr_db_to_no(snr_db), gen)  # build / warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        link(u, AWGN(), snr_db_to_no(snr_db), gen)
        best = min(best, time.perf_counter() - t0)
    return batch * 1024 / best / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"ldpc5g k=1024 n=2048 16-QAM 20 it, AWGN 6 dB, batch {a.batch}, "
          f"{torch.get_num_threads()} torch threads (best of {a.repeats})")
    ref = None
    for rule in LDPCCode.CN_UPDATES:
        mbps = throughput(rule, a.batch, a.repeats)
        ref = ref or mbps
        print(f"  {rule:14s} {mbps:7.3f} Mbit/s decoded information  ({mbps / ref:4.2f}x boxplus-phi)")


if __name__ == "__main__":
    main()
