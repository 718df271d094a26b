"""Scenarios that validate as YAML but cannot run: ``lgvsc validate`` and ``lgvsc run``
refuse them up front (preflight) with one line naming the field or file, exit 2, and
an existing results folder is left exactly as it was.

One row per case; the classes: nested component specs, real-tier model paths,
video sources, caption sidecars, and budgets a scheme cannot meet.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import yaml

from lgvsc.sim.cli import main

from conftest import small_link_scenario

CLIP = {"source": "synthetic:cuts", "frames": 8, "size": [64, 64]}
LG = {"name": "L", "type": "lgvsc", "preset": "skem-dsa", "target_cbr": 0.02}


def video_scenario(schemes=None, videos=None):
    return {"name": "t-bad", "kind": "video", "channel": {"type": "awgn", "snr_db": [6.0]},
            "videos": videos or [CLIP], "schemes": schemes or [LG]}


def lg(**over):
    return [{**LG, **over}]


def clip(**over):
    return [{**CLIP, **over}]


def sidecar(d, name: str):
    """A builtin clip with the caption sidecar ``name`` of the planted files ``d``."""
    return video_scenario(videos=clip(source="builtin:carphone", frames=4, captions=str(d / name)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Planted files: an undecodable .mp4, a directory, broken caption sidecars, an
    empty folder, a text file posing as a checkpoint, an odd-sized video."""
    d = tmp_path_factory.mktemp("files")
    (d / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "folder.mp4").mkdir()
    (d / "broken.json").write_text('{"clip": "a caption",')
    (d / "list.json").write_text('["a", "b"]')
    (d / "latin1.json").write_bytes('{"clip": "caf\xe9"}'.encode("latin-1"))
    (d / "nocols.csv").write_text("a,b\n1,2\n")
    (d / "empty").mkdir()
    (d / "ckpt.pth").write_text("not a checkpoint\n")
    import av

    with av.open(str(d / "odd.mkv"), "w") as c:  # ffv1 takes odd sizes; x264 4:2:0 does not
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 33, 31, "yuv444p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((31, 33, 3), 30 * i, np.uint8), "rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return d


H264 = {"name": "H", "type": "codec-ldpc", "codec": "h264", "qp": 30, "rate": 0.5}

# (id, scenario builder taking the files folder, text the one line must contain)
CASES = [
    # nested component specs
    ("scorer-type", lambda d: video_scenario(lg(scorer={"type": "clip-magic"})),
     "schemes[0].scorer.type: unknown scorer type 'clip-magic'"),
    ("scorer-key", lambda d: video_scenario(lg(scorer={"type": "classical", "slop": 2})),
     "schemes[0].scorer.slop: unknown key"),
    ("captioner-no-type", lambda d: video_scenario(lg(captioner={})),
     "schemes[0].captioner.type: missing required field"),
    ("captioner-not-mapping", lambda d: video_scenario(lg(captioner="given")),
     "schemes[0].captioner"),
    ("scorer-bool", lambda d: video_scenario(lg(scorer={"type": "classical", "slope": True})),
     "schemes[0].scorer.slope: expected float, not true"),
    ("side-info-key", lambda d: video_scenario(lg(side_info={"type": "grid", "gird": [4, 4]})),
     "schemes[0].side_info.gird: unknown key"),
    ("side-info-value", lambda d: video_scenario(lg(side_info={"type": "grid", "bits": 0})),
     "schemes[0].side_info"),
    ("world-model-type", lambda d: video_scenario(lg(world_model={"type": "sora"})),
     "schemes[0].world_model.type: unknown world_model type 'sora'"),
    ("world-model-key", lambda d: video_scenario(lg(world_model={"type": "interp", "fps": 3})),
     "schemes[0].world_model.fps: unknown key"),
    ("keyframe-codec-type", lambda d: video_scenario(lg(keyframe_codec={"type": "jpeg"})),
     "schemes[0].keyframe_codec.type: unknown keyframe_codec type 'jpeg'"),
    ("jscc-codec-key", lambda d: video_scenario([{"name": "J", "type": "keyframe-jscc",
                                                  "target_cbr": 0.05,
                                                  "codec": {"type": "softcast-image",
                                                            "chunk": 4}}]),
     "schemes[0].codec.chunk: unknown key"),
    ("text-only-world-model", lambda d: video_scenario([{"name": "T", "type": "text-only",
                                                         "world_model": {"type": "nope"}}]),
     "schemes[0].world_model.type: unknown world_model type 'nope'"),
    # real-tier model paths (layout checked, nothing loaded)
    ("vlm-path-missing", lambda d: video_scenario(lg(scorer={"type": "vlm",
                                                             "path": str(d / "no-such")})),
     "schemes[0].scorer.path"),
    ("vlm-path-empty", lambda d: video_scenario(lg(scorer={"type": "vlm",
                                                           "path": str(d / "empty")})),
     "schemes[0].scorer.path"),
    ("captioner-path-file", lambda d: video_scenario(lg(captioner={"type": "vlm",
                                                                   "path": str(d / "ckpt.pth")})),
     "schemes[0].captioner.path"),
    ("diffusers-path-empty", lambda d: video_scenario(lg(world_model={"type": "diffusers",
                                                                      "path": str(d / "empty")})),
     "schemes[0].world_model.path"),
    ("ntscc-text-checkpoint", lambda d: video_scenario(lg(keyframe_codec={
        "type": "ntscc", "checkpoint": str(d / "ckpt.pth")})),
     "schemes[0].keyframe_codec.checkpoint"),
    ("ntscc-missing-checkpoint", lambda d: video_scenario(lg(keyframe_codec={
        "type": "ntscc", "checkpoint": str(d / "none.pth")})),
     "schemes[0].keyframe_codec.checkpoint"),
    # video sources
    ("video-missing", lambda d: video_scenario(videos=[{"source": str(d / "missing.mp4")}]),
     "missing.mp4"),
    ("video-undecodable", lambda d: video_scenario(videos=[{"source": str(d / "junk.mp4")}]),
     "junk.mp4"),
    ("video-directory", lambda d: video_scenario(videos=[{"source": str(d / "folder.mp4")}]),
     "folder.mp4"),
    ("video-too-few-frames", lambda d: video_scenario(videos=[{"source": "builtin:carphone",
                                                               "frames": 100000}]),
     "100000 requested"),
    ("video-start-beyond", lambda d: video_scenario(videos=[{"source": "builtin:carphone",
                                                             "start": 100000}]),
     "start=100000"),
    ("video-crop-too-big", lambda d: video_scenario(videos=[{"source": "builtin:carphone",
                                                             "frames": 4, "size": [480, 640],
                                                             "fit": "crop"}]),
     "fit: cover or stretch"),
    ("video-odd-for-h264", lambda d: video_scenario([H264], [{"source": str(d / "odd.mkv")}]),
     "even frame size"),
    # caption sidecars
    ("captions-missing", lambda d: sidecar(d, "none.json"),
     "none.json"),
    ("captions-bad-json", lambda d: sidecar(d, "broken.json"),
     "broken.json: not valid JSON"),
    ("captions-not-object", lambda d: sidecar(d, "list.json"),
     "list.json"),
    ("captions-latin1", lambda d: sidecar(d, "latin1.json"),
     "latin1.json: captions file is not UTF-8"),
    ("captions-csv-columns", lambda d: sidecar(d, "nocols.csv"),
     "nocols.csv: CSV needs a video column"),
    # budgets a scheme cannot meet, and empty settings
    ("lgvsc-budget", lambda d: video_scenario(lg(target_cbr=1e-9)),
     "schemes[0].target_cbr: 1e-09 gives 0 channel uses"),
    ("lgvsc-budget-keyframe-cbr", lambda d: video_scenario(lg(target_cbr=1e-9,
                                                              keyframe_cbr=0.05)),
     "schemes[0].target_cbr"),
    ("softcast-budget", lambda d: video_scenario([{"name": "S", "type": "softcast",
                                                   "target_cbr": 1e-4}]),
     "schemes[0].target_cbr: 0.0001 leaves"),
    ("jscc-budget", lambda d: video_scenario([{"name": "J", "type": "keyframe-jscc",
                                               "target_cbr": 1e-7,
                                               "codec": {"type": "softcast-image"}}]),
     "schemes[0].target_cbr"),
    ("codec-empty-table", lambda d: video_scenario([{**H264, "table": []}]),
     "schemes[0].table"),
]


