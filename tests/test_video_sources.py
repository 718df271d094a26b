import json

import numpy as np
import pytest

from lgvsc.sim.errors import UserError
from lgvsc.sim.video import VideoSpec, load_video


def test_builtin_clip_fitted_and_strided():
    v = load_video(VideoSpec(source="builtin:bikes", frames=5, size=(64, 112), start=3, stride=2))
    assert v.frames.shape == (5, 64, 112, 3) and v.frames.dtype == np.uint8
    assert v.name == "bikes" and v.fps == pytest.approx(25.0)
    full = load_video(VideoSpec(source="builtin:bikes", frames=12, size=(64, 112)))
    np.testing.assert_array_equal(v.frames, full.frames[3::2])


def test_synthetic_source_carries_ground_truth():
    v = load_video(VideoSpec(source="synthetic:cuts", frames=40, size=(64, 64)), seed=5)
    assert v.frames.shape == (40, 64, 64, 3)
    assert len(v.captions) == len(v.boundaries) + 1 >= 2
    with pytest.raises(UserError, match="synthetic preset 'nope'"):
        load_video(VideoSpec(source="synthetic:nope", frames=8))


def test_file_source_with_sidecar_captions(tmp_path):
    frames = load_video(VideoSpec(source="synthetic:static", frames=6, size=(32, 48))).frames
    path = tmp_path / "clip.mp4"
    import av

    with av.open(str(path), "w") as out:  # a real file, written by PyAV
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 48, 32, "yuv420p"
        for f in frames:
            out.mux(st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(st.encode(None))
    (tmp_path / "caps.json").write_text(json.dumps({"clip.mp4": "a test clip"}))
    (tmp_path / "caps.csv").write_text("videoid,name\nclip,another caption\n")
    v = load_video(VideoSpec(source="clip.mp4", captions="caps.json"), base_dir=tmp_path)
    assert v.frames.shape == (6, 32, 48, 3) and v.captions == ("a test clip",)
    assert load_video(VideoSpec(source="clip.mp4", captions="caps.csv"),
                      base_dir=tmp_path).captions == ("another caption",)


@pytest.mark.parametrize("spec,match", [
    (dict(source="builtin:foreman"), "valid: bikes, bigbuckbunny, carphone"),
    (dict(source="missing.mp4"), "file not found"),
    (dict(source="builtin:carphone", frames=500), "has 120 frames: only 120 from start=0"),
    (dict(source="builtin:carphone", size=(288, 352), fit="crop"), "smaller than size"),
])
def test_bad_sources_are_user_errors(tmp_path, spec, match):
    with pytest.raises(UserError, match=match):
        load_video(VideoSpec(**spec), base_dir=tmp_path)


def test_size_must_be_even():
    with pytest.raises(ValueError, match="even"):
        VideoSpec(source="builtin:bikes", size=(63, 64))


# ------------------------------------------------- builtin clips' per-shot captions

BIKES_SHOTS = (0, 30, 76, 137, 187, 242)  # hard cuts, checked by eye (tests/test_keyframes.py)


def test_builtin_caption_table_matches_the_clips():
    import av

    from lgvsc.sim.video import BUILTIN_FILES, builtin_path, builtin_shots

    counts = {"bikes": 6, "bigbuckbunny": 1, "carphone": 1}
    assert set(counts) == set(BUILTIN_FILES)
    for name, n in counts.items():
        total, shots = builtin_shots(name)
        with av.open(str(builtin_path(name))) as c:  # container metadata, nothing decoded
            assert c.streams.video[0].frames == total
        assert len(shots) == n and shots[0][0] == 0
        assert all(8 <= len(cap.split()) <= 20 for _, cap in shots)
        assert len({cap for _, cap in shots}) == n
    assert tuple(s for s, _ in builtin_shots("bikes")[1]) == BIKES_SHOTS


def test_builtin_captions_are_package_data():
    """A non-editable install ships the JSON (setup.cfg's package_data covers it)."""
    import configparser
    from fnmatch import fnmatch
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["lgvsc.sim"].replace(",", "\n")
                .split() if p.strip()]
    for f in ("data/builtin_captions.json", "data/table1_h26x_ldpc.csv"):
        assert (root / "sim" / f).exists() and any(fnmatch(f, p) for p in patterns), f


