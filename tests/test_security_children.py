"""Child processes cannot be hijacked or outlive lgvsc (issue 11).

* The H.264 / H.265 decoder child imports only the installed packages: a user's
  ``av.py`` or ``lgvsc/`` in the working directory (or on PYTHONPATH) is never run.
* It is bounded in memory: over its limit it ends as "crashed", frames concealed.
* The local process pool's workers and the multiprocessing resource tracker end
  when the parent is killed with SIGKILL.
"""

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import slow_link_scenario
from lgvsc.sim import codecs
from lgvsc.sim.cli import main
from lgvsc.sim.errors import UserError
from lgvsc.sim.video import VideoSpec, load_video

F, H, W = 8, 64, 64
LGVSC = Path(sys.executable).with_name("lgvsc")  # the console script: sys.path[0] is bin/
MARKERS = ("AV_IMPORTED", "LGVSC_IMPORTED")


@pytest.fixture(scope="module")
def clip():
    return load_video(VideoSpec(source="synthetic:pan", frames=F, size=(H, W)), seed=3).frames


def _plant(folder: Path) -> Path:
    """A user's unrelated ``av.py`` and ``lgvsc/`` package; each leaves a marker when run."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "av.py").write_text(
        f"open({str(folder / 'AV_IMPORTED')!r}, 'w').close()\n"
        "raise RuntimeError('a user av.py was imported')\n")
    (folder / "lgvsc").mkdir(exist_ok=True)
    (folder / "lgvsc" / "__init__.py").write_text(
        f"open({str(folder / 'LGVSC_IMPORTED')!r}, 'w').close()\n")
    return folder


def _markers(folder: Path) -> list[str]:
    return [m for m in MARKERS if (folder / m).exists()]


# -- the decoder child imports only the installed packages ---------------------------
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_decoder_child_ignores_planted_modules(clip, codec, tmp_path, monkeypatch):
    bs = codecs.encode(clip, codec, 25, 4, bframes=None)
    clean = tmp_path / "clean"
    clean.mkdir()
    monkeypatch.chdir(clean)
    ref = codecs.decode(bs.data, bs.lengths, codec, H, W, pts=bs.pts)
    assert ref.status == "ok" and ref.decoded == F
    planted = _plant(tmp_path / "planted")
    monkeypatch.chdir(planted)
    monkeypatch.setenv("PYTHONPATH", str(planted))  # isolated mode ignores it too
    out = codecs.decode(bs.data, bs.lengths, codec, H, W, pts=bs.pts)
    assert out.status == "ok" and out.decoded == F and out.concealed == 0
    np.testing.assert_array_equal(out.frames, ref.frames)
    assert _markers(planted) == []


def test_decoder_child_missing_module_is_a_user_error(clip, tmp_path, monkeypatch):
    """An interpreter that cannot import numpy / av is the environment's fault, not the
    data's: one clear error, not every frame silently concealed."""
    python = tmp_path / "python-no-site"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')  # -S: no site-packages
    python.chmod(0o755)
    bs = codecs.encode(clip, "h264", 25, 4)
    monkeypatch.setattr(sys, "executable", str(python))
    with pytest.raises(UserError, match="ModuleNotFoundError.*install lgvsc\\[video\\]"):
        codecs.decode(bs.data, bs.lengths, "h264", H, W)


# -- the decoder child is bounded in memory --------------------------------------------
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_decoder_child_over_its_memory_limit_crashes(clip, codec):
    bs = codecs.encode(clip, codec, 25, 4)
    for limit in (1, 64 << 20):  # far below what the interpreter alone maps (~205 MB)
        t = time.monotonic()
        out = codecs.decode(bs.data, bs.lengths, codec, H, W, memory_limit_bytes=limit)
        assert time.monotonic() - t < 30
        assert out.status == "crashed" and out.decoded == 0 and out.concealed == F
        assert out.frames.shape == (F, H, W, 3) and (out.frames == codecs.GREY).all()
    ok = codecs.decode(bs.data, bs.lengths, codec, H, W)  # the default limit
    assert ok.status == "ok" and ok.decoded == F


