import numpy as np
import pytest
import torch

from lgvsc.link.cbr import BUDGET_FLOOR, BudgetError
from lgvsc.link.channels import AWGN, RayleighBlockFading
from lgvsc.link.digital import DigitalPipe
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
    plans = [codec.plan(f, budget) for f in frames]
    assert out.side_uses == sum(codec.digital.channel_uses(p.bits.size) for p in plans)
    assert out.side_bits == sum(p.bits.size for p in plans) == out.digital.bits.numel()
    for p in plans:  # every image spends its own budget, side info included
        assert BUDGET_FLOOR * budget <= p.channel_uses <= budget
    assert out.channel_uses == sum(p.channel_uses for p in plans)


@pytest.mark.parametrize("budget", [160, 256, 700, 2048, 9000])
def test_softcast_image_budget_exact_per_image(frames, budget):
    codec = make_keyframe_codec("softcast-image")
    out = _send(codec, frames, budget, 10)
    assert BUDGET_FLOOR * budget * len(frames) <= out.channel_uses <= budget * len(frames)
    for f in frames:
        assert BUDGET_FLOOR * budget <= codec.plan(f, budget).channel_uses <= budget


def test_softcast_image_budget_errors(frames):
    codec = make_keyframe_codec("softcast-image")
    with pytest.raises(BudgetError) as e:
        _send(codec, frames, 20, 10)
    msg = str(e.value)
    assert "\n" not in msg and "softcast-image" in msg and "128x128" in msg, msg
    need = int(msg.split("budget_uses >= ")[1].split(" ")[0])
    out = _send(codec, frames, need, 10)  # the suggestion works: one analog symbol at least
    assert out.analog_uses >= len(frames) * codec.analog.symbols_for(1)
    small = _send(codec, frames, 100, 10)  # below the header's cost: no metadata, not black
    assert small.side_bits == 0 and small.channel_uses == small.analog_uses == 300
    assert all(img.std() > 0 for img in small.images)
    with pytest.raises(BudgetError, match="sending every coefficient spends at most"):
        _send(codec, frames[:1, :8, :8].copy(), 10 ** 6, 10)


def test_softcast_image_constant_image_exact_and_corruption_safe(frames):
    flat = np.empty((2, 32, 48, 3), np.uint8)
    flat[:] = (12, 128, 250)
    codec = make_keyframe_codec("softcast-image")
    out = _send(codec, flat, 400, 40)
    assert np.abs(out.images.astype(int) - flat).max() <= 1
    bad = make_keyframe_codec("softcast-image", digital=DigitalPipe("qam64", "ldpc5g", 0.9))
    out = _send(bad, frames, 700, -5)
    assert out.images.shape == frames.shape and not bool(out.digital.crc_ok.all())


def test_softcast_image_psnr_monotone_no_cliff(frames):
    codec = make_keyframe_codec("softcast-image")
    budget = int(128 * 128 * 3 / 48)
    p = [PSNR()(frames, _send(codec, frames, budget, s).images) for s in (0, 2, 4, 6, 8, 10)]
    assert all(b > a for a, b in zip(p, p[1:])), p
    assert max(np.diff(p)) < 3.0 and p[0] > 17, p  # graceful from 0 dB on (measured 18.7)


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
    for snr in ("0", "10"):  # target_cbr is the clip's CBR, every: 3 included
        for scheme in ("SoftCast-image", "every 3"):
            assert BUDGET_FLOOR * 0.0208 <= float(rows[(scheme, snr)]["cbr"]) <= 0.0208


def test_bad_codec_in_scenario(write_yaml, capsys):
    from lgvsc.sim.cli import main

    path = write_yaml({"name": "x", "kind": "video", "videos": [{"source": "builtin:carphone"}],
                       "channel": {"type": "awgn", "snr_db": [1]},
                       "schemes": [{"name": "k", "type": "keyframe-jscc", "codec": {"type": "jpeg"},
                                    "target_cbr": 0.02}]})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "schemes[0].codec" in err and "softcast-image" in err
