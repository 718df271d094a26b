"""Time of a whole BLER curve with Sionna's decoder and with the fast one.

5G LDPC (2048, 1024), QPSK, AWGN, Es/N0 0.5 .. 2.25 dB step 0.25, batches of
``--batch`` codewords until 100 block errors or 4000 blocks per point, 20
iterations (as Sionna's ``sim_ber``). For each decoder it prints BLER per point
with its counts, the decoding time (decoder calls only) and the wall time of
the curve (channel, demapping and encoding included), in one process.

    python bench/bler_curve.py [--threads 2] [--skip-sionna] [--errors 100] [--max-blocks 4000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.code import LDPCCode, LDPCDecoding
from lgvsc.link.modem import Modem

DECODERS = {
    "sionna flooding boxplus-phi": LDPCDecoding("sionna"),
    "fast flooding sum-product": LDPCDecoding("fast", schedule="flooding"),
    "fast layered sum-product": LDPCDecoding("fast", schedule="layered"),
    "fast layered normalized-min-sum": LDPCDecoding("fast", schedule="layered",
                                                    cn_update="normalized-min-sum"),
    "fast layered offset-min-sum": LDPCDecoding("fast", schedule="layered",
                                                cn_update="offset-min-sum"),
}


def curve(decoding, snrs, errors, max_blocks, batch, seed=0):
    modem = Modem("qpsk")
    code = LDPCCode(1024, 0.5, modem.m, decoding)
    code.decode(torch.zeros(1, code.n))  # build / compile outside the timing
    rows, dec_s = [], 0.0
    t_all = time.perf_counter()
    for i, snr in enumerate(snrs):
        gen = torch.Generator().manual_seed(seed + i)
        no = snr_db_to_no(snr)
        errs = blocks = its = 0
        while errs < errors and blocks < max_blocks:
            u = torch.randint(0, 2, (batch, 1024), generator=gen).float()
            y, h = AWGN()(modem.modulate(code.encode(u)), no, gen)
            llr = modem.demodulate(y, h, no)
            t0 = time.perf_counter()
            out = code.decode(llr)
            dec_s += time.perf_counter() - t0
            errs += int((out != u).any(dim=1).sum())
            blocks += batch
            its += int(code.last_iterations.sum())
        rows.append((snr, errs, blocks, its / blocks))
    return rows, dec_s, time.perf_counter() - t_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--errors", type=int, default=100)
    ap.add_argument("--max-blocks", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--skip-sionna", action="store_true", help="leave out Sionna (~2 min)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    snrs = np.round(np.arange(0.5, 2.25 + 1e-9, 0.25), 2)
    print(f"5G LDPC (2048, 1024) QPSK AWGN, 20 it, until {a.errors} block errors or "
          f"{a.max_blocks} blocks, batch {a.batch}, {a.threads} threads")
    times = {}
    for name, dec in DECODERS.items():
        if a.skip_sionna and dec.decoder == "sionna":
            continue
        rows, dec_s, wall = curve(dec, snrs, a.errors, a.max_blocks, a.batch)
        times[name] = dec_s
        pts = "  ".join(f"{s:.2f}:{e}/{b}" for s, e, b, _ in rows)
        print(f"{name:32s} decoding {dec_s:7.2f} s  wall {wall:7.2f} s")
        print("  BLER  " + "  ".join(f"{s:.2f} {e / b:.2e}" for s, e, b, _ in rows))
        print(f"  counts (errors/blocks) {pts}")
        print("  mean iterations " + " ".join(f"{it:.1f}" for *_, it in rows), flush=True)
    ref = times.get("sionna flooding boxplus-phi")
    if ref:
        for name, t in times.items():
            print(f"{name:32s} decoding time x{ref / t:6.1f} faster than Sionna")


if __name__ == "__main__":
    main()
