import pytest
import torch

from lgvsc.link.bits import bits_to_bytes, bytes_to_bits
from lgvsc.link.cbr import cbr, channel_uses_for_cbr
from lgvsc.link.channels import CHANNELS, make_channel
from lgvsc.link.registry import Registry, UnknownComponentError
from lgvsc.sim.seeding import unit_seed


def test_registry_lists_valid_names():
    reg = Registry("widget")
    reg.register("b")(int)
    reg.register("a")(float)
    assert reg.get("a") is float and reg.names() == ["a", "b"]
    with pytest.raises(UnknownComponentError, match="unknown widget type 'c'; valid: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(str)
    with pytest.raises(UnknownComponentError, match="awgn, rayleigh, rician"):
        make_channel("fading")
    assert set(CHANNELS) == {"awgn", "rayleigh", "rician"}


def test_cbr_definition():
    # 3 x 144 x 176 x 24 = 1824768 values
    assert cbr(1824768, frames=24, height=144, width=176) == 1.0
    assert cbr(912, 24, 144, 176) == pytest.approx(912 / 1824768)
    assert channel_uses_for_cbr(6e-4, 24, 144, 176) == int(6e-4 * 1824768)
    with pytest.raises(ValueError, match="frames"):
        cbr(1, 0, 1, 1)


def test_unit_seed_is_stable_and_distinct():
    a = unit_seed(7, "LDPC", 2.0)
    assert a == unit_seed(7, "LDPC", 2)  # int and float SNR are the same unit
    assert len({a, unit_seed(8, "LDPC", 2.0), unit_seed(7, "LDPC", 2.5),
                unit_seed(7, "LDPc", 2.0), unit_seed(7, "LDPC", 2.0, "v", 0),
                unit_seed(7, "LDPC", 2.0, "", 1)}) == 6
    assert 0 <= a < 2**63


def test_bytes_bits_round_trip():
    data = "a caption – with UTF-8".encode()
    bits = bytes_to_bits(data)
    assert bits.dtype == torch.uint8 and bits.numel() == 8 * len(data)
    assert bits_to_bytes(bits) == data
    with pytest.raises(ValueError, match="multiple of 8"):
        bits_to_bytes(bits[:-1])
