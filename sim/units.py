"""Units of work and their execution (runs inside whichever worker gets them).

A unit is one (scheme, SNR, video, trial) cell of the sweep. Its result is a
flat dict of raw counts -- the row the results store keeps.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch

from ..link.channels import make_channel, snr_db_to_no
from .scenario import Scenario, validate
from .schemes import SCHEMES
from .seeding import RunContext, unit_seed


@dataclass(frozen=True)
class Unit:
    scheme: str
    snr_db: float
    video: str = ""
    trial: int = 0

    @property
    def unit_id(self) -> str:
        return f"{self.scheme}|{self.snr_db!r}|{self.video}|{self.trial}"


def plan_units(sc: Scenario) -> list[Unit]:
    """Every unit of the sweep, schemes x SNRs (x videos x trials later)."""
    return [Unit(s["name"], float(snr)) for s in sc.schemes for snr in sc.channel.snr_db]


@lru_cache(maxsize=8)
def _scenario(blob: str) -> Scenario:
    return validate(json.loads(blob))


@lru_cache(maxsize=32)
def _block_link(blob: str, scheme_name: str):
    sc = _scenario(blob)
    ctx = RunContext(sc.device, sc.precision)
    entry = next(s for s in sc.schemes if s["name"] == scheme_name)
    cls = SCHEMES.get(entry["type"])
    return cls(cls.Config.model_validate(entry), ctx).block_link()


def run_link_unit(blob: str, unit: Unit) -> dict:
    """Batches of random blocks until the target block errors or the max batches
    (like Sionna's ``sim_ber``, without skipping SNRs: units are independent)."""
    sc = _scenario(blob)
    mc = sc.monte_carlo
    link = _block_link(blob, unit.scheme)
    channel = make_channel(sc.channel.type, **sc.channel.params())
    no = snr_db_to_no(unit.snr_db)
    seed = unit_seed(sc.seed, unit.scheme, unit.snr_db, unit.video, unit.trial)
    gen = RunContext(sc.device, sc.precision).generator(seed)
    counts = dict(bits=0, bit_errors=0, blocks=0, block_errors=0, raw_bits=0,
                  raw_bit_errors=0, channel_uses=0, batches=0)
    stop = "max_batches"
    t0 = time.perf_counter()
    while counts["batches"] < mc.max_batches:
        u = torch.randint(0, 2, (mc.batch_blocks, link.k), generator=gen,
                          device=sc.device).to(torch.float32)
        res = link(u, channel, no, gen)
        wrong = res.u_hat != u
        counts["bits"] += u.numel()
        counts["bit_errors"] += int(wrong.sum())
        counts["blocks"] += u.shape[0]
        counts["block_errors"] += int(wrong.any(dim=1).sum())
        counts["raw_bits"] += res.coded_bits
        counts["raw_bit_errors"] += res.raw_bit_errors
        counts["channel_uses"] += res.channel_uses
        counts["batches"] += 1
        if mc.target_block_errors and counts["block_errors"] >= mc.target_block_errors:
            stop = "target_block_errors"
            break
    return dict(asdict(unit), unit_id=unit.unit_id, seed=seed, stop_reason=stop,
                wall_s=time.perf_counter() - t0, **counts)


def execute_unit(blob: str, unit: Unit, threads: int | None = None) -> dict:
    """Entry point for every executor. ``blob`` is the scenario as JSON."""
    if threads:
        torch.set_num_threads(threads)
    return run_link_unit(blob, unit)
