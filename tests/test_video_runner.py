import csv
import os
import sqlite3
from pathlib import Path

import pytest

from lgvsc.sim.cli import main
from lgvsc.sim.runner import run
from lgvsc.sim.scenario import load_scenario, validate

ROOT = Path(__file__).resolve().parents[1]


def _scenario(**over):
    sc = {
        "name": "t-video", "kind": "video", "seed": 3,
        "videos": [{"source": "synthetic:pan", "frames": 8, "size": [64, 64]},
                   {"source": "builtin:carphone", "frames": 6, "size": [144, 176]}],
        "channel": {"type": "awgn", "snr_db": [2, 10]},
        "schemes": [
            {"name": "H.264+LDPC", "type": "codec-ldpc", "codec": "h264", "qp": 35, "gop": 4,
             "rate": 0.5, "modulation": "qam16"},
            {"name": "SoftCast", "type": "softcast", "target_cbr": 2e-3, "gop": 4},
        ],
        "monte_carlo": {"trials": 2},
        "metrics": ["psnr", "ssim"],
    }
    sc.update(over)
    return sc


def test_video_sweep_summary_tables_and_figures(tmp_path, write_yaml, capsys):
    out = run(validate(_scenario()), tmp_path / "v", progress=False)
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM units").fetchone()[0] == 2 * 2 * 2 * 2
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [(r["scheme"], r["snr_db"]) for r in rows] == [
        ("H.264+LDPC", "2"), ("H.264+LDPC", "10"), ("SoftCast", "2"), ("SoftCast", "10")]
    for r in rows:
        assert (r["videos"], r["trials"], r["ci_over"]) == ("2", "4", "videos")
        for m in ("cbr", "psnr_concealed", "ssim_concealed"):
            assert float(r[f"{m}_lo"]) <= float(r[m]) <= float(r[f"{m}_hi"])
    h264 = {r["snr_db"]: r for r in rows if r["scheme"] == "H.264+LDPC"}
    # below the cliff every trial fails: outage 1, no quality (the paper's "-"), and the
    # concealed output is still there, labelled as such
    assert h264["2"]["outage"] == "1" and h264["2"]["psnr"] == "" and h264["2"]["cbr"]
    assert h264["2"]["failed_parts"] == "bitstream:4"
    assert h264["10"]["outage"] == "0" and h264["10"]["psnr"] == h264["10"]["psnr_concealed"]
    assert float(h264["10"]["psnr"]) > float(h264["2"]["psnr_concealed"])
    assert float(h264["2"]["raw_ber"]) > float(h264["10"]["raw_ber"])
    soft = {r["snr_db"]: r for r in rows if r["scheme"] == "SoftCast"}
    assert soft["10"]["outage"] == "0" and float(soft["10"]["psnr"]) > float(soft["2"]["psnr"])
    for f in ("fig3.png", "fig3_psnr.pdf", "quality_vs_cbr_ssim.png", "quality_vs_ber_psnr.png"):
        assert (out / "plots" / f).stat().st_size > 0
    table = (out / "cbr_table.md").read_text()
    assert "| SNR (dB) | H.264+LDPC | SoftCast |" in table
    assert table.splitlines()[2].startswith("| 2 | \u2013 | ")  # the failed cell
    quality = (out / "quality_table.md").read_text()
    assert "| H.264+LDPC | 2 |" in quality and "| 1.00 (4/4) | 0 x 0 | \u2013 | \u2013 |" in quality
    assert (out / "plots" / "outage.png").stat().st_size > 0
    assert (out / "cbr_table.csv").exists() and (out / "quality_table.md").exists()
    capsys.readouterr()
    assert main(["run", str(write_yaml(_scenario())), "--out", str(out)]) == 0  # nothing to do
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM units").fetchone()[0] == 16
    printed = capsys.readouterr().out
    assert "PSNR (failure: drop" in printed and "outage (failed trials / trials)" in printed
    assert "quality_table.md" in printed and "fig3.png" in printed
    assert main(["compare", str(out), "SoftCast", "H.264+LDPC"]) == 0
    cmp = capsys.readouterr().out.splitlines()
    assert cmp[0].startswith("SoftCast - H.264+LDPC: PSNR difference")
    at2 = next(ln for ln in cmp if ln.split()[0] == "2")
    assert "no video scored by both" in at2 and at2.split()[-2:] == ["0/4", "4/4"]
    at10 = next(ln for ln in cmp if ln.split()[0] == "10").split()
    assert "2 videos" in " ".join(at10) and at10[-2:] == ["0/4", "0/4"]
    assert main(["compare", str(out), "SoftCast", "Nope"]) == 2


def test_shipped_video_scenarios_validate():
    for name in ("video_demo.yaml", "quickstart.yaml"):
        sc = load_scenario(ROOT / "scenarios" / name)
        assert sc.kind == "video" and sc.videos


@pytest.mark.parametrize("over,needle", [
    ({"videos": []}, "videos: a video scenario needs at least one video"),
    ({"metrics": ["psnr", "no_such_metric"]}, "metrics[1]: unknown metric 'no_such_metric'"),
    ({"schemes": [{"name": "x", "type": "codec-ldpc", "codec": "h266"}]}, "schemes[0].codec"),
    ({"schemes": [{"name": "x", "type": "uncoded"}]}, "is a link scheme"),
    ({"videos": [{"source": "builtin:bikes", "size": [64, 65]}]}, "videos[0].size"),
])
def test_bad_video_scenarios(write_yaml, capsys, over, needle):
    assert main(["validate", str(write_yaml(_scenario(**over)))]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_adding_a_trial_and_an_snr_runs_only_the_new_units(tmp_path):
    h264 = [{"name": "H.264+LDPC", "type": "codec-ldpc", "codec": "h264", "qp": 35, "gop": 4,
             "rate": 0.5, "modulation": "qam16"}]
    small = dict(videos=[{"source": "synthetic:pan", "frames": 8, "size": [64, 64]}],
                 schemes=h264)
    out = tmp_path / "v"
    run(validate(_scenario(**small, monte_carlo={"trials": 1})), out, progress=False)

    def stored():
        with sqlite3.connect(out / "results.sqlite") as db:
            return dict(db.execute("SELECT unit_id, finished_at || wall_s FROM units"))

    before = stored()
    assert len(before) == 2
    grown = _scenario(**small, monte_carlo={"trials": 2},
                      channel={"type": "awgn", "snr_db": [2, 6, 10]})
    run(validate(grown), out, progress=False)
    after = stored()
    assert len(after) == 6 and all(after[u] == before[u] for u in before)
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [(r["snr_db"], r["trials"]) for r in rows] == [("2", "2"), ("6", "2"), ("10", "2")]


def test_validate_warns_about_what_cannot_run_or_cannot_decode(write_yaml, capsys):
    sc = _scenario(metrics=["psnr", "lpips"], schemes=[
        {"name": "T1", "type": "codec-ldpc", "codec": "h264", "preset": "paper-table1"},
        {"name": "TO", "type": "text-only"}])  # (a missing model path: tests/test_bad_inputs.py)
    assert main(["validate", str(write_yaml(sc))]) == 0
    captured = capsys.readouterr()
    assert "ok (video scenario" in captured.out
    warns = captured.err.splitlines()
    assert all(w.startswith("lgvsc: warning: ") for w in warns)
    text = "\n".join(warns)
    assert "T1: row 6 dB (16-QAM, rate 3/4" in text  # beyond capacity: cannot decode there
    assert "scheme 'TO' cannot run here" in text
    if not os.environ.get("LGVSC_VGG16"):
        assert "metric lpips unavailable here" in text
