import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GEncoder

from lgvsc.link import theory
from lgvsc.link.channels import AWGN, RayleighBlockFading, snr_db_to_no
from lgvsc.link.code import (LDPC_MAX_RATE, LDPC_MIN_K, LDPC_MIN_RATE, LDPCCode, base_graph,
                             ldpc_codeword_length, max_block_for_rate)
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
    link = BlockLink(LDPCCode(1024, 0.5, 4), Modem("qam16"))
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


# -- every payload size at every rate and modulation ---------------------------------
RATES = [1 / 5, 1 / 4, 0.3, 1 / 3, 2 / 5, 1 / 2, 2 / 3, 3 / 4, 5 / 6, 8 / 9]
MODULATIONS = ["bpsk", "qpsk", "qam16", "qam64", "qam256"]
#: sizes around the base-graph boundaries (CRC24 blocks of 3824 / 3840 / 8448 bits),
#: odd sizes, tiny payloads and multi-block ones
SIZES = ([1, 2, 5, 11, 12, 13, 100, 268, 269, 270, 1001] + list(range(3790, 3822))
         + list(range(8419, 8430)) + [10_001, 16_849, 16_851, 25_273, 100_003])


def _block(pipe: DigitalPipe, num_bits: int) -> tuple[int, int]:
    c, kp = pipe.segmentation(num_bits)
    k = kp + pipe.crc_len
    return k, ldpc_codeword_length(k, pipe.rate, pipe.m)


@pytest.mark.parametrize("crc", ["CRC24B", "none"])
def test_sweep_every_block_is_one_sionna_accepts(crc):
    """Each (payload size, rate, modulation) gives a block that Sionna's 5G encoder
    accepts (its own base-graph rule), whole symbols, and a realised rate close to
    the target; before the fix rate 1/3 (and 0.3) gave base graph 1 below 1/3."""
    for rate in RATES:
        for mod in MODULATIONS:
            pipe = DigitalPipe(mod, rate=rate, crc=crc)
            for num_bits in SIZES:
                k, n = _block(pipe, num_bits)
                where = f"rate {rate:.4f} {mod} {num_bits} bits: k={k} n={n}"
                assert LDPC_MIN_K <= k <= pipe.max_block and n % pipe.m == 0, where
                assert LDPC_MIN_RATE <= k / n <= LDPC_MAX_RATE, where
                # Sionna's own base-graph selection and consistency check (raises if not)
                bg = LDPC5GEncoder._sel_basegraph(None, k, k / n)
                assert bg == base_graph(k, k / n), where
                # rounding to whole symbols moves the rate by at most one symbol's worth
                assert abs(n - k / rate) <= pipe.m + 1 or k / n >= rate, where
                assert k / n <= rate * (1 + 1e-9) or n <= k / rate, where


@pytest.mark.parametrize("rate,mod,num_bits", [
    (1 / 3, "qpsk", 8001),     # k = 8025: n = 3k rounded up to even -> rate < 1/3 on BG1
    (1 / 3, "qam64", 3801),    # k = 3825 > 3824: base graph 1
    (0.3, "bpsk", 10_001),     # rate 0.3 with long blocks: must stay on base graph 2
    (1 / 4, "qam16", 3815),    # k = 3839 on base graph 2
    (8 / 9, "qam256", 5),      # tiny block, high rate
])
def test_sionna_builds_the_critical_blocks(rate, mod, num_bits):
    """The blocks that crashed Sionna before, built for real."""
    pipe = DigitalPipe(mod, rate=rate)
    k, n = _block(pipe, num_bits)
    code = LDPCCode(k, rate, pipe.m)
    assert (code.k, code.n) == (k, n)
    assert LDPC5GEncoder(k, n, num_bits_per_symbol=pipe.m).coderate == pytest.approx(k / n)


@pytest.mark.parametrize("rate,mod,num_bits,crc", [
    (1 / 3, "qpsk", 8001, "CRC24B"),
    (0.3, "qam16", 4000, "CRC24B"),
    (1 / 5, "qam256", 3, "none"),  # 3 bits -> padded to the 12-bit minimum block
])
def test_round_trip_at_the_former_crash_points(rate, mod, num_bits, crc):
    pipe = DigitalPipe(mod, rate=rate, crc=crc)
    bits = torch.randint(0, 2, (num_bits,), generator=_gen(num_bits))
    res = pipe(bits, AWGN(), snr_db_to_no(30.0), _gen(2))
    assert torch.equal(res.bits, bits.to(torch.uint8)) and bool(res.crc_ok.all())
    assert res.channel_uses == pipe.channel_uses(num_bits)


def test_codeword_length_rules():
    assert ldpc_codeword_length(8025, 1 / 3, 2) == 24074  # rounded down: stays >= 1/3 on BG1
    assert ldpc_codeword_length(3000, 1 / 3, 4) == 9000  # 1/3 given as a float: exactly 3k
    assert ldpc_codeword_length(4000, 4000 / 9000, 2) == 9000  # a rate given as k / n
    assert ldpc_codeword_length(25, 0.2, 8) == 120  # 125 is no whole number of symbols
    assert max_block_for_rate(0.25) == 3840 and max_block_for_rate(0.3) == 3824
    assert max_block_for_rate(1 / 3) == 8448
    with pytest.raises(ValueError, match="k must be"):
        LDPCCode(5000, 0.3, 2)  # base graph 1 cannot reach 0.3
    with pytest.raises(ValueError, match="rate"):
        DigitalPipe("qpsk", rate=0.97)  # above what 5G LDPC (and Sionna) supports


@pytest.mark.parametrize("method", ["app", "maxlog"])
@pytest.mark.parametrize("mod", ["bpsk", "qpsk", "qam16", "qam64", "qam256"])
def test_axis_demapper_gives_sionnas_llrs(mod, method):
    """Per-axis demapping equals Sionna's full-constellation demapper (float32
    rounding: 1e-5 relative), with a scalar and a per-symbol noise variance."""
    from sionna.phy.mapping import Demapper

    from lgvsc.link.modem import MODULATIONS

    ctype, m = MODULATIONS[mod]
    modem, ref = Modem(mod, method), Demapper(method, ctype, m)
    gen = torch.Generator().manual_seed(m)
    x = modem.modulate(torch.randint(0, 2, (20, m * 32), generator=gen).float())
    for no in (torch.tensor(0.02), torch.tensor(2.0), torch.rand(x.shape, generator=gen) + 0.1):
        noise = torch.randn(x.shape, generator=gen) + 1j * torch.randn(x.shape, generator=gen)
        y = x + (no / 2).sqrt() * noise
        got, want = modem._demapper(y, no), ref(y, no)
        assert got.shape == want.shape
        assert ((got - want).abs() / (want.abs() + 1)).max() < 1e-5
