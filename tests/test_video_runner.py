import csv
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


def test_video_sweep_summary_tables_and_figures(tmp_path):
    out = run(validate(_scenario()), tmp_path / "v", progress=False)
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM units").fetchone()[0] == 2 * 2 * 2 * 2
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [(r["scheme"], r["snr_db"]) for r in rows] == [
        ("H.264+LDPC", "2"), ("H.264+LDPC", "10"), ("SoftCast", "2"), ("SoftCast", "10")]
    for r in rows:
        assert r["n"] == "4"
        for m in ("cbr", "psnr", "ssim"):
            assert float(r[f"{m}_lo"]) <= float(r[m]) <= float(r[f"{m}_hi"])
    h264 = {r["snr_db"]: r for r in rows if r["scheme"] == "H.264+LDPC"}
    assert float(h264["10"]["psnr"]) > float(h264["2"]["psnr"])  # above vs below the cliff
    assert float(h264["2"]["raw_ber"]) > float(h264["10"]["raw_ber"])
    for f in ("fig3.png", "fig3_psnr.pdf", "quality_vs_cbr_ssim.png", "quality_vs_ber_psnr.png"):
        assert (out / "plots" / f).stat().st_size > 0
    table = (out / "cbr_table.md").read_text()
    assert "| SNR (dB) | H.264+LDPC | SoftCast |" in table
    assert (out / "cbr_table.csv").exists() and (out / "quality_table.md").exists()
    run(validate(_scenario()), out, progress=False)  # resumes: nothing to do
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM units").fetchone()[0] == 16


def test_shipped_video_scenarios_validate():
    for name in ("video_demo.yaml", "quickstart.yaml"):
        sc = load_scenario(ROOT / "scenarios" / name)
        assert sc.kind == "video" and sc.videos


@pytest.mark.parametrize("over,needle", [
    ({"videos": []}, "videos: a video scenario needs at least one video"),
    ({"metrics": ["psnr", "vmaf"]}, "metrics[1]: unknown metric 'vmaf'"),
    ({"schemes": [{"name": "x", "type": "codec-ldpc", "codec": "h266"}]}, "schemes[0].codec"),
    ({"schemes": [{"name": "x", "type": "uncoded"}]}, "is a link scheme"),
    ({"videos": [{"source": "builtin:bikes", "size": [64, 65]}]}, "videos[0].size"),
])
def test_bad_video_scenarios(write_yaml, capsys, over, needle):
    assert main(["validate", str(write_yaml(_scenario(**over)))]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
