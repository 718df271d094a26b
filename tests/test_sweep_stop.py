"""Early stop of a link scheme's SNR sweep (``monte_carlo.stop_at_zero_errors`` /
``min_bler``, as Sionna's ``sim_ber``): decided per scheme from its stored units in
ascending SNR order, so the same on every executor and worker count; skipped points
are summary rows with their reason, never computed, and run once the option is
removed; the options are outside unit fingerprints; the per-SNR progress table."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import re
import sqlite3

import pytest
import yaml

from conftest import small_link_scenario
from lgvsc.sim.cli import main
from lgvsc.sim.plots import _rate_panel
from lgvsc.sim.runner import ProgressTable, finalize, run
from lgvsc.sim.scenario import validate
from lgvsc.sim.summary import read_summary, scheme_objects
from lgvsc.sim.units import Unit, plan_units, unit_fingerprints

# Two uncoded schemes (milliseconds a unit). SNRs given unsorted on purpose. With
# seed 11, 2 x 10 blocks of 64 bits per point: BPSK sees no block error at 9 dB (and
# none at 12), QPSK sees errors up to 9 dB and none at 12 (the top point).
SCHEMES = [{"name": "QPSK", "type": "uncoded", "modulation": "qpsk", "k": 64},
           {"name": "BPSK", "type": "uncoded", "modulation": "bpsk", "k": 64}]
SNRS = [12.0, 0.0, 9.0, 6.0, 3.0]
MC = {"batch_blocks": 10, "max_batches": 2, "target_block_errors": 5}
MEASURED = ("ber", "ber_lo", "ber_hi", "ber_ci_over", "bler", "bler_lo", "bler_hi", "raw_ber",
            "bits", "bit_errors", "blocks", "block_errors", "raw_bits", "raw_bit_errors",
            "channel_uses", "batches")


def scenario(snrs=SNRS, workers=1, executor="local", **stop):
    return small_link_scenario(name="t-stop", channel={"type": "awgn", "snr_db": list(snrs)},
                               schemes=SCHEMES, monte_carlo={**MC, **stop},
                               executor={"type": executor, "workers": workers})


def _summary(out) -> list[dict]:
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _units(out) -> dict[str, tuple]:
    """{unit_id: (finished_at, bit_errors, block_errors, blocks, params)} of the store."""
    with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as db:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT unit_id, finished_at, bit_errors, block_errors, blocks, params FROM units")}


def _expected_skips(full: list[dict], rule) -> dict[tuple[str, float], str]:
    """The skips the rule implies, from a run of every point: per scheme, ascending,
    every point above the first one where ``rule(row)`` gives a reason."""
    out = {}
    for name in [s["name"] for s in SCHEMES]:
        rows = sorted((r for r in full if r["scheme"] == name), key=lambda r: float(r["snr_db"]))
        why = None
        for r in rows:
            if why is not None:
                out[(name, float(r["snr_db"]))] = why
            elif rule(r):
                why = f"skipped: {rule(r)} at {float(r['snr_db']):g} dB"
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """Every point computed (no stop option): the reference results."""
    out = run(validate(scenario()), tmp_path_factory.mktemp("full") / "r", progress=False)
    return out, _summary(out)


def _no_errors(r):
    return "no block errors" if int(r["block_errors"]) == 0 else None


def _check_stop_run(out, full_rows, expected):
    rows = _summary(out)
    assert expected, "the scenario must stop at least one scheme early"
    by = {(r["scheme"], float(r["snr_db"])): r for r in rows}
    ref = {(r["scheme"], float(r["snr_db"])): r for r in full_rows}
    assert set(by) == set(ref)  # every planned point has a row, computed or skipped
    for key, r in by.items():
        if key in expected:
            assert r["stop_reason"] == expected[key] and r["units"] == "0"
            assert all(r[f] == "" for f in MEASURED), r
            assert r["ber_theory"] == ref[key]["ber_theory"]  # the reference stays
        else:
            assert r == ref[key]  # a computed point: exactly the full run's numbers
    # scenario order, SNR ascending although the scenario lists them unsorted
    for name in ("QPSK", "BPSK"):
        snrs = [float(r["snr_db"]) for r in rows if r["scheme"] == name]
        assert snrs == sorted(SNRS)
    # skipped points were never computed: no unit row for them
    ids = set(_units(out))
    assert all(f"{n}|{s!r}||0" not in ids for n, s in expected)
    assert len(ids) == len(SCHEMES) * len(SNRS) - len(expected)


def test_stop_at_zero_errors_same_for_one_and_two_workers(full, tmp_path):
    full_out, full_rows = full
    expected = _expected_skips(full_rows, _no_errors)
    assert expected == {("BPSK", 12.0): "skipped: no block errors at 9 dB"}
    one = run(validate(scenario(stop_at_zero_errors=True)), tmp_path / "one", progress=False)
    two = run(validate(scenario(workers=2, stop_at_zero_errors=True)), tmp_path / "two",
              progress=False)
    _check_stop_run(one, full_rows, expected)
    assert (two / "summary.csv").read_bytes() == (one / "summary.csv").read_bytes()
    # the computed units are the full run's units, fingerprints included
    common = {u: v[1:] for u, v in _units(one).items()}
    assert common == {u: v[1:] for u, v in _units(full_out).items() if u in common}
    assert {u: v[1:] for u, v in _units(two).items()} == common


def test_min_bler_stop_names_the_bler(full, tmp_path):
    _, full_rows = full

    def below(r, bound=0.2):
        bler = int(r["block_errors"]) / int(r["blocks"])
        return f"BLER {bler:.1e} < min_bler 2e-01" if bler < bound else None

    expected = _expected_skips(full_rows, below)
    assert expected == {("QPSK", 12.0): "skipped: BLER 1.0e-01 < min_bler 2e-01 at 9 dB",
                        ("BPSK", 9.0): "skipped: BLER 1.5e-01 < min_bler 2e-01 at 6 dB",
                        ("BPSK", 12.0): "skipped: BLER 1.5e-01 < min_bler 2e-01 at 6 dB"}
    out = run(validate(scenario(min_bler=0.2)), tmp_path / "r", progress=False)
    _check_stop_run(out, full_rows, expected)
    # both options: zero errors is named first, the BLER bound where errors were seen
    both = run(validate(scenario(min_bler=0.12, stop_at_zero_errors=True)), tmp_path / "b",
               progress=False)
    reasons = {(r["scheme"], r["snr_db"]): r["stop_reason"] for r in _summary(both)
               if r["stop_reason"].startswith("skipped")}
    assert reasons == {("QPSK", "12"): "skipped: BLER 1.0e-01 < min_bler 1.2e-01 at 9 dB",
                       ("BPSK", "12"): "skipped: no block errors at 9 dB"}


def test_resume_keeps_skips_and_removing_the_option_runs_them(full, tmp_path, write_yaml,
                                                             capsys):
    full_out, full_rows = full
    out = tmp_path / "r"
    stop = write_yaml(scenario(stop_at_zero_errors=True), "stop.yaml")
    assert main(["run", str(stop), "--out", str(out), "--no-progress"]) == 0
    before, summary = _units(out), (out / "summary.csv").read_bytes()
    assert len(before) == 9
    # resumed with the option: nothing runs, the skip is known again
    assert main(["run", str(stop), "--out", str(out), "--no-progress"]) == 0
    assert _units(out) == before and (out / "summary.csv").read_bytes() == summary
    # `lgvsc plot` (finalize) knows it from the store alone
    (out / "summary.csv").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "summary.csv").read_bytes() == summary
    # another min_bler is no parameter change (no refusal, no --fresh), fewer skips here
    loose = write_yaml(scenario(min_bler=0.01), "loose.yaml")
    assert main(["run", str(loose), "--out", str(out), "--no-progress"]) == 0
    assert _units(out) == before  # BLER 0 at 9 dB < 0.01: 12 dB stays skipped
    # the option removed: the skipped point is computed, nothing else reruns
    plain = write_yaml(scenario(), "plain.yaml")
    assert main(["run", str(plain), "--out", str(out), "--no-progress"]) == 0
    after = _units(out)
    assert len(after) == 10 and all(after[u] == before[u] for u in before)
    assert _summary(out) == full_rows
    capsys.readouterr()


def test_stored_units_of_an_earlier_run_decide_and_stay_results(full, tmp_path):
    _, full_rows = full
    out = tmp_path / "r"
    # an earlier run without the option: the low points and the top one
    run(validate(scenario(snrs=[12.0, 0.0, 9.0])), out, progress=False)
    first = _units(out)
    # with the option: BPSK's stored 9 dB point (no errors) skips only points above it,
    # and there its stored 12 dB point stays a result; 3 and 6 dB run for both schemes
    run(validate(scenario(stop_at_zero_errors=True)), out, progress=False)
    after = _units(out)
    assert all(after[u] == first[u] for u in first)
    assert len(after) == 10  # 3 and 6 dB of both schemes ran; nothing was skipped
    assert _summary(out) == full_rows
    # a stored trigger from an earlier run stops the sweep before anything runs
    out2 = tmp_path / "r2"
    run(validate(scenario(snrs=[0.0, 3.0, 6.0, 9.0])), out2, progress=False)
    stored = _units(out2)
    run(validate(scenario(stop_at_zero_errors=True)), out2, progress=False)
    grown = _units(out2)
    assert set(grown) - set(stored) == {"QPSK|12.0||0"}  # BPSK 12 dB skipped by its 9 dB
    rows = {(r["scheme"], r["snr_db"]): r["stop_reason"] for r in _summary(out2)}
    assert rows[("BPSK", "12")] == "skipped: no block errors at 9 dB"


def test_fingerprints_ignore_the_stop_options():
    plain = validate(scenario())
    units = plan_units(plain)
    want = unit_fingerprints(plain, units)
    for stop in ({"stop_at_zero_errors": True}, {"min_bler": 1e-3},
                 {"stop_at_zero_errors": True, "min_bler": 0.5}):
        assert unit_fingerprints(validate(scenario(**stop)), units) == want
    # and they are what lgvsc computed before the options existed
    params = plain.unit_parameters("QPSK")
    assert params["monte_carlo"] == MC
    legacy = hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":"))
                            .encode()).hexdigest()[:16]
    assert want["QPSK|12.0||0"] == legacy


def _table_lines(err: str) -> list[str]:
    """The progress table's lines (split at the bar's carriage returns too)."""
    return [x for x in re.split(r"[\r\n]", err) if x.count(" | ") == 10]


def test_progress_table_has_a_header_and_one_line_per_unit(tmp_path, capsys):
    run(validate(scenario(stop_at_zero_errors=True)), tmp_path / "r", progress=True)
    lines = _table_lines(capsys.readouterr().err)
    head = [c.strip() for c in lines[0].split("|")]
    assert head == ["scheme", "SNR [dB]", "bit errors", "bits", "BER", "block errors", "blocks",
                    "BLER", "iterations", "time [s]", "status"]
    body = [[c.strip() for c in x.split("|")] for x in lines[1:]]
    assert len(body) == len(SCHEMES) * len(SNRS)  # 9 finished + 1 skipped
    assert {(b[0], float(b[1])) for b in body} == {(s["name"], x) for s in SCHEMES for x in SNRS}
    skipped = [b for b in body if b[-1].startswith("skipped")]
    assert skipped == [["BPSK", "12"] + ["-"] * 8 + ["skipped: no block errors at 9 dB"]]
    for b in body:
        if b not in skipped:
            assert b[-1] in ("reached target block errors", "reached max batches")
            assert b[8] == "-"  # uncoded: no decoder iterations
            assert int(b[2]) <= int(b[3]) and int(b[5]) <= int(b[6])
    # per scheme the lines come in ascending SNR order (waves)
    for name in ("QPSK", "BPSK"):
        snrs = [float(b[1]) for b in body if b[0] == name]
        assert snrs == sorted(snrs)
    # without the option too, and nothing without progress
    run(validate(scenario()), tmp_path / "plain", progress=True)
    assert len(_table_lines(capsys.readouterr().err)) == 1 + len(SCHEMES) * len(SNRS)
    run(validate(scenario()), tmp_path / "quiet", progress=False)
    assert _table_lines(capsys.readouterr().err) == []


def test_progress_table_iterations_from_the_unit_extras():
    sc = validate(scenario())
    lines = []
    table = ProgressTable(sc, lines.append)
    row = dict(scheme="QPSK", snr_db=2.5, bit_errors=3, bits=640, block_errors=2, blocks=10,
               wall_s=0.25, stop_reason="max_batches", extra={"iterations_mean": 7.25})
    table.unit(row)
    table.skipped(Unit("BPSK", 4.0), "skipped: no block errors at 2 dB")
    cells = [c.strip() for c in lines[2].split("|")]
    assert cells == ["QPSK", "2.5", "3", "640", "4.6875e-03", "2", "10", "2.0000e-01", "7.2",
                     "0.25", "reached max batches"]
    assert len(lines) == 4 and set(lines[1]) == {"-"}
    assert len({len(x.split("|")[0]) for x in lines[2:]}) == 1  # scheme column aligned


def test_plots_do_not_draw_skipped_points(tmp_path):
    out = run(validate(scenario(stop_at_zero_errors=True)), tmp_path / "r", progress=False)
    sc = validate(scenario(stop_at_zero_errors=True))
    rows = read_summary(out / "summary.csv")
    assert any(r["stop_reason"].startswith("skipped") for r in rows)

    class Ax:
        def __init__(self):
            self.xs = []

        def errorbar(self, x, y, **kw):
            self.xs += [(kw.get("label"), float(v)) for v in x]

        def plot(self, x, y, *a, **kw):
            if len(x) < 10:  # markers, not the dense theory curves
                self.xs += [(kw.get("label"), float(v)) for v in x]

        def __getattr__(self, name):
            if name == "get_ylim":
                return lambda: (1e-9, 1)
            return lambda *a, **kw: None

    colors = {s["name"]: "k" for s in SCHEMES}
    for key in ("ber", "bler"):
        ax = Ax()
        _rate_panel(ax, rows, key, scheme_objects(sc), "awgn", colors)
        drawn = {(label.split(":")[0], x) for label, x in ax.xs}
        assert ("BPSK", 12.0) not in drawn and ("BPSK", 9.0) in drawn and ("QPSK", 12.0) in drawn
    assert finalize(out)  # the real plots are written with the skipped rows present


@pytest.mark.parametrize("field, value, needle", [
    ("stop_at_zero_errors", True, "monte_carlo.stop_at_zero_errors: only link scenarios"),
    ("min_bler", 1e-3, "monte_carlo.min_bler: only link scenarios"),
])
def test_stop_options_refused_in_a_video_scenario(tmp_path, capsys, field, value, needle):
    video = {"name": "t-v", "kind": "video", "channel": {"type": "awgn", "snr_db": [6.0]},
             "videos": [{"source": "synthetic:pan", "frames": 8, "size": [64, 64]}],
             "schemes": [{"name": "S", "type": "softcast", "target_cbr": 0.05}],
             "monte_carlo": {"trials": 1, field: value}}
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(video))
    for cmd in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "o")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"lgvsc: error: {path}: {needle}"), err
    # their defaults, as a stored scenario holds them, are fine
    video["monte_carlo"].update(stop_at_zero_errors=False, min_bler=None)
    assert validate(video).monte_carlo.trials == 1


@pytest.mark.parametrize("stop, needle", [
    ({"min_bler": 0}, "monte_carlo.min_bler: Input should be greater than 0"),
    ({"min_bler": 1.0}, "monte_carlo.min_bler: Input should be less than 1"),
    ({"min_bler": True}, "monte_carlo.min_bler: expected a number, not true/false"),
    ({"stop_at_zero_errors": 1}, "monte_carlo.stop_at_zero_errors: Input should be a valid "
                                 "boolean"),
    ({"stop_at_zero_errors": "yes"}, "monte_carlo.stop_at_zero_errors"),
])
def test_bad_stop_options_are_one_line(write_yaml, capsys, stop, needle):
    path = write_yaml(scenario(**stop))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


@pytest.mark.slow
def test_ray_stops_as_local_does(full, tmp_path, write_yaml):
    pytest.importorskip("ray")
    outs = {}
    for label, args in {"local": [], "ray": ["--executor", "ray", "--workers", "2"]}.items():
        outs[label] = tmp_path / label
        path = write_yaml(scenario(stop_at_zero_errors=True, min_bler=0.12), f"{label}.yaml")
        assert main(["run", str(path), "--out", str(outs[label]), "--no-progress", *args]) == 0
    ref = (outs["local"] / "summary.csv").read_bytes()
    assert (outs["ray"] / "summary.csv").read_bytes() == ref
