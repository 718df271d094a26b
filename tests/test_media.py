"""Saved frames and videos (``save:``), their index, their regeneration and the
Fig. 1 / temporal figures made from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lgvsc.sim import media as M
from lgvsc.sim import units as U
from lgvsc.sim.cli import main
from lgvsc.sim.errors import UserError
from lgvsc.sim.media_figures import fig1_tiles
from lgvsc.sim.preflight import PreflightError, preflight
from lgvsc.sim.runner import make_media, run, stored_results
from lgvsc.sim.scenario import validate
from lgvsc.sim.store import ResultsStore

F, H, W = 24, 48, 64
SCENARIO = {
    "name": "media-test", "kind": "video", "seed": 11,
    "videos": [{"source": "synthetic:objects", "frames": F, "size": [H, W], "seed": 2}],
    "channel": {"type": "awgn", "snr_db": [1.0, 8.0]},
    "schemes": [
        # 16-QAM rate 3/4 needs ~9.3 dB: every trial fails (concealed frames are saved)
        {"name": "h264 cliff", "type": "codec-ldpc", "codec": "h264", "qp": 30, "gop": 12,
         "modulation": "qam16", "rate": 0.75},
        {"name": "softcast", "type": "softcast", "target_cbr": 0.05},
        {"name": "skim", "type": "lgvsc", "preset": "skim-sfa", "target_cbr": 0.02,
         "keyframes": 3},
    ],
    "metrics": ["psnr", "ssim"],
    "monte_carlo": {"trials": 2},
    "save": {"frames": [1, "keyframes", -2], "videos": [8.0], "figure": {"frame": 5}},
    "executor": {"type": "local", "workers": 1},
}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("media") / "out"
    sc = validate(SCENARIO)
    run(sc, out, progress=False)
    return out, sc


def _received(sc, unit):
    """The unit's received frames, made again directly with the scheme (the seeded
    unit's generator), as an array."""
    blob = sc.model_dump_json()
    video = U._video(blob, unit.video)
    _, gen, channel = U._context(sc, unit)
    tx = U._scheme(blob, unit.scheme).transmit(video, channel, unit.snr_db, gen)
    return np.asarray(tx.frames), tx


def _decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as box:
        return np.stack([f.to_ndarray(format="rgb24") for f in box.decode(video=0)])


def test_saved_frames_are_the_received_frames(done):
    out, sc = done
    unit = U.Unit("softcast", 1.0, "synthetic-objects", 0)
    frames, _ = _received(sc, unit)
    for i in (1, 5, F - 2):
        img = M.read_png(out / M.frame_path(unit.video, unit.scheme, 1.0, 0, i))
        assert img.shape == (H, W, 3)
        np.testing.assert_array_equal(img, frames[i])
    # trial 1 saves nothing (save.trials defaults to [0]); no video at 1 dB
    assert not list((out / "media/synthetic-objects/softcast").glob("*_t1_*"))
    assert not (out / M.video_path(unit.video, unit.scheme, 1.0, 0)).exists()


def _yuv420(frames: np.ndarray) -> np.ndarray:
    import av

    return np.stack([av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
                     .to_ndarray(format="rgb24") for f in frames])


def _psnr(a, b) -> float:
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def test_videos_decode_with_the_clip_frames_and_size(done):
    out, sc = done
    unit = U.Unit("softcast", 8.0, "synthetic-objects", 0)
    frames, _ = _received(sc, unit)
    dec = _decode(out / M.video_path(unit.video, unit.scheme, 8.0, 0))
    assert dec.shape == frames.shape
    # the video shows what the receiver saw, not the original
    clip = np.asarray(U._video(sc.model_dump_json(), unit.video).frames)
    assert _psnr(dec, frames) > _psnr(dec, clip) + 3
    # at CRF 18 the encoder adds less than 4:2:0 itself takes from these tiny (48x64),
    # sharp-edged frames (measured: 28.7 dB for the 4:2:0 round trip alone, 37 dB for
    # the mp4 of the clean clip against that round trip, 34 dB for the noisy one)
    orig = _decode(out / M.original_video_path(unit.video))
    assert orig.shape == (F, H, W, 3)
    ref = _yuv420(clip)
    assert _psnr(orig, ref) > _psnr(ref, clip) + 5
    assert _psnr(dec, _yuv420(frames)) > _psnr(ref, clip) + 2


