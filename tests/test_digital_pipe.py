import numpy as np
import pytest
import torch

from lgvsc.link import theory
from lgvsc.link.channels import AWGN, RayleighBlockFading, snr_db_to_no
from lgvsc.link.code import LDPCCode
from lgvsc.link.digital import BlockLink, DigitalPipe
from lgvsc.link.modem import Modem
from lgvsc.sim.stats import clopper_pearson


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("num_bits", [0, 1, 7, 100_000])
def test_payload_round_trip_at_high_snr(num_bits):
    pipe = DigitalPipe("qam16", rate=0.5)
    bits = torch.randint(0, 2, (num_bits,), generator=_gen(num_bits))
    res = pipe(bits, AWGN(), snr_db_to_no(20.0), _gen(1))
    assert res.bits.shape == (num_bits,) and res.bits.dtype == torch.uint8
    assert torch.equal(res.bits, bits.to(torch.uint8))
    assert bool(res.crc_ok.all()) and res.bit_errors == 0
    assert res.channel_uses == pipe.channel_uses(num_bits)
    if num_bits == 0:
        assert res.num_blocks == 0 and res.channel_uses == 0


def test_low_rate_long_payload_uses_base_graph_2_blocks():
    pipe = DigitalPipe("qpsk", rate=0.2)
    assert pipe.max_block == 3840
    bits = torch.randint(0, 2, (10_000,), generator=_gen(9))
    res = pipe(bits, AWGN(), snr_db_to_no(5.0), _gen(10))
    assert res.num_blocks == 3 and torch.equal(res.bits, bits.to(torch.uint8))


def test_segmentation_equal_blocks():
    pipe = DigitalPipe("qpsk", rate=0.5, max_block=1024)
    c, kp = pipe.segmentation(100_000)
    assert c == 100 and kp * c >= 100_000 and kp + 24 <= 1024


def test_errors_pass_through_and_crc_flags_them():
    pipe = DigitalPipe("qam16", rate=0.75, max_block=512)
    bits = torch.randint(0, 2, (20_000,), generator=_gen(2))
    res = pipe(bits, AWGN(), snr_db_to_no(4.0), _gen(3))
    assert res.bits.numel() == bits.numel()  # nothing dropped
    assert res.bit_errors > 0 and not bool(res.crc_ok.all())
    assert res.block_errors == int((~res.crc_ok).sum())  # the CRC flags exactly the failed blocks


def test_uncoded_pipe_and_fading():
    pipe = DigitalPipe("qam64", coding="uncoded")
    bits = torch.randint(0, 2, (999,), generator=_gen(4))
    res = pipe(bits, RayleighBlockFading(8), snr_db_to_no(60.0), _gen(5))
    assert torch.equal(res.bits, bits.to(torch.uint8))
    assert res.channel_uses == pipe.channel_uses(999) and res.channel_uses * 6 >= 999 + 24


def _bler(link, snr_db, blocks, seed):
    g = _gen(seed)
    u = torch.randint(0, 2, (blocks, link.k), generator=g).float()
    res = link(u, AWGN(), snr_db_to_no(snr_db), g)
    return int((res.u_hat != u).any(dim=1).sum())


@pytest.mark.slow
def test_ldpc_waterfall_and_normal_approximation():
    """k=1024, rate 1/2, 16-QAM: BLER falls with SNR, no errors well above the
    waterfall, and at a waterfall point it is not (significantly) below the
    normal approximation, which bounds any code of that length."""
    link = BlockLink(LDPCCode(1024, 0.5, 4, 20), Modem("qam16"))
    n_uses = link.n // 4
    blocks = 150
    errs = [_bler(link, s, blocks, 10 + i) for i, s in enumerate([4.5, 5.5, 6.5])]
    assert errs[0] > errs[1] > errs[2]
    assert _bler(link, 9.0, blocks, 20) == 0
    na = float(theory.bler_normal_approx(n_uses, 1024, 5.3, "qam16"))
    assert 0.05 < na < 0.95  # 5.3 dB is in the waterfall of the bound
    k = _bler(link, 5.3, blocks, 21)
    assert clopper_pearson(k, blocks, 0.99)[1] >= na


def test_bad_settings_name_the_parameter():
    with pytest.raises(ValueError, match="modulation"):
        DigitalPipe("qam32")
    with pytest.raises(ValueError, match="rate"):
        DigitalPipe("qpsk", rate=1.5)
    with pytest.raises(ValueError, match="crc"):
        DigitalPipe("qpsk", crc="CRC99")
    with pytest.raises(ValueError, match="max_block"):
        DigitalPipe("qpsk", max_block=9000)
