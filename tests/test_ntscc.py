"""NTSCC keyframe codec: network, CBR accounting, checkpoints, training, CLI."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import compressai  # noqa: E402,F401  (make test installs it: a missing one must fail, not skip)

from lgvsc.link.analog import AnalogPipe, AnalogResult  # noqa: E402
from lgvsc.link.channels import AWGN  # noqa: E402
from lgvsc.link.code import LDPCDecoding  # noqa: E402
from lgvsc.link.digital import DigitalPipe  # noqa: E402
from lgvsc.semantic.keyframe_codecs import KEYFRAME_CODECS, make_keyframe_codec  # noqa: E402
from lgvsc.semantic.keyframe_codecs.ntscc import NTSCC  # noqa: E402
from lgvsc.semantic.keyframe_codecs.ntscc_arch import make_arch  # noqa: E402
from lgvsc.semantic.keyframe_codecs.ntscc_checkpoint import (  # noqa: E402
    PUBLIC_PREFIXES, model_state, save_checkpoint)
from lgvsc.semantic.keyframe_codecs.ntscc_model import NTSCCModel  # noqa: E402
from lgvsc.semantic.keyframe_codecs.ntscc_sideinfo import index_bits  # noqa: E402
from lgvsc.semantic.keyframe_codecs.ntscc_train import (  # noqa: E402
    StepConfig, main, make_optimizers, train_step)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _images(b=2, h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (b, -(-h // 8), -(-w // 8), 3))
    img = np.kron(base, np.ones((1, 8, 8, 1)))[:, :h, :w] + rng.integers(-20, 20, (b, h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _codec(**kw):
    kw.setdefault("digital", DigitalPipe("qpsk", "ldpc5g", 0.5, decoding=LDPCDecoding(iterations=5)))
    return NTSCC(arch="tiny", analog=AnalogPipe("zf"), **kw)


def _noiseless(codec, images, budget, snr=10.0):
    enc = codec.encode(images, budget, snr)
    rx = [AnalogResult(s.clone(), 0, 0, 0, 1.0) for s in enc.symbols]
    return enc, codec.decode(rx, enc.side_bits, enc.state, snr)


# (a) forward / backward ------------------------------------------------------
def test_forward_backward_finite_grads_and_no_global_rng():
    before = torch.random.get_rng_state()
    model = NTSCCModel(make_arch("tiny"), torch.Generator().manual_seed(3))
    assert torch.equal(before, torch.random.get_rng_state())
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = model(x, 5.0, 0.2, torch.Generator().manual_seed(1))
    assert out["x_hat"].shape == x.shape and out["x_ntc"].shape == x.shape
    assert out["bpp"] > 0 and 0 < out["cbr"] < 1
    (out["mse"] + out["mse_ntc"] + 0.01 * out["bpp"] + model.aux_loss()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.f_e.parameters())


def test_init_is_seeded():
    a = NTSCCModel(make_arch("tiny"), torch.Generator().manual_seed(5))
    b = NTSCCModel(make_arch("tiny"), torch.Generator().manual_seed(5))
    c = NTSCCModel(make_arch("tiny"), torch.Generator().manual_seed(6))
    sa, sb, sc = model_state(a), model_state(b), model_state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


# (b) shapes and CBR accounting -------------------------------------------------
@pytest.mark.parametrize("budget", [260, 420])
def test_transmit_shapes_and_channel_uses(budget):
    codec = _codec()
    images = _images()
    out = codec.transmit(images, budget, AWGN(), 8.0, torch.Generator().manual_seed(0))
    assert out.images.shape == images.shape and out.images.dtype == np.uint8
    b = images.shape[0]
    assert out.channel_uses <= budget * b
    assert out.channel_uses == out.analog_uses + out.side_uses
    enc = codec.encode(images, budget, 8.0)
    n_values = enc.state["tx"]["analog_values"]
    assert out.analog_uses == sum(codec.analog.symbols_for(n) for n in n_values)
    tokens = (64 // 16) ** 2
    assert out.side_bits == b * tokens * index_bits(len(codec.arch.rate_choices))
    assert out.side_uses == codec.digital.channel_uses(out.side_bits)
    assert all(s.dtype == torch.float32 and s.ndim == 1 for s in enc.symbols)


def test_budget_is_used_and_monotone():
    codec, images = _codec(), _images()
    small = codec.encode(images, 260, None).state["tx"]["analog_values"]
    large = codec.encode(images, 420, None).state["tx"]["analog_values"]
    assert all(a <= b for a, b in zip(small, large)) and sum(small) < sum(large)
    tokens, rmin = 16, codec.arch.rate_choices[0]
    assert min(small) > tokens * rmin  # eta > 0: some tokens got longer lengths


def test_max_eta_caps_the_rate():
    free = _codec().encode(_images(), 2000, None).state["tx"]
    capped = _codec(max_eta=0.05).encode(_images(), 2000, None).state["tx"]
    assert all(e <= 0.05 for e in capped["eta"])
    assert sum(capped["analog_values"]) < sum(free["analog_values"])


def test_budget_too_small_raises():
    with pytest.raises(ValueError, match="budget_uses"):
        _codec().encode(_images(), 60, 10.0)


def test_odd_size_and_corrupted_side_bits():
    codec = _codec()
    images = _images(1, 50, 70)
    enc = codec.encode(images, 600, 4.0)
    rx = [AnalogResult(s.clone(), 0, 0, 0, 1.0) for s in enc.symbols]
    flipped = 1 - enc.side_bits  # every index wrong: lengths disagree with the values
    out = codec.decode(rx, flipped, enc.state, 4.0)
    assert out.shape == images.shape and out.dtype == np.uint8


def test_side_info_variant_sends_z():
    codec = _codec(use_side_info=True)
    images = _images()
    out = codec.transmit(images, 700, AWGN(), 10.0, torch.Generator().manual_seed(0))
    assert out.images.shape == images.shape
    assert out.side_bits > 2 * 16 * index_bits(len(codec.arch.rate_choices)) + 2 * 32
    assert out.channel_uses <= 700 * 2


def test_registered():
    assert "ntscc" in KEYFRAME_CODECS
    codec = make_keyframe_codec("ntscc", arch="tiny")
    assert isinstance(codec, NTSCC)


def test_bad_settings():
    with pytest.raises(ValueError, match="width"):
        NTSCC(arch="tiny", width=10)
    with pytest.raises(ValueError, match="rate_choices"):
        NTSCC(arch="tiny", rate_choices=(8, 4))
    with pytest.raises(ValueError, match="arch"):
        NTSCC(arch="huge")
    with pytest.raises(ValueError, match="budget_uses"):
        _codec().encode(_images(), 0, 10.0)


# (c) checkpoint round trip ------------------------------------------------------
def test_checkpoint_round_trip_identical_outputs(tmp_path):
    codec = _codec(seed=4)
    path = tmp_path / "m.pt"
    save_checkpoint(path, codec.model)
    loaded = NTSCC.from_checkpoint(str(path), analog=codec.analog, digital=codec.digital)
    images = _images(seed=1)
    enc_a, out_a = _noiseless(codec, images, 400)
    enc_b, out_b = _noiseless(loaded, images, 400)
    assert all(torch.equal(a, b) for a, b in zip(enc_a.symbols, enc_b.symbols))
    assert torch.equal(enc_a.side_bits, enc_b.side_bits)
    np.testing.assert_array_equal(out_a, out_b)


def _as_public(state: dict) -> dict:
    """Our state dict renamed to the public NTSCC_JSAC22 layout (plus derived keys)."""
    back = {v: k for k, v in PUBLIC_PREFIXES.items()}
    out = {}
    for k, v in state.items():
        for ours, theirs in back.items():
            if k.startswith(ours):
                k = theirs + k[len(ours):]
        if k.startswith("entropy_bottleneck.matrices."):
            k = "entropy_bottleneck._matrix" + k.rsplit(".", 1)[1]
        out["module." + k] = v
    out["module.fe.rate_choice_tensor"] = torch.tensor(make_arch("tiny").rate_choices)
    out["module.ga.layers.0.blocks.1.attn_mask"] = torch.zeros(4, 16, 16)
    return out


def test_public_format_loads_with_key_mapping(tmp_path):
    codec = _codec(seed=2)
    path = tmp_path / "public.pth"
    torch.save(_as_public(model_state(codec.model)), path)
    loaded = NTSCC.from_checkpoint(str(path), arch="tiny", analog=codec.analog,
                                   digital=codec.digital)
    images = _images(seed=2)
    np.testing.assert_array_equal(_noiseless(codec, images, 400)[1],
                                  _noiseless(loaded, images, 400)[1])


# Fingerprint of the public NTSCC_JSAC22 model's state dict (config.py layout),
# taken from the reference code with its keys mapped by map_public_key and the
# derived buffers dropped: 380 tensors, 31,358,531 values.
PUBLIC_LAYOUT_SHA256 = "14a6689b7619299bf65adc22ecafe8d2b3c0fd98b00ca34cc70d295d77cc47e2"


def test_paper_arch_matches_public_layout():
    import hashlib

    with torch.device("meta"):
        model = NTSCCModel(make_arch("paper"))
    state = model_state(model)
    lines = sorted(f"{k}:{tuple(v.shape)}" for k, v in state.items())
    assert len(lines) == 380
    assert sum(v.numel() for v in state.values()) == 31_358_531
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == PUBLIC_LAYOUT_SHA256
    assert tuple(state["f_e.rate_adaption.weight"].shape) == (16, 256, 256)
    assert tuple(state["h_s.4.weight"].shape) == (384, 512, 3, 3)


# (f) bad checkpoints --------------------------------------------------------------
def test_bad_checkpoint_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match="nope.pt"):
        NTSCC.from_checkpoint(str(missing))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        NTSCC.from_checkpoint(str(junk))


def test_mismatched_keys_name_file_and_keys(tmp_path):
    state = model_state(NTSCCModel(make_arch("tiny")))
    del state["g_s.outconv.weight"]
    state["bogus.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        NTSCC.from_checkpoint(str(path), arch="tiny")
    msg = str(err.value)
    assert "bad.pth" in msg and "g_s.outconv.weight" in msg and "bogus.weight" in msg


def test_wrong_arch_shapes_and_rates(tmp_path):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, NTSCCModel(make_arch("tiny")))
    with pytest.raises(ValueError, match="tiny.pt.*shape"):
        NTSCC.from_checkpoint(str(path), hyper_channels=8)
    public = tmp_path / "rates.pth"
    torch.save(_as_public(model_state(NTSCCModel(make_arch("tiny")))), public)
    with pytest.raises(ValueError, match="rates.pth.*rate_choices"):
        NTSCC.from_checkpoint(str(public), arch="tiny", rate_choices=(4, 8, 12, 16, 24, 30))


def test_compressai_imported_lazily():
    """No ntscc*.py module imports compressai at module level."""
    import ast
    from pathlib import Path

    import lgvsc.semantic.keyframe_codecs as pkg

    files = sorted(Path(pkg.__file__).parent.glob("ntscc*.py"))
    assert len(files) >= 5
    for f in files:
        for node in ast.parse(f.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("compressai") for n in names), f


def test_missing_compressai_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "compressai", None)
    monkeypatch.setitem(sys.modules, "compressai.entropy_models", None)
    with pytest.raises(ImportError, match="pip install --no-deps compressai"):
        NTSCCModel(make_arch("tiny"))


# (d) training lowers the loss --------------------------------------------------------
def test_training_steps_lower_loss():
    model = NTSCCModel(make_arch("tiny"), torch.Generator().manual_seed(0))
    opt, aux_opt = make_optimizers(model, lr=2e-3, aux_lr=1e-3)
    x = torch.from_numpy(_images(2, seed=3)).permute(0, 3, 1, 2).float() / 255
    g = torch.Generator().manual_seed(0)
    losses = [train_step(model, x, opt, aux_opt, StepConfig(lmbda=0.003), 10.0, 0.2, g)["loss"]
              for _ in range(30)]
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


# (e) the training CLI ------------------------------------------------------------------
def test_training_cli_and_resume(tmp_path, capsys):
    from PIL import Image

    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    for i, img in enumerate(_images(4, 96, 96, seed=7)):
        Image.fromarray(img).save(data / f"{i}.png")
    args = ["--data", str(data), "--out", str(out), "--crop", "64", "--batch", "2",
            "--arch", "tiny", "--lr", "1e-3", "--log-every", "1", "--snr-range", "0", "10"]
    run = subprocess.run([sys.executable, "-m", "lgvsc.semantic.keyframe_codecs.ntscc_train",
                          *args, "--steps", "2", "--threads", "1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "step 2/2" in run.stdout
    first = torch.load(out / "last.pt", weights_only=False)
    assert first["step"] == 2 and "optimizer" in first and "aux_optimizer" in first
    assert main([*args, "--steps", "4", "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "resumed" in printed and "step 3/4" in printed and "step 4/4" in printed
    second = torch.load(out / "last.pt", weights_only=False)
    assert second["step"] == 4
    changed = [k for k in first["model"] if not torch.equal(first["model"][k], second["model"][k])]
    assert changed
    NTSCC.from_checkpoint(str(out / "last.pt"))  # a training checkpoint loads as a codec


def test_cli_rejects_bad_input(tmp_path, capsys):
    from PIL import Image

    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--arch", "tiny"])
    assert "data folder not found" in capsys.readouterr().err
    Image.fromarray(_images(1, 64, 64)[0]).save(tmp_path / "a.png")
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--resume", "--arch", "tiny"])
    assert "no checkpoint" in capsys.readouterr().err


def test_a_budget_ntscc_cannot_spend_is_refused_by_the_schemes_helper():
    from lgvsc.link.cbr import BudgetError
    from lgvsc.semantic.keyframe_codecs import transmit_exact

    codec, images = _codec(), _images()
    gen = torch.Generator().manual_seed(0)
    spent = transmit_exact(codec, images, 260, AWGN(), 8.0, gen)  # fits: spent exactly
    assert spent.channel_uses >= 0.97 * 260 * len(images)
    # every token already at its longest length: the rest of a large budget would be unspent
    with pytest.raises(BudgetError, match=r"spends \d+ of the 800 channel uses per image.*"
                                          r"at most \d+ per image would be spent"):
        transmit_exact(codec, images, 800, AWGN(), 8.0, gen)
    with pytest.raises(BudgetError, match="too small for NTSCC"):
        transmit_exact(codec, images, 60, AWGN(), 8.0, gen)
