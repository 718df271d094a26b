import numpy as np
import pytest

from lgvsc.sim.synthetic import PRESETS, render_synthetic

# The generator itself checks a 2.0x margin; the tests assert at least 1.5x.
MARGIN = 1.5
SIZES = [(64, 128, 224), (32, 128, 128)]
SEEDS = [0, 1, 7]


def pair_mad(frames):
    """Mean |frame[i+1] - frame[i]| over pixels and channels, shape [F-1]."""
    f = frames.astype(np.int16)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


def test_presets_listed_easy_to_hard():
    assert PRESETS[:6] == ("static", "pan", "objects", "lighting", "cuts", "mixed")


@pytest.mark.parametrize("preset", PRESETS)
def test_deterministic_and_seed_dependent(preset):
    a = render_synthetic(preset, 24, 32, 48, seed=3)
    b = render_synthetic(preset, 24, 32, 48, seed=3)
    c = render_synthetic(preset, 24, 32, 48, seed=4)
    assert np.array_equal(a.frames, b.frames)
    assert (a.boundaries, a.captions, a.preset) == (b.boundaries, b.captions, preset)
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("preset", PRESETS)
def test_shape_dtype_segments_and_captions(preset):
    clip = render_synthetic(preset, 40, 48, 64, seed=2)
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (40, 48, 64, 3)
    assert len(clip.captions) == len(clip.boundaries) + 1
    assert all(isinstance(c, str) and " over " in c for c in clip.captions)
    assert all(a != b for a, b in zip(clip.captions, clip.captions[1:]))
    assert list(clip.boundaries) == sorted(set(clip.boundaries))
    lengths = np.diff([0, *clip.boundaries, 40])
    assert lengths.sum() == 40 and lengths.min() >= 6
    assert len(clip.boundaries) >= 1


def test_segment_counts_follow_the_presets():
    counts = {p: [len(render_synthetic(p, 64, 32, 32, s).boundaries) + 1 for s in SEEDS]
              for p in PRESETS}
    assert set(counts["static"]) == {2}
    assert set(counts["pan"]) <= {2, 3}
    assert min(counts["cuts"]) >= 4 and min(counts["mixed"]) >= 4


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("frames,height,width", SIZES)
def test_boundaries_are_exactly_the_big_changes(preset, frames, height, width):
    for seed in SEEDS:
        clip = render_synthetic(preset, frames, height, width, seed)
        d = pair_mad(clip.frames)
        at = np.zeros(len(d), bool)
        at[np.asarray(clip.boundaries) - 1] = True  # pair (b-1, b) is d[b-1]
        assert at.any() and (~at).any()
        assert d[at].min() >= MARGIN * d[~at].max(), (seed, d[at], d[~at].max())


def test_lengths_and_short_clips():
    for frames in (1, 5, 6, 11, 12, 13, 20):
        for preset in PRESETS:
            clip = render_synthetic(preset, frames, 16, 16, seed=frames)
            lengths = np.diff([0, *clip.boundaries, frames])
            assert lengths.sum() == frames and lengths.min() >= min(6, frames)
            assert len(clip.captions) == len(clip.boundaries) + 1
    one = render_synthetic("mixed", 1, 16, 20)
    assert one.frames.shape == (1, 16, 20, 3) and one.boundaries == ()
    assert len(one.captions) == 1


def test_objects_partly_outside_are_clipped():
    # 16x300: large shapes are capped to fit; small ones still bounce half out.
    for seed in range(4):
        clip = render_synthetic("objects", 30, 16, 300, seed)
        assert clip.frames.shape == (30, 16, 300, 3)


def test_shape_at_the_corner_is_clipped():
    from lgvsc.sim.synthetic import _Canvas, _Object, _paint

    cv = _Canvas.make(16, 16, 1.0)
    img = np.zeros((16, 16, 3), np.float32)
    square = _Object("square", "white", 64.0, False, (0.0, 0.0), (0.0, 0.0), 0)  # 8x8 px
    _paint(img, square, 0, cv)  # centred on the corner: only its 4x4 quarter is drawn
    assert (img[:4, :4] == 245).all() and img[4:].max() == 0 and img[:, 4:].max() == 0


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown synthetic preset 'x'; valid: static, pan"):
        render_synthetic("x", 8, 32, 32)


@pytest.mark.parametrize("args,name", [((0, 32, 32), "frames"), ((8, 15, 32), "height"),
                                       ((8, 32, 8), "width"), ((8, 32.5, 32), "height")])
def test_bad_sizes_name_the_parameter(args, name):
    with pytest.raises(ValueError, match=name):
        render_synthetic("static", *args)
