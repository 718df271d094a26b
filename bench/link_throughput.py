"""Decoded information throughput of 5G LDPC decoders, side by side in one run.

For 5G LDPC k=1024, rate 1/2 (n=2048), 20 iterations, with QPSK and 16-QAM on
AWGN at a waterfall Es/N0 (QPSK 1.25 dB, 16-QAM 7 dB) and a high one (QPSK
4 dB, 16-QAM 10 dB), it decodes the same channel LLRs with Sionna's
boxplus-phi flooding decoder and with every configuration of the fast decoder,
on 1 and 2 threads, and prints decoded information Mbit/s (decoder time only:
the LLRs are made once), the BLER, the mean iterations and the ratio to Sionna
measured in the same run. A fresh process's first-call latency (compilation,
or loading numba's on-disk cache) is printed first.

    python bench/link_throughput.py [--blocks 1000] [--sionna-blocks 200] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.code import LDPCCode, LDPCDecoding
from lgvsc.link.ldpc_fast import CN_RULES, SCHEDULES
from lgvsc.link.modem import Modem

POINTS = {"qpsk": (1.25, 4.0), "qam16": (7.0, 10.0)}
FIRST_CALL = ("import time, torch; from lgvsc.link.code import LDPCCode; "
              "c = LDPCCode(1024, 0.5, 2); t = time.perf_counter(); "
              "c.decode(torch.zeros(1, c.n)); print(f'{time.perf_counter() - t:.3f}')")


def first_call_s(cold: bool) -> float:
    """Seconds of a fresh process's first fast decode after its imports: from numba's
    on-disk cache (``cold``: from an empty cache folder, i.e. compiling)."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        if cold:
            env["NUMBA_CACHE_DIR"] = tmp
        out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True,
                             text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def llrs(mod: str, snr_db: float, blocks: int, seed: int = 0):
    modem = Modem(mod)
    code = LDPCCode(1024, 0.5, modem.m, LDPCDecoding("sionna"))
    gen = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2, (blocks, 1024), generator=gen).float()
    no = snr_db_to_no(snr_db)
    y, h = AWGN()(modem.modulate(code.encode(u)), no, gen)
    return modem.m, u, modem.demodulate(y, h, no)


def measure(decoding: LDPCDecoding, m: int, u, llr, repeats: int):
    """(Mbit/s, BLER, mean iterations): the best of ``repeats`` decodes of ``llr``."""
    code = LDPCCode(1024, 0.5, m, decoding)
    code.decode(llr[:4])  # build / compile
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = code.decode(llr)
        best = min(best, time.perf_counter() - t0)
    bler = float((out != u).any(dim=1).float().mean())
    return u.numel() / best / 1e6, bler, float(code.last_iterations.mean())


def configs():
    yield "sionna flooding boxplus-phi", LDPCDecoding("sionna")
    for schedule in SCHEDULES:
        for rule in CN_RULES:
            yield f"fast {schedule} {rule}", LDPCDecoding("fast", cn_update=rule, schedule=schedule)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=1000, help="codewords per fast measurement")
    ap.add_argument("--sionna-blocks", type=int, default=200, help="codewords for Sionna")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    first_call_s(False)  # fill the cache
    print(f"first fast decode of a fresh process, after its imports: "
          f"{first_call_s(False):.2f} s from numba's cache, {first_call_s(True):.2f} s compiling")
    print("5G LDPC (2048, 1024), 20 iterations, AWGN; decoder time only, best of "
          f"{a.repeats}; {a.blocks} codewords (Sionna {a.sionna_blocks})")
    print(f"{'modulation':10s} {'Es/N0':>6s} {'thr':>3s} {'decoder':34s} {'Mbit/s':>8s} "
          f"{'x Sionna':>8s} {'BLER':>7s} {'iter':>5s}")
    for mod, snrs in POINTS.items():
        for snr in snrs:
            m, u, llr = llrs(mod, snr, a.blocks)
            for threads in a.threads:
                torch.set_num_threads(threads)
                ref = None
                for name, dec in configs():
                    n = a.sionna_blocks if dec.decoder == "sionna" else a.blocks
                    mbps, bler, its = measure(dec, m, u[:n], llr[:n], a.repeats)
                    ref = ref or mbps
                    print(f"{mod:10s} {snr:6.2f} {threads:3d} {name:34s} {mbps:8.3f} "
                          f"{mbps / ref:8.1f} {bler:7.4f} {its:5.1f}", flush=True)


if __name__ == "__main__":
    main()
