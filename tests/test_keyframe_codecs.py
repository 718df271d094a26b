import numpy as np
import pytest
import torch

from lgvsc.link.channels import AWGN, RayleighBlockFading
from lgvsc.semantic.keyframe_codecs import KEYFRAME_CODECS, make_keyframe_codec
from lgvsc.sim.metrics import PSNR
from lgvsc.sim.runner import run
from lgvsc.sim.scenario import validate
from lgvsc.sim.video import VideoSpec, load_video


@pytest.fixture(scope="module")
def frames():
    return load_video(VideoSpec(source="builtin:bigbuckbunny", frames=3, stride=20,
                                size=(128, 128))).frames


def _send(codec, frames, budget, snr, channel=None, seed=0):
    return codec.transmit(frames, budget, channel or AWGN(), snr, torch.Generator().manual_seed(seed))


def test_shapes_and_cbr_accounting(frames):
    codec = make_keyframe_codec("softcast-image")
    budget = int(128 * 128 * 3 / 48)
    out = _send(codec, frames, budget, 10)
    assert out.images.shape == frames.shape and out.images.dtype == np.uint8
    assert out.channel_uses == out.analog_uses + out.side_uses
    assert out.channel_uses <= budget * len(frames)
    assert out.side_uses == codec.digital.channel_uses(out.side_bits)


def test_softcast_image_psnr_monotone_no_cliff(frames):
    codec = make_keyframe_codec("softcast-image")
    budget = int(128 * 128 * 3 / 48)
    p = [PSNR()(frames, _send(codec, frames, budget, s).images) for s in (0, 2, 4, 6, 8, 10)]
    assert all(b > a for a, b in zip(p, p[1:])), p
    assert max(np.diff(p)) < 3.0 and p[0] > 12, p  # graceful from 0 dB on


def test_fading_and_budget_scaling(frames):
    codec = make_keyframe_codec("softcast-image")
    small = PSNR()(frames, _send(codec, frames, 256, 10).images)
    large = PSNR()(frames, _send(codec, frames, 2048, 10).images)
    assert large > small
    faded = _send(codec, frames, 1024, 10, RayleighBlockFading(coherence=64))
    assert faded.images.shape == frames.shape


def test_unknown_codec_and_bad_settings():
    with pytest.raises(Exception, match="softcast-image"):
        make_keyframe_codec("jpeg")
    with pytest.raises(ValueError, match="chunks"):
        make_keyframe_codec("softcast-image", chunks=(0, 4))
    assert "softcast-image" in KEYFRAME_CODECS


def test_keyframe_jscc_scheme_entry_as_written(tmp_path):
    sc = validate({
        "name": "kj", "kind": "video", "seed": 1,
        "videos": [{"source": "builtin:carphone", "frames": 6, "size": [144, 176]}],
        "channel": {"type": "awgn", "snr_db": [0, 10]},
        "schemes": [{"name": "SoftCast-image", "type": "keyframe-jscc",
                     "codec": {"type": "softcast-image"}, "every": 1, "target_cbr": 0.0208},
                    {"name": "every 3", "type": "keyframe-jscc",
                     "codec": {"type": "softcast-image"}, "every": 3, "target_cbr": 0.0208}],
        "metrics": ["psnr"]})
    out = run(sc, tmp_path / "kj", progress=False)
    import csv

    rows = {(r["scheme"], r["snr_db"]): r for r in csv.DictReader(open(out / "summary.csv"))}
    assert float(rows[("SoftCast-image", "10")]["psnr"]) > float(rows[("SoftCast-image", "0")]["psnr"])
    for snr in ("0", "10"):
        assert float(rows[("SoftCast-image", snr)]["cbr"]) <= 0.0208
        every3 = float(rows[("every 3", snr)]["cbr"])
        assert every3 <= 0.0208 / 3 + 1e-9


def test_bad_codec_in_scenario(write_yaml, capsys):
    from lgvsc.sim.cli import main

    path = write_yaml({"name": "x", "kind": "video", "videos": [{"source": "builtin:carphone"}],
                       "channel": {"type": "awgn", "snr_db": [1]},
                       "schemes": [{"name": "k", "type": "keyframe-jscc", "codec": {"type": "jpeg"},
                                    "target_cbr": 0.02}]})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "schemes[0].codec" in err and "softcast-image" in err
