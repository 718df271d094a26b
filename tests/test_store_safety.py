"""The results folder is safe to resume, share, kill and corrupt: file-sourced videos
are fingerprinted by content, one run holds a folder at a time, damaged stores are one
line, outputs are atomic and never written through a symbolic link."""

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import slow_link_scenario, small_link_scenario
from lgvsc.sim import __version__
from lgvsc.sim.cli import main
from lgvsc.sim.errors import UserError
from lgvsc.sim.outputs import TMP_PREFIX, atomic_write, folder_lock
from lgvsc.sim.runner import finalize, open_store, run, stored_results
from lgvsc.sim.scenario import validate
from lgvsc.sim.units import (_fingerprint, file_digests, fingerprint, plan_units,
                             unit_fingerprints)

STORE = "results.sqlite"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _error_line(capsys) -> str:
    """The one stderr line of a refused command (no traceback, no other lines)."""
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if not x.startswith("lgvsc: warning:")]
    assert len(lines) == 1 and lines[0].startswith("lgvsc: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _unit_rows(out):
    with contextlib.closing(sqlite3.connect(out / STORE)) as db:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT unit_id, finished_at, wall_s, bit_errors, params FROM units")}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A results folder of the small link scenario, run once for this module (copy it)."""
    out = tmp_path_factory.mktemp("finished") / "r"
    run(validate(small_link_scenario()), out, progress=False)
    return out


@pytest.fixture
def folder(finished, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(finished, out)
    return out


# -- 1. file-sourced videos: the fingerprint covers the file's content -----------------
def _video_scenario(base, **video):
    return validate({
        "name": "t-files", "kind": "video", "seed": 3,
        "videos": [{"source": "clip.mp4", **video}, {"source": "synthetic:pan", "frames": 8},
                   {"source": "builtin:carphone", "frames": 6}],
        "channel": {"type": "awgn", "snr_db": [5]},
        "schemes": [{"name": "SoftCast", "type": "softcast", "target_cbr": 2e-3, "gop": 4}],
    }, base)


def _legacy_fingerprint(sc, scheme, video):
    blob = json.dumps(sc.unit_parameters(scheme, video), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_builtin_and_synthetic_fingerprints_are_unchanged(tmp_path):
    sc = _video_scenario(tmp_path)
    for label in ("synthetic-pan", "carphone"):
        assert fingerprint(sc, "SoftCast", label) == _legacy_fingerprint(sc, "SoftCast", label)
    assert set(file_digests(sc)) == {"clip"}  # the only file source


def test_file_fingerprint_follows_the_content_not_the_mtime(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"a" * 5000)
    sc = _video_scenario(tmp_path)  # relative source: resolved against the scenario folder
    first = fingerprint(sc, "SoftCast", "clip")
    assert file_digests(sc)["clip"]["video_file"] == \
        f"5000:{hashlib.sha256(b'a' * 5000).hexdigest()}"
    os.utime(clip, ns=(1, 1))  # touched, same bytes
    assert fingerprint(sc, "SoftCast", "clip") == first
    clip.write_bytes(b"a" * 4999 + b"b")  # same size, other bytes
    assert fingerprint(sc, "SoftCast", "clip") != first
    # what a worker computes for a unit matches what the runner expects of it
    blob, units = sc.model_dump_json(), plan_units(sc)
    want = unit_fingerprints(sc, units, file_digests(sc))
    assert all(_fingerprint(blob, u.scheme, u.video) == want[u.unit_id] for u in units)
    clip.unlink()  # a missing file does not crash fingerprinting (preflight reports it)
    assert file_digests(sc)["clip"]["video_file"] == "missing"
    assert fingerprint(sc, "SoftCast", "clip") not in (first, None)


def _store_fake_units(sc, out):
    """Store every planned unit as if run (no scheme runs), with its fingerprint."""
    store, pending = open_store(sc, out)
    want = unit_fingerprints(sc, pending, file_digests(sc))
    with store:
        for u in pending:
            store.add(dict(unit_id=u.unit_id, scheme=u.scheme, snr_db=u.snr_db, video=u.video,
                           trial=u.trial, seed=0, stop_reason="trial", wall_s=0.0, failed=0,
                           params=want[u.unit_id], version=__version__))
    return pending


def test_changed_video_file_refused_on_resume_naming_the_video(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"first content")
    out = tmp_path / "r"
    units = _store_fake_units(_video_scenario(tmp_path), out)
    assert len(units) == 3
    store, pending = open_store(_video_scenario(tmp_path), out)  # same bytes: all finished
    store.close()
    assert pending == []
    clip.write_bytes(b"other content")
    with pytest.raises(UserError) as e:
        open_store(_video_scenario(tmp_path), out)
    msg = str(e.value)
    assert "1 stored units" in msg and "changed: videos[clip] (file content)" in msg
    assert "\n" not in msg
    # plotting reads no video file: units match the digests their run recorded
    clip.unlink()
    sc, rows = stored_results(out)
    assert len(rows) == 3


def test_changed_captions_file_is_named_too(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"video")
    caps = tmp_path / "caps.json"
    caps.write_text('{"clip": "a clip"}')
    out = tmp_path / "r"
    _store_fake_units(_video_scenario(tmp_path, captions="caps.json"), out)
    caps.write_text('{"clip": "another clip"}')
    with pytest.raises(UserError, match=r"changed: videos\[clip\] \(captions file content\)"):
        open_store(_video_scenario(tmp_path, captions="caps.json"), out)


# -- 2. one run per results folder -----------------------------------------------------
def _wait_for_lock(out, proc, timeout=120.0):
    lock = out / ".lock"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if lock.exists() and lock.read_text().strip() == str(proc.pid):
            return
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


@pytest.mark.slow
def test_second_run_on_a_folder_in_use_is_refused(tmp_path, write_yaml, capsys):
    path = write_yaml(slow_link_scenario("t-lock"))
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "lgvsc.sim.cli", "run", str(path), "--out",
                             str(out), "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for_lock(out, proc)
        assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
        line = _error_line(capsys)
        assert line == (f"lgvsc: error: {out}: in use by another lgvsc run (pid {proc.pid}); "
                        "wait for it to finish or use --out")
        deadline = time.time() + 60  # the holder opens its store right after the lock
        while not (out / STORE).exists() and time.time() < deadline:
            time.sleep(0.05)
        assert main(["plot", str(out)]) == 2  # plot writes outputs: refused too
        assert f"(pid {proc.pid})" in _error_line(capsys)
        assert proc.poll() is None, "the first run finished before the second was tried"
    finally:
        proc.kill()
        proc.wait()
    with folder_lock(out):  # kill -9 released it: the folder is free at once
        assert (out / ".lock").read_text().strip() == str(os.getpid())


# -- 3. damaged stores are one line ----------------------------------------------------
def _sql(out, *statements):
    with contextlib.closing(sqlite3.connect(out / STORE)) as db:
        for s in statements:
            db.execute(s)
        db.commit()


def _overwrite_middle(out):
    data = bytearray((out / STORE).read_bytes())
    assert not (out / f"{STORE}-wal").exists() and len(data) >= 3 * 4096
    rng = random.Random(5)
    for i in range(4096, len(data) - 4096):  # every page but the header page and the last
        data[i] = rng.randrange(256)
    (out / STORE).write_bytes(bytes(data))


CORRUPTIONS = {
    "damaged pages": (_overwrite_middle, ""),
    "bad metrics JSON": (lambda o: _sql(o, "UPDATE units SET metrics='{oops' WHERE rowid=2"),
                         "metrics is not JSON"),
    "metrics not an object": (lambda o: _sql(o, "UPDATE units SET metrics='[1]'"),
                              "metrics is not a JSON object"),
    "text SNR": (lambda o: _sql(o, "UPDATE units SET snr_db='high' WHERE rowid=1"),
                 "snr_db is not a number ('high')"),
    "no params, no scenario": (lambda o: _sql(o, "UPDATE units SET params=NULL",
                                              "DELETE FROM meta WHERE key='scenario'"),
                               "no scenario stored",
                               "units without parameters and no readable scenario"),
    "garbled scenario": (lambda o: _sql(o, "UPDATE meta SET value='{\"na' WHERE key='scenario'"),
                         "the stored scenario is not JSON"),
    "scenario not an object": (lambda o: _sql(o, "UPDATE meta SET value='3' WHERE key='scenario'"),
                               "the stored scenario is not a JSON object"),
    "not sqlite": (lambda o: (o / STORE).write_text("these are not the results you want\n" * 9),
                   "file is not a database"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_damaged_store_is_one_line_for_plot_and_run(folder, write_yaml, capsys, name):
    damage, reason, *run_reason = CORRUPTIONS[name]
    damage(folder)
    assert main(["plot", str(folder)]) == 2
    line = _error_line(capsys)
    assert f"{folder / STORE}: not a usable results store (" in line and reason in line
    assert "changed:" not in line
    assert main(["run", str(write_yaml(small_link_scenario())), "--out", str(folder),
                 "--no-progress"]) == 2
    line = _error_line(capsys)
    assert f"{folder / STORE}: not a usable results store (" in line and "changed:" not in line
    assert (run_reason or [reason])[0] in line


def test_missing_scenario_in_store_is_one_line(folder, capsys):
    _sql(folder, "DELETE FROM meta WHERE key='scenario'")
    assert main(["plot", str(folder)]) == 2
    assert "not a usable results store (no scenario stored)" in _error_line(capsys)


# -- 4. every output is written atomically --------------------------------------------
def test_atomic_write_is_all_or_nothing(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("new, half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["x.txt"]
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["x.txt"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


# A preloaded `lgvsc plot` server: each line on stdin forks a child that runs
# `lgvsc plot <folder>` (main(["plot", folder])) and reports its pid, then its exit
# status, so the test can SIGKILL real plot processes at any moment without paying
# the start-up (torch, matplotlib, the schemes' imports: ~10 s here) per kill. The
# server only reads the store (no lock, no output) to warm the imports up.
PLOT_SERVER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot
    from lgvsc.sim.cli import main
    from lgvsc.sim.runner import stored_results
    from lgvsc.sim.summary import scheme_objects
    scheme_objects(stored_results(Path(sys.argv[1]))[0])
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os._exit(main(["plot", sys.argv[1]]))
        print(pid, flush=True)
        print(os.waitpid(pid, 0)[1], flush=True)
""")


def _check_outputs(out):
    plots = out / "plots"
    for p in plots.iterdir():
        if p.name.startswith("."):
            assert p.name.startswith(TMP_PREFIX)  # a killed writer's temp, hidden
            continue
        assert p.suffix in (".png", ".pdf"), p
        data = p.read_bytes()
        if p.suffix == ".pdf":
            assert data.rstrip().endswith(b"%%EOF"), f"{p} is cut short"
        else:
            assert data.endswith(PNG_END), f"{p} is cut short"
    visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert visible <= {STORE, "summary.csv", "timings.csv", "plots", "report.html"}, visible
    assert (out / "summary.csv").read_text().startswith("scheme,")
    if (out / "report.html").exists():
        assert (out / "report.html").read_text().endswith("</html>\n"), "report.html cut short"


@pytest.mark.slow
def test_plot_killed_at_random_moments_never_leaves_a_partial_output(folder):
    (folder / "plots" / f"{TMP_PREFIX}stale.tmp").write_bytes(b"left by a killed run")
    server = subprocess.Popen([sys.executable, "-c", PLOT_SERVER, str(folder)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def plot(delay=None):
        """One `lgvsc plot`, SIGKILLed after ``delay`` s; returns (status, seconds)."""
        server.stdin.write("go\n")
        server.stdin.flush()
        pid, t0 = int(server.stdout.readline()), time.perf_counter()
        if delay is not None:
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return int(server.stdout.readline()), time.perf_counter() - t0

    try:
        status, _ = plot()  # also cleans the planted stale temp
        assert status == 0
        assert not [p for p in (folder / "plots").iterdir() if p.name.startswith(TMP_PREFIX)]
        status, full = plot()  # a warm run's length: the kills are drawn within it
        assert status == 0
        rng = random.Random(2024)
        killed = tries = 0
        # draws that land after a (fast) plot finished kill nothing: draw until 10 kills
        # landed mid-run, and fail if the kills stopped landing at all
        while killed < 10 and tries < 40:
            status, _ = plot(rng.uniform(0.0, 0.9 * full))
            killed += os.WIFSIGNALED(status)
            tries += 1
            _check_outputs(folder)
        assert killed >= 10, f"only {killed} of {tries} kills landed while it was writing"
        assert plot()[0] == 0
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    _check_outputs(folder)
    left = [p for p in folder.rglob(f"{TMP_PREFIX}*")]
    assert left == []  # stale temps are cleaned by the next finalize


# -- 5. never through a symbolic link out of the folder -----------------------------
@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    (d / "keep.txt").write_text("not lgvsc's")
    return d


def _untouched(outside):
    assert sorted(os.listdir(outside)) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "not lgvsc's"


def test_plots_link_is_refused_or_unlinked_under_fresh(folder, outside, write_yaml, capsys):
    shutil.rmtree(folder / "plots")
    (folder / "plots").symlink_to(outside, target_is_directory=True)
    want = (f"lgvsc: error: {folder}/plots is a symbolic link; lgvsc writes only inside the "
            "results folder: remove it")
    assert main(["plot", str(folder)]) == 2
    assert _error_line(capsys) == want
    path = write_yaml(small_link_scenario())
    assert main(["run", str(path), "--out", str(folder), "--no-progress"]) == 2
    assert _error_line(capsys) == want
    _untouched(outside)
    assert main(["run", str(path), "--out", str(folder), "--no-progress", "--fresh"]) == 0
    assert not (folder / "plots").is_symlink() and (folder / "plots" / "ber.pdf").is_file()
    _untouched(outside)


@pytest.mark.parametrize("name", [STORE, f"{STORE}-wal", ".lock"])
def test_store_and_lock_links_are_refused(folder, outside, write_yaml, capsys, name):
    target = outside / "planted"
    if name == STORE:
        (folder / STORE).replace(target)
    (folder / name).unlink(missing_ok=True)
    (folder / name).symlink_to(target)
    want = f"{folder / name} is a symbolic link; lgvsc writes only inside the results folder"
    assert main(["plot", str(folder)]) == 2
    assert want in _error_line(capsys)
    assert main(["run", str(write_yaml(small_link_scenario())), "--out", str(folder),
                 "--no-progress", "--fresh"]) == 2
    assert want in _error_line(capsys)
    assert sorted(os.listdir(outside)) == (["keep.txt", "planted"] if name == STORE
                                           else ["keep.txt"])


def test_output_file_links_are_replaced_not_followed(folder, outside):
    for rel in ("summary.csv", "timings.csv", "plots/ber.png", "plots/bler.pdf"):
        (folder / rel).unlink()
        (folder / rel).symlink_to(outside / "keep.txt")
    finalize(folder)
    for rel in ("summary.csv", "timings.csv", "plots/ber.png", "plots/bler.pdf"):
        assert (folder / rel).is_file() and not (folder / rel).is_symlink()
    _untouched(outside)


# -- 6. --out that cannot be a results folder --------------------------------------------
def test_out_that_is_a_file_or_under_a_file(tmp_path, write_yaml, capsys):
    path = write_yaml(small_link_scenario())
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["run", str(path), "--out", str(afile), "--no-progress"]) == 2
    assert _error_line(capsys) == (f"lgvsc: error: {afile}: exists and is not a folder "
                                   "(--out takes a results folder)")
    assert main(["run", str(path), "--out", str(afile / "sub"), "--no-progress"]) == 2
    assert _error_line(capsys) == (f"lgvsc: error: {afile / 'sub'}: cannot create the results "
                                   f"folder ({afile} is a file)")
    assert afile.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path, write_yaml, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        path = write_yaml(small_link_scenario())
        assert main(["run", str(path), "--out", str(ro / "r"), "--no-progress"]) == 2
        line = _error_line(capsys)
        assert f"{ro / 'r'}: cannot create the results folder (" in line
        assert main(["run", str(path), "--out", str(ro), "--no-progress"]) == 2
        assert f"{ro}: cannot write into this folder" in _error_line(capsys)
    finally:
        ro.chmod(0o755)


# -- 7. --fresh deletes only once the scenario is known to run --------------------------
def test_fresh_with_failing_preflight_keeps_every_unit(folder, write_yaml, capsys, monkeypatch):
    import lgvsc.sim.preflight

    before = _unit_rows(folder)
    summary = (folder / "summary.csv").read_bytes()

    def fails(sc):
        raise UserError("video 'x.mp4': file not found (x.mp4)")

    monkeypatch.setattr(lgvsc.sim.preflight, "preflight", fails)
    changed = write_yaml(small_link_scenario(seed=12))  # every stored unit is stale
    assert main(["run", str(changed), "--out", str(folder), "--fresh", "--no-progress"]) == 2
    assert _error_line(capsys) == "lgvsc: error: video 'x.mp4': file not found (x.mp4)"
    assert _unit_rows(folder) == before
    assert (folder / "summary.csv").read_bytes() == summary
    assert (folder / "plots" / "ber.png").is_file()
    fresh = folder.parent / "never-made"
    assert main(["run", str(changed), "--out", str(fresh), "--no-progress"]) == 2
    assert not fresh.exists()  # nothing is created before preflight passes


def test_preflight_warnings_are_printed(folder, write_yaml, capsys, monkeypatch):
    import lgvsc.sim.preflight

    monkeypatch.setattr(lgvsc.sim.preflight, "preflight", lambda sc: ["clip.mp4 is short"])
    path = write_yaml(small_link_scenario())
    assert main(["run", str(path), "--out", str(folder), "--no-progress"]) == 0
    assert "lgvsc: warning: clip.mp4 is short\n" in capsys.readouterr().err


# -- 8. reordering schemes is not a parameter change -------------------------------------
def test_reordered_schemes_reuse_every_unit(folder, write_yaml, capsys):
    before = _unit_rows(folder)
    swapped = small_link_scenario()
    swapped["schemes"] = swapped["schemes"][::-1]
    assert main(["run", str(write_yaml(swapped)), "--out", str(folder), "--no-progress"]) == 0
    assert _unit_rows(folder) == before  # nothing recomputed, nothing refused
    head = [r.split(",")[0] for r in (folder / "summary.csv").read_text().splitlines()[1:]]
    assert head == ["LDPC", "LDPC", "QPSK uncoded", "QPSK uncoded"]  # the scenario's order


# -- 9. summary.csv is reproducible byte for byte; timings apart -----------------------
def test_summary_is_byte_identical_across_runs_and_timings_apart(finished, tmp_path):
    again = run(validate(small_link_scenario()), tmp_path / "again", progress=False)
    assert (again / "summary.csv").read_bytes() == (finished / "summary.csv").read_bytes()
    head = (finished / "summary.csv").read_text().splitlines()[0].split(",")
    assert "wall_s" not in head
    timings = (again / "timings.csv").read_text().splitlines()
    assert timings[0] == "scheme,snr_db,units,wall_s"
    keys = [tuple(r.split(",")[:2]) for r in timings[1:]]
    rows = (again / "summary.csv").read_text().splitlines()[1:]
    assert keys == [tuple(r.split(",")[:1]) + (r.split(",")[3],) for r in rows]
    assert all(float(r.split(",")[3]) > 0 for r in timings[1:])
