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
    (dict(source="builtin:carphone", frames=500), "only 120 frames"),
    (dict(source="builtin:carphone", size=(288, 352), fit="crop"), "smaller than size"),
])
def test_bad_sources_are_user_errors(tmp_path, spec, match):
    with pytest.raises(UserError, match=match):
        load_video(VideoSpec(**spec), base_dir=tmp_path)


def test_size_must_be_even():
    with pytest.raises(ValueError, match="even"):
        VideoSpec(source="builtin:bikes", size=(63, 64))