def test_keyframes_are_saved_for_the_scheme_that_sends_them(done):
    out, sc = done
    _, rows = stored_results(out)
    row = next(r for r in rows if r["scheme"] == "skim" and r["snr_db"] == 8.0
               and r["trial"] == 0)
    keys = row["extra"]["keyframes"]
    assert len(keys) == 3
    for k in keys:
        assert (out / M.frame_path("synthetic-objects", "skim", 8.0, 0, k)).is_file()
        assert (out / M.original_frame_path("synthetic-objects", k)).is_file()
    # softcast sends no keyframes: only the fixed choices (1, 5 the figure's, F-2)
    got = sorted(p.name for p in (out / "media/synthetic-objects/softcast").glob("8dB_t0_f*"))
    assert got == [f"8dB_t0_f{i:05d}.png" for i in (1, 5, F - 2)]


def test_index_lists_every_saved_file_and_failures(done):
    out, sc = done
    index = json.loads((out / M.INDEX_FILE).read_text())
    paths = {i["path"] for i in index["items"]}
    on_disk = {p.relative_to(out).as_posix() for p in (out / "media").rglob("*")
               if p.is_file() and p.name != "index.json"}
    assert paths == on_disk
    cliff = [i for i in index["items"] if i["scheme"] == "h264 cliff"]
    assert cliff and all(i["failed"] and "CRC" in i["failure"] for i in cliff)
    assert not any(i["failed"] for i in index["items"] if i["scheme"] == "softcast")


def test_media_stay_out_of_the_store(done):
    out, _ = done
    with ResultsStore(out / "results.sqlite") as store:
        rows = store.rows()
    assert rows and all(M.ROW_KEY not in r for r in rows)
    assert (out / "results.sqlite").stat().st_size < 2_000_000


def test_regenerated_media_are_byte_identical(done, tmp_path):
    import shutil

    out, _ = done
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {p.relative_to(copy): p.read_bytes() for p in (copy / "media").rglob("*")
              if p.is_file() and p.name != "index.json"}
    shutil.rmtree(copy / "media")
    written = make_media(copy, progress=False)
    after = {p.relative_to(copy): p.read_bytes() for p in (copy / "media").rglob("*")
             if p.is_file() and p.name != "index.json"}
    assert len(written) == len(before)
    assert after.keys() == before.keys()
    assert all(after[k] == before[k] for k in before)
    assert make_media(copy, progress=False) == []  # nothing missing: nothing runs


def test_regeneration_refuses_a_unit_that_no_longer_matches(done, tmp_path):
    import shutil
    import sqlite3

    out, _ = done
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    db = sqlite3.connect(copy / "results.sqlite")
    uid = "softcast|8.0|synthetic-objects|0"
    m = json.loads(db.execute("SELECT metrics FROM units WHERE unit_id=?", (uid,)).fetchone()[0])
    m["psnr"] += 1.0
    db.execute("UPDATE units SET metrics=? WHERE unit_id=?", (json.dumps(m), uid))
    db.commit()
    db.close()
    (copy / M.video_path("synthetic-objects", "softcast", 8.0, 0)).unlink()
    with pytest.raises(UserError, match="re-ran to another result .*psnr"):
        make_media(copy, progress=False)