def test_decoder_child_keeps_a_lower_ulimit(tmp_path):
    """A user's hard address-space limit below the default is kept, not a crash."""
    script = tmp_path / "ulimit.py"
    script.write_text(
        "import resource\n"
        "import numpy as np\n"
        "resource.setrlimit(resource.RLIMIT_AS, (900 << 20, 900 << 20))\n"
        "from lgvsc.sim import codecs\n"
        "frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)\n"
        "bs = codecs.encode(frames, 'h264', 30, 4)\n"
        "assert codecs.memory_limit(64, 64) > 900 << 20\n"
        "d = codecs.decode(bs.data, bs.lengths, 'h264', 64, 64)\n"
        "print(d.status, d.decoded)\n")
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ok", "4"]


def test_default_memory_limit_leaves_room():
    """The default is well above the measured peaks (~205 MB + 4-6 RGB pictures)."""
    assert codecs.memory_limit(64, 64) >= 4 * (205 << 20)
    assert codecs.memory_limit(2160, 3840) >= (205 << 20) + 16 * 2160 * 3840 * 3


# -- a full run in a folder holding the planted files -----------------------------------
def _video_scenario(workers: int) -> dict:
    return {"name": "t-planted", "kind": "video", "seed": 5,
            "videos": [{"source": "synthetic:pan", "frames": F, "size": [H, W]}],
            "channel": {"type": "awgn", "snr_db": [3.0, 12.0]},
            "schemes": [{"name": "H", "type": "codec-ldpc", "codec": "h264", "qp": 30,
                         "rate": 0.5}],
            "metrics": ["psnr"], "monte_carlo": {"trials": 2},
            "executor": {"type": "local", "workers": workers}}


def _summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_run_in_a_folder_with_planted_modules_matches_a_clean_run(tmp_path, monkeypatch):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(_video_scenario(1), sort_keys=False))
    clean = tmp_path / "clean"
    clean.mkdir()
    monkeypatch.chdir(clean)
    assert main(["run", str(scenario), "--out", str(tmp_path / "ref"), "--no-progress"]) == 0
    ref = _summary(tmp_path / "ref")
    assert all(float(r["psnr"]) > 30 for r in ref)  # really decoded, not concealed
    planted = _plant(tmp_path / "planted")
    for workers in (1, 2):  # in process, and in the process pool's workers
        out = tmp_path / f"w{workers}"
        p = subprocess.run([str(LGVSC), "run", str(scenario), "--out", str(out), "--workers",
                            str(workers), "--no-progress"], cwd=planted, capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        assert _summary(out) == ref
        assert _markers(planted) == []


# -- the process pool ends with its parent -----------------------------------------------
def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (state first); None once gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")  # a zombie has ended


def _processes() -> list[tuple[int, list[str]]]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and (st := _stat(int(d))) is not None:
            out.append((int(d), st))
    return out


def _descendants(root: int) -> set[int]:
    """Live processes below ``root`` (fields: state, ppid, ...)."""
    procs, found, todo = _processes(), set(), [root]
    while todo:
        parent = todo.pop()
        kids = {pid for pid, st in procs if int(st[1]) == parent and st[0] != "Z"}
        todo += list(kids - found)
        found |= kids
    return found


def _session(sid: int) -> set[int]:
    """Live processes of session ``sid`` (ours: started with start_new_session)."""
    return {pid for pid, st in _processes() if int(st[3]) == sid and st[0] != "Z"}


def _stored_units(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT count(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sigkilled_parent_leaves_no_workers_or_tracker(tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(slow_link_scenario("t-orphans", 12), sort_keys=False))
    out = tmp_path / "r"
    proc = subprocess.Popen([str(LGVSC), "run", str(scenario), "--out", str(out), "--workers",
                             "2", "--no-progress"], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            pids |= _descendants(proc.pid)
            if len(pids) >= 3 and _stored_units(out / "results.sqlite") >= 1:
                break  # two workers and the resource tracker, units being computed
            time.sleep(0.05)
        assert proc.poll() is None, "run finished before it could be killed"
        pids |= _descendants(proc.pid)
        assert len(pids) >= 3, f"expected two workers and a resource tracker, got {pids}"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only
        proc.wait()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15 and any(_alive(p) for p in pids):
            time.sleep(0.1)
        left = sorted(p for p in pids if _alive(p))
        assert not left, f"still running {time.monotonic() - t0:.1f} s after SIGKILL: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids | _session(proc.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
