import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import slow_link_scenario, small_link_scenario
from lgvsc.sim.cli import main
from lgvsc.sim.runner import run
from lgvsc.sim.scenario import validate
from lgvsc.sim.units import execute_unit, plan_units

TIMING = {"wall_s"}


def _summary(out):
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _units(out):
    with sqlite3.connect(out / "results.sqlite") as db:
        return db.execute("SELECT unit_id FROM units").fetchall()


def test_run_writes_summary_plots_and_resumes(tmp_path):
    sc = validate(small_link_scenario())
    out = run(sc, tmp_path / "r", progress=False)
    rows = _summary(out)
    assert [(r["scheme"], r["snr_db"]) for r in rows] == [
        ("QPSK uncoded", "2"), ("QPSK uncoded", "5"), ("LDPC", "2"), ("LDPC", "5")]
    for r in rows:
        assert float(r["ber_lo"]) <= float(r["ber"]) <= float(r["ber_hi"])
        assert r["stop_reason"] in ("target_block_errors", "max_batches")
    assert rows[0]["ber_theory"] and rows[2]["bler_theory"] and rows[2]["shannon_limit_db"]
    for f in ("ber.png", "ber.pdf", "bler.png", "bler.pdf"):
        assert (out / "plots" / f).stat().st_size > 0
    run(sc, out, progress=False)  # everything finished: nothing recomputed
    assert len(_units(out)) == 4 and _summary(out) == rows


def test_changed_parameters_refused_unless_fresh(tmp_path, write_yaml, capsys):
    out = tmp_path / "r"
    run(validate(small_link_scenario()), out, progress=False)
    changed = small_link_scenario(seed=12)
    path = write_yaml(changed)
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "changed: seed" in err and "--fresh" in err
    # executor settings are not parameters: same results folder is fine
    same = write_yaml(small_link_scenario(executor={"type": "local", "workers": 2}), "b.yaml")
    assert main(["run", str(same), "--out", str(out), "--no-progress"]) == 0
    assert main(["run", str(path), "--out", str(out), "--fresh", "--no-progress"]) == 0
    assert len(_units(out)) == 4


def test_units_rerun_bit_identically_in_any_order():
    sc = validate(small_link_scenario())
    blob = sc.model_dump_json()
    units = plan_units(sc)
    fwd = {u.unit_id: execute_unit(blob, u) for u in units}
    rev = {u.unit_id: execute_unit(blob, u) for u in reversed(units)}
    strip = lambda d: {k: v for k, v in d.items() if k not in TIMING}  # noqa: E731
    assert {k: strip(v) for k, v in fwd.items()} == {k: strip(v) for k, v in rev.items()}
    seeds = {v["seed"] for v in fwd.values()}
    assert len(seeds) == len(units)  # every unit draws its own stream


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, write_yaml):
    path = write_yaml(slow_link_scenario("t-kill"))
    ref = tmp_path / "ref"
    assert main(["run", str(path), "--out", str(ref), "--no-progress"]) == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "lgvsc.sim.cli", "run", str(path), "--out",
                             str(out), "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = out / "results.sqlite"
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as con:
                    n = con.execute("SELECT count(*) FROM units").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= 3:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= len(_units(out)) < 12
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    ids = [r[0] for r in _units(out)]
    assert len(ids) == len(set(ids)) == 12
    assert _summary(out) == _summary(ref)


@pytest.mark.slow
def test_local_pool_and_ray_match_in_process(tmp_path, write_yaml):
    import ray  # noqa: F401  (the ray extra, which make test installs)
    path = write_yaml(small_link_scenario())
    outs = {}
    for label, args in {"inproc": [], "pool": ["--workers", "2"],
                        "ray": ["--executor", "ray", "--workers", "2"]}.items():
        outs[label] = tmp_path / label
        assert main(["run", str(path), "--out", str(outs[label]), "--no-progress", *args]) == 0
    ref = _summary(outs["inproc"])
    assert _summary(outs["pool"]) == ref
    assert _summary(outs["ray"]) == ref


def _rows(out):
    with sqlite3.connect(out / "results.sqlite") as db:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT unit_id, finished_at, wall_s, bit_errors, params FROM units")}