def test_fig1_tiles_are_the_saved_frames(done):
    out, sc = done
    _, rows = stored_results(out)
    snrs, grid = fig1_tiles(out, sc, rows, "synthetic-objects")
    assert snrs == [1.0, 8.0]
    assert [t.title for t in grid[0]] == ["original", "h264 cliff", "softcast", "skim"]
    for snr, cells in zip(snrs, grid):
        assert cells[0].path == M.original_frame_path("synthetic-objects", 5)
        for t in cells[1:]:
            assert t.path == M.frame_path("synthetic-objects", t.title, snr, 0, 5)
            assert (out / t.path).is_file()
        assert cells[1].failed and "FAILED" in cells[1].caption
        assert not cells[2].failed and "PSNR" in cells[2].caption
    frames, _ = _received(sc, U.Unit("skim", 8.0, "synthetic-objects", 0))
    np.testing.assert_array_equal(M.read_png(out / grid[1][3].path), frames[5])
    assert (out / "plots/fig1_synthetic-objects.png").is_file()
    for snr in ("1dB", "8dB"):
        assert (out / f"plots/temporal_synthetic-objects_{snr}.png").is_file()


def test_temporal_plot_marks_keyframes_and_failures(done, monkeypatch):
    from lgvsc.sim import media_figures as MF

    out, sc = done
    _, rows = stored_results(out)
    figs = []
    monkeypatch.setattr(MF, "save_figure", lambda fig, d, stem: figs.append(fig) or [])
    MF.temporal(out, sc, rows, "synthetic-objects", 8.0)
    ax = figs[0].axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "h264 cliff (every trial failed)" in labels
    keys = next(r for r in rows if r["scheme"] == "skim" and r["trial"] == 0)["extra"]["keyframes"]
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert [list(ln.get_xdata()) for ln in markers] == [keys]
    soft = [r for r in rows if r["scheme"] == "softcast" and r["snr_db"] == 8.0]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "softcast")
    np.testing.assert_allclose(line.get_ydata(), np.mean(
        [r["extra"]["frame_metrics"]["psnr"] for r in soft], axis=0))


def test_cli_media_on_a_folder_that_is_not_results(tmp_path, capsys):
    assert main(["media", str(tmp_path)]) == 2
    assert "not a results folder" in capsys.readouterr().err


@pytest.mark.parametrize("save, where", [
    ({"schemes": ["nope"]}, "save.schemes[0]: unknown scheme 'nope'"),
    ({"videos": [3.0]}, "save.videos[0]: 3 dB is not an SNR of the sweep"),
    ({"figure": {"snr_db": [2.0]}}, "save.figure.snr_db[0]: 2 dB"),
    ({"trials": [2]}, "save.trials[0]: trial 2 is not run"),
    ({"frames": ["first"]}, "save.frames[0]"),
])
def test_bad_save_fields_name_the_field(save, where):
    with pytest.raises(ValueError, match=where.replace("[", r"\[").replace("]", r"\]")):
        validate({**SCENARIO, "save": save})


def test_frames_outside_the_clip_are_refused_before_running():
    with pytest.raises(PreflightError, match=r"save.frames\[1\]: frame 24 is outside video"):
        preflight(validate({**SCENARIO, "save": {"frames": [0, F]}}))
    with pytest.raises(PreflightError, match="save.figure.frame: frame -25"):
        preflight(validate({**SCENARIO, "save": {"figure": {"frame": -F - 1}}}))


def test_link_scenarios_take_no_save():
    link = {"name": "l", "kind": "link", "channel": {"type": "awgn", "snr_db": [1.0]},
            "schemes": [{"name": "a", "type": "ldpc-qam", "k": 64, "rate": 0.5}],
            "save": {"videos": True}}
    with pytest.raises(ValueError, match="save: only video scenarios take save"):
        validate(link)


def test_save_is_no_unit_parameter():
    a = validate(SCENARIO)
    b = validate({**SCENARIO, "save": {"frames": [0], "videos": True}})
    assert U.fingerprint(a, "softcast", "synthetic-objects") == \
        U.fingerprint(b, "softcast", "synthetic-objects")


def test_slugs_are_file_names():
    assert M.slug("H.264+LDPC authors") == "H.264+LDPC_authors"
    assert M.slug("a/b\\c") == "a_b_c"
    assert M.slug("..") == "_"