def _tree(path) -> dict:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A results folder with finished units (a tiny link sweep)."""
    d = tmp_path_factory.mktemp("existing")
    sc = small_link_scenario(monte_carlo={"batch_blocks": 10, "max_batches": 1,
                                          "target_block_errors": 5})
    (d / "sc.yaml").write_text(yaml.safe_dump(sc))
    assert main(["run", str(d / "sc.yaml"), "--out", str(d / "out"), "--no-progress"]) == 0
    return d / "out"


def _one_error_line(capsys, needle: str) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("lgvsc: warning:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    assert errors[0].startswith("lgvsc: error: ")
    assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_validate_refuses_with_one_line(case, files, tmp_path, capsys):
    _, build, needle = case
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(build(files), sort_keys=False))
    assert main(["validate", str(path)]) == 2
    line = _one_error_line(capsys, needle)
    assert str(path) in line  # the file is named too


@pytest.mark.parametrize("case", CASES[::3], ids=[c[0] for c in CASES[::3]])
def test_run_fresh_refuses_before_touching_results(case, files, existing, tmp_path, capsys):
    _, build, needle = case
    before = _tree(existing)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(build(files), sort_keys=False))
    assert main(["run", str(path), "--out", str(existing), "--fresh", "--no-progress"]) == 2
    _one_error_line(capsys, needle)
    assert _tree(existing) == before


def test_keyframes_above_the_clip_are_clamped_with_a_warning(tmp_path, capsys):
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(video_scenario(lg(preset="skim-sfa", keyframes=1000,
                                                     target_cbr=0.05))))
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert "keyframes 1000 > the 8 frames of video 'synthetic-cuts'; clamped to 8" in err


def test_good_real_tier_specs_pass_without_weights(tmp_path, capsys):
    """The embedded defaults of every nested spec pass preflight."""
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(video_scenario(lg(side_info={"type": "grid"}))))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    assert "ok (video scenario" in capsys.readouterr().out


def test_a_refused_model_path_from_the_environment_is_not_echoed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LGVSC_TEST_MODEL", str(tmp_path / "secret-model-dir"))
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(video_scenario(lg(scorer={"type": "vlm",
                                                             "path": "${LGVSC_TEST_MODEL}"}))))
    assert main(["validate", str(path)]) == 2
    line = _one_error_line(capsys, "schemes[0].scorer.path")
    assert "${LGVSC_TEST_MODEL}" in line and "secret-model-dir" not in line
