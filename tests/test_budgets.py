"""Every scheme with a target_cbr spends [0.97, 1.00] x its budget, or refuses in one line."""

import re

import numpy as np
import pytest

from lgvsc.link.cbr import BUDGET_FLOOR, BudgetError
from lgvsc.link.channels import AWGN
from lgvsc.sim.cli import main
from lgvsc.sim.schemes import SCHEMES
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.video import VideoSpec, load_video

SCHEMES_AT = {
    "softcast": {"type": "softcast"},
    "codec-ldpc": {"type": "codec-ldpc", "codec": "h264", "gop": 8, "rate": 0.75,
                   "modulation": "qam16"},
    "lgvsc SKIM": {"type": "lgvsc", "preset": "skim-sfa", "keyframes": 3},
    "lgvsc SKEM": {"type": "lgvsc", "preset": "skem-dsa", "keyframes": 3},
    "keyframe-jscc": {"type": "keyframe-jscc", "codec": {"type": "softcast-image"}, "every": 4},
}


@pytest.fixture(scope="module")
def clip():
    # 48 frames with two ground-truth shots and their captions
    return load_video(VideoSpec(source="synthetic:cuts", frames=48, size=[64, 96]), ".", 0)


def _scheme(entry, target):
    cls = SCHEMES.get(entry["type"])
    return cls(cls.Config.model_validate({"name": "S", **entry, "target_cbr": target}),
               RunContext())


def _spend(clip, entry, target):
    import torch

    s = _scheme(entry, target)
    budget = s.target_uses(clip)
    tx = s.transmit(clip, AWGN(), 10.0, torch.Generator().manual_seed(1))
    np.asarray(tx.frames)  # a streaming receiver accounts as its frames are read
    assert BUDGET_FLOOR * budget <= tx.channel_uses <= budget, (tx.channel_uses, budget)


@pytest.mark.parametrize("name", list(SCHEMES_AT))
def test_a_comfortable_budget_lands_without_refusal(clip, name):
    _spend(clip, SCHEMES_AT[name], 2e-2)


@pytest.mark.parametrize("name", list(SCHEMES_AT))
@pytest.mark.parametrize("target", [3e-3, 8e-3, 2e-2])
def test_budget_is_spent_exactly_or_refused_with_what_would_fit(clip, name, target):
    try:
        _spend(clip, SCHEMES_AT[name], target)
    except BudgetError as e:  # one line saying what would fit, and that really fits
        msg = str(e)
        assert "\n" not in msg
        m = re.search(r"target_cbr (>=|<=|>) ([0-9.]+(?:e[-+]?[0-9]+)?)", msg)
        assert m, msg
        fits = float(m.group(2)) * (1.02 if m.group(1) != "<=" else 0.98)
        _spend(clip, SCHEMES_AT[name], fits)


def test_captions_that_eat_the_budget_are_refused(clip):
    import torch

    s = _scheme(SCHEMES_AT["lgvsc SKEM"], 2e-4)  # 88 channel uses: less than the captions
    with pytest.raises(BudgetError, match=r"captions \(\d+ uses\) and side info \(\d+\) alone "
                                          r"take \d+.*target_cbr > [0-9.e-]+ is needed"):
        s.transmit(clip, AWGN(), 10.0, torch.Generator().manual_seed(1))


def test_keyframe_jscc_target_is_the_whole_clip(clip):
    import torch

    s = _scheme(SCHEMES_AT["keyframe-jscc"], 8e-3)
    f, h, w = clip.shape
    tx = s.transmit(clip, AWGN(), 10.0, torch.Generator().manual_seed(1))
    np.asarray(tx.frames)
    assert tx.extra["coded_frames"] == 12
    assert tx.channel_uses / (3 * h * w * f) == pytest.approx(8e-3, rel=0.03)
    tiny = _scheme({**SCHEMES_AT["keyframe-jscc"], "every": 1}, 1e-5)  # 8 uses for 48 frames
    with pytest.raises(BudgetError, match="48 coded frames get 0 channel uses|none per frame"):
        tiny.transmit(clip, AWGN(), 10.0, torch.Generator().manual_seed(1))


def test_a_budget_that_does_not_fit_stops_the_run_in_one_line(tmp_path, write_yaml, capsys):
    sc = {"name": "t-budget", "kind": "video", "seed": 1,
          "videos": [{"source": "synthetic:cuts", "frames": 48, "size": [64, 96]}],
          "channel": {"type": "awgn", "snr_db": [10]},
          "schemes": [{"name": "G", "type": "lgvsc", "preset": "skem-dsa", "keyframes": 3,
                       "target_cbr": 5e-4}],  # above preflight's floor, below the captions' need
          "metrics": ["psnr"]}
    assert main(["run", str(write_yaml(sc)), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scheme 'G', video 'synthetic-cuts'" in err
    assert "is needed" in err and "Traceback" not in err