def test_extending_a_sweep_runs_only_the_new_units(tmp_path):
    out = tmp_path / "r"
    run(validate(small_link_scenario()), out, progress=False)
    before = _rows(out)
    grown = small_link_scenario(
        channel={"type": "awgn", "snr_db": [2.0, 5.0, 7.0]},
        schemes=small_link_scenario()["schemes"]
        + [{"name": "LDPC 3/4", "type": "ldpc5g", "k": 128, "rate": 0.75, "modulation": "qpsk",
            "iterations": 10}])
    run(validate(grown), out, progress=False)
    after = _rows(out)
    assert len(after) == 9 and all(after[u] == before[u] for u in before)  # untouched
    assert {r["scheme"] for r in _summary(out)} == {"QPSK uncoded", "LDPC", "LDPC 3/4"}
    # shrinking the sweep keeps the stored units but summarises only the planned ones
    run(validate(small_link_scenario(channel={"type": "awgn", "snr_db": [5.0]})), out,
        progress=False)
    assert len(_rows(out)) == 9 and [r["snr_db"] for r in _summary(out)] == ["5", "5"]


def test_changed_scheme_discards_only_its_units_with_fresh(tmp_path, write_yaml, capsys):
    out = tmp_path / "r"
    run(validate(small_link_scenario()), out, progress=False)
    before = _rows(out)
    changed = small_link_scenario()
    changed["schemes"][1]["iterations"] = 5
    path = write_yaml(changed)
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "2 stored units" in err and "changed: schemes[LDPC]" in err
    assert "the other 2 stored units are kept" in err
    assert main(["run", str(path), "--out", str(out), "--fresh", "--no-progress"]) == 0
    after = _rows(out)
    for uid in before:
        assert (after[uid] == before[uid]) == uid.startswith("QPSK uncoded|")


def test_schema_1_store_is_upgraded_in_place(tmp_path, write_yaml, capsys):
    out = tmp_path / "r"
    sc = validate(small_link_scenario())
    run(sc, out, progress=False)
    ref = _summary(out)
    with sqlite3.connect(out / "results.sqlite") as db:  # back to schema 1's columns
        for col in ("failed", "failure", "params", "version"):
            db.execute(f"ALTER TABLE units DROP COLUMN {col}")
    assert main(["plot", str(out)]) == 0  # upgrades, fills the fingerprints: still readable
    assert _summary(out) == ref and all(p for *_, p in _rows(out).values())
    # units of another lgvsc version are never mixed into this one's sweep
    assert main(["run", str(write_yaml(small_link_scenario())), "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "4 stored units" in err and "computed by lgvsc 0.1.0" in err and "--fresh" in err
    assert main(["run", str(write_yaml(small_link_scenario())), "--out", str(out), "--fresh",
                 "--no-progress"]) == 0
    assert len(_rows(out)) == 4


# -- generators and devices: draws happen on the generator's device, then move ----------
def test_noise_of_a_generator_on_another_device_moves_to_the_tensors():
    import torch

    from lgvsc.link.channels import AWGN, RayleighBlockFading, complex_normal

    x = torch.zeros(6, dtype=torch.complex64, device="meta")  # stands for "not the generator's"
    for ch in (AWGN(), RayleighBlockFading(coherence=2)):
        gen = torch.Generator().manual_seed(0)
        y, h = ch(x, 0.1, gen)
        assert y.device.type == "meta" and torch.as_tensor(h).device.type == "meta"
        # the numbers came from the generator (drawn on its CPU, then moved)
        assert not torch.equal(gen.get_state(), torch.Generator().manual_seed(0).get_state())
    # on the CPU nothing changes: the same numbers as drawing there directly
    z = complex_normal((3, 4), torch.Generator().manual_seed(5))
    ref = torch.randn((3, 4, 2), generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.view_as_real(z), ref * 0.5 ** 0.5) and z.device.type == "cpu"


class _CudaGenerator:
    """What a ``device: cuda`` unit's generator looks like to the link layer."""

    device = __import__("torch").device("cuda")


def test_cuda_generator_draws_on_cuda_and_the_noise_moves_to_cpu(monkeypatch):
    import torch

    from lgvsc.link import channels
    from lgvsc.link.analog import AnalogPipe

    seen = []
    real = torch.randn

    def randn(shape, generator=None, dtype=None, device=None):
        seen.append((generator, torch.device(device)))
        if isinstance(generator, _CudaGenerator):  # no GPU here: the draw itself is faked
            return real(shape, dtype=dtype)
        return real(shape, generator=generator, dtype=dtype, device=device)

    monkeypatch.setattr(channels.torch, "randn", randn)
    gen = _CudaGenerator()
    y, _ = channels.RicianBlockFading(k_factor=2.0)(torch.zeros(5, dtype=torch.complex64),
                                                    0.5, gen)
    assert y.device.type == "cpu" and seen and all(
        g is gen and d == torch.device("cuda") for g, d in seen)
    res = AnalogPipe()(torch.ones(7), channels.AWGN(), 0.01, gen)  # CPU values, CUDA draws
    assert res.x_hat.device.type == "cpu" and seen[-1][1] == torch.device("cuda")
