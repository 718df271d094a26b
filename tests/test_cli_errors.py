"""Bad input: exit code 2 and one line on stderr naming the field or file."""

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import small_link_scenario
from lgvsc.sim.cli import main


def _bad(**changes):
    sc = small_link_scenario()
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = sc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return sc


_DELETE = object()

CASES = [
    (_bad(**{"schemes.1.type": "turbo"}), ["schemes[1].type", "unknown scheme type 'turbo'", "ldpc5g"]),
    (_bad(**{"schemes.0.modulation": "qam32"}), ["schemes[0].modulation", "qam16"]),
    (_bad(**{"channel.type": "awgm"}), ["channel.type", "awgn, rayleigh, rician"]),
    (_bad(**{"channel.snr_db": "0, 2, 4"}), ["channel.snr_db", "valid list"]),
    (_bad(**{"seed": _DELETE, "name": _DELETE}), ["name", "missing required field"]),
    (_bad(**{"schemes.1.rate": 1.5}), ["schemes[1].rate", "less than or equal to 0.95"]),
    (_bad(**{"schemes.1.ratee": 0.5}), ["schemes[1].ratee", "unknown key"]),
    (_bad(**{"channel.coherence": 0, "channel.type": "rayleigh"}), ["channel", "coherence"]),
    (_bad(**{"channel.k_factor": 2}), ["channel.k_factor", "unknown key for channel 'awgn'"]),
    (_bad(**{"monte_carlo.batch_blocks": -1}), ["monte_carlo.batch_blocks", "greater than 0"]),
    ("name: [unclosed\n  kind: link", ["not valid YAML", "line"]),
    ("- just\n- a list\n", ["YAML mapping"]),
]


@pytest.mark.parametrize("data,needles", CASES)
def test_validate_reports_one_line(write_yaml, capsys, data, needles):
    path = write_yaml(data)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert str(path) in err
    for n in needles:
        assert n in err, (n, err)


def test_missing_file_and_unknown_executor(tmp_path, write_yaml, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err
    path = write_yaml(small_link_scenario())
    assert main(["run", str(path), "--executor", "slurm", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown executor type 'slurm'" in err and "local, ray" in err


def test_valid_file_and_list(write_yaml, capsys):
    assert main(["validate", str(write_yaml(small_link_scenario()))]) == 0
    assert "4 units" in capsys.readouterr().out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split(":")[0]: ln for ln in out.splitlines()}
    for family in ("channel", "scheme", "executor", "selector", "scorer", "captioner",
                   "side_info", "keyframe_codec", "world_model", "adapter", "metric",
                   "modulation"):
        assert family in lines, family
    assert lines["scheme"].startswith("scheme: codec-ldpc, keyframe-jscc, ldpc5g, lgvsc, softcast, "
                                      "text-only (real tier: needs a text-to-video")
    assert "world_model: diffusers (real tier: needs a local diffusers pipeline" in out
    if importlib.util.find_spec("opensora") is None:
        assert ", interp, opensora (not usable here: opensora not installed)" in out
    assert "scorer: classical, vlm (real tier: needs a local VLM folder (path:))" in out
    assert lines["side_info"] == "side_info: grid, scalar"
    assert lines["adapter"] == "adapter: dsa, sfa"
    # metrics whose weights are absent say why (CI has none); the weight-free ones are plain
    assert ", ms_ssim, psnr, ssim, ssim_rgb" in lines["metric"]
    if not os.environ.get("LGVSC_VGG16"):
        assert "lpips (unavailable here: VGG16 weights not found" in lines["metric"]


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("lgvsc ")


def test_console_script_exit_code_and_no_traceback(write_yaml):
    path = write_yaml(_bad(**{"schemes.0.type": "nope"}))
    p = subprocess.run([sys.executable, "-m", "lgvsc.sim.cli", "run", str(path)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    p = subprocess.run([sys.executable, "-m", "lgvsc.sim.cli", "run"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