@pytest.mark.parametrize("name", ["bigbuckbunny", "carphone"])
def test_single_shot_builtins_get_one_caption(name):
    from lgvsc.sim.video import builtin_shots

    v = load_video(VideoSpec(source=f"builtin:{name}", frames=3, start=5, size=(32, 48)))
    assert v.captions == (builtin_shots(name)[1][0][1],) and v.boundaries == ()


def _cut_strength(frames, b):
    """Mean absolute difference across frame b-1 -> b, relative to the clip's median step."""
    d = np.abs(np.diff(np.asarray(frames).astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    return d[b - 1] / np.median(d)


def test_bikes_default_captions_follow_the_selected_frames():
    from lgvsc.semantic.captioners import GivenCaption
    from lgvsc.sim.video import builtin_shots

    caps = [c for _, c in builtin_shots("bikes")[1]]
    v = load_video(VideoSpec(source="builtin:bikes", frames=64, size=(34, 80)))
    assert v.captions == tuple(caps[:2]) and v.boundaries == (30,)
    assert _cut_strength(v.frames, 30) > 5
    # start/stride: source frame s -> clip index ceil((s - start) / stride)
    v = load_video(VideoSpec(source="builtin:bikes", start=100, stride=2, frames=45,
                             size=(34, 80)))  # source frames 100, 102, ..., 188
    assert v.captions == tuple(caps[2:5]) and v.boundaries == (19, 44)
    assert all(_cut_strength(v.frames, b) > 5 for b in v.boundaries)
    given = GivenCaption(v.captions, v.boundaries)  # what the LGVSC transmitter sends
    assert given.caption(None, 0, 19) == caps[2]
    assert given.caption(None, 19, 44) == caps[3]
    assert given.caption(None, 40, 45) == f"{caps[3]}; then {caps[4]}"


def test_shots_outside_the_selection_are_dropped():
    from lgvsc.sim.video import builtin_shots, map_shots

    shots = builtin_shots("bikes")[1]
    caps = [c for _, c in shots]
    v = load_video(VideoSpec(source="builtin:bikes", start=243, size=(34, 80)))
    assert len(v.frames) == 7 and v.captions == (caps[5],) and v.boundaries == ()
    assert map_shots(shots, 0, 1, 250) == (tuple(caps), BIKES_SHOTS[1:])
    assert map_shots(shots, 0, 1, 30) == ((caps[0],), ())
    assert map_shots(shots, 29, 1, 2) == (tuple(caps[:2]), (1,))
    assert map_shots(shots, 140, 1, 40) == ((caps[3],), ())
    # every 16th frame: 0, 16, ..., 240 -- the last shot (242-249) has no frame
    assert map_shots(shots, 0, 16, 16) == (tuple(caps[:5]), (2, 5, 9, 12))
    assert map_shots(shots, 0, 5, 50) == (tuple(caps), (6, 16, 28, 38, 49))


def test_user_caption_overrides_builtin_shots(tmp_path):
    spec = dict(source="builtin:bikes", frames=40, size=(34, 80))
    v = load_video(VideoSpec(**spec, caption="my own caption"))
    assert v.captions == ("my own caption",) and v.boundaries == ()
    assert load_video(VideoSpec(**spec, caption="")).captions == ()
    (tmp_path / "caps.json").write_text(json.dumps({"bikes": "from a sidecar"}))
    v = load_video(VideoSpec(**spec, captions="caps.json"), base_dir=tmp_path)
    assert v.captions == ("from a sidecar",) and v.boundaries == ()
