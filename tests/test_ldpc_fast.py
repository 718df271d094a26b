"""The compiled 5G LDPC decoder against Sionna's, across base graphs, rules and schedules."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

from lgvsc.link import theory
from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.code import LDPCCode, LDPCDecoding, base_graph, ldpc_codeword_length
from lgvsc.link.ldpc_fast import CN_RULES, SCHEDULES, FastLDPC5GDecoder
from lgvsc.link.modem import Modem

CONFIGS = [  # (k, rate, modulation): both base graphs, short blocks, the rate floor and ceiling
    (12, 0.2, "qpsk"), (40, 1 / 3, "bpsk"), (100, 0.5, "qam16"), (292, 0.8, "qpsk"),
    (1000, 0.2, "qpsk"), (3840, 0.25, "qpsk"), (4000, 0.5, "qam16"), (8448, 1 / 3, "qpsk"),
    (8448, 0.95, "qam64"), (500, 0.95, "qpsk"), (2000, 2 / 3, "qam256"),
]


@pytest.fixture(autouse=True)
def _quiet_high_rate_warning():
    """Sionna warns above rate 948/1024 (38.212's limit for a UE), which the configs reach."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Effective coderate", UserWarning)
        yield


def channel_llrs(k, rate, mod, snr_db, blocks, seed):
    """(encoder, info bits [B, k], channel LLRs [B, n]) through ``mod`` on AWGN."""
    modem = Modem(mod)
    n = ldpc_codeword_length(k, rate, modem.m)
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=modem.m)
    gen = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2, (blocks, k), generator=gen).float()
    x = modem.modulate(enc(u))
    no = snr_db_to_no(snr_db)
    y, h = AWGN()(x, no, gen)
    return enc, u, modem.demodulate(y, h, no)


def test_configs_cover_both_base_graphs():
    graphs = {base_graph(k, k / ldpc_codeword_length(k, r, Modem(m).m)) for k, r, m in CONFIGS}
    assert graphs == {"bg1", "bg2"}


@pytest.mark.parametrize("snr_db", [0.5, 1.0, 1.5])
def test_flooding_sum_product_decides_as_sionna_boxplus_phi(snr_db):
    """Same LLRs: identical hard decisions on >= 99.9 % of blocks (early stop on)."""
    blocks = 400
    enc, u, llr = channel_llrs(1024, 0.5, "qpsk", snr_db, blocks, seed=int(snr_db * 100))
    ref = LDPC5GDecoder(enc, cn_update="boxplus-phi", num_iter=20, hard_out=True)(llr)
    fast = FastLDPC5GDecoder(enc, "flooding", "sum-product", 20)(llr)
    differ = int((ref != fast).any(dim=1).sum())
    assert differ <= math.floor(0.001 * blocks)
    # a waterfall point: the comparison covers wrong decisions too (the block-error
    # counts then differ by at most `differ`)
    assert int((ref != u).any(dim=1).sum()) > 0


@pytest.mark.parametrize("k,rate,mod", CONFIGS)
def test_rate_recovery_matches_sionna_on_every_graph(k, rate, mod):
    """2 dB above the Shannon limit of the rate and modulation (many raw bit errors, some
    blocks lost), flooding sum-product gives Sionna's decisions: the de-interleaving,
    puncturing, filler and pruning are Sionna's."""
    snr = 10 * math.log10(2 ** (rate * Modem(mod).m) - 1) + 2.0
    enc, u, llr = channel_llrs(k, rate, mod, snr, 24, seed=k)
    assert int(((llr > 0).float() != enc(u)).sum()) > 0
    ref = LDPC5GDecoder(enc, cn_update="boxplus-phi", num_iter=10, hard_out=True)(llr)
    fast = FastLDPC5GDecoder(enc, "flooding", "sum-product", 10, early_stop=False)(llr)
    assert int((ref != fast).any(dim=1).sum()) == 0


@pytest.mark.parametrize("k,rate,mod", CONFIGS)
def test_every_rule_and_schedule_error_free_at_high_snr(k, rate, mod):
    snr = {"bpsk": 6.0, "qpsk": 9.0, "qam16": 15.0, "qam64": 21.0, "qam256": 27.0}[mod]
    enc, u, llr = channel_llrs(k, rate, mod, snr, 16, seed=k + 1)
    for schedule in SCHEDULES:
        for rule in CN_RULES:
            dec = FastLDPC5GDecoder(enc, schedule, rule, 20)
            assert torch.equal(dec(llr), u), (schedule, rule)
            assert dec.last_iterations.max() < 20  # converged and stopped early


@pytest.mark.parametrize("rule", CN_RULES)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_early_stop_changes_no_decision_at_high_snr(schedule, rule):
    enc, u, llr = channel_llrs(1024, 0.5, "qpsk", 3.0, 200, seed=5)
    early = FastLDPC5GDecoder(enc, schedule, rule, 20, early_stop=True)
    full = FastLDPC5GDecoder(enc, schedule, rule, 20, early_stop=False)
    assert torch.equal(early(llr), full(llr))
    assert early.last_iterations.mean() < 10 and (full.last_iterations == 20).all()


@pytest.mark.parametrize("rule", CN_RULES)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_no_rule_beats_the_normal_approximation(schedule, rule):
    """At a waterfall point the BLER's 99 % Clopper-Pearson interval must reach the
    normal approximation (n = 1024 uses, k = 1024, QPSK input) or lie above it."""
    snr, blocks = 0.75, 400
    enc, u, llr = channel_llrs(1024, 0.5, "qpsk", snr, blocks, seed=11)
    errors = int((FastLDPC5GDecoder(enc, schedule, rule, 20)(llr) != u).any(dim=1).sum())
    na = float(theory.bler_normal_approx(1024, 1024, np.array([snr]), "qpsk")[0])
    hi = binomtest(errors, blocks).proportion_ci(0.99, "exact").high
    assert hi >= na


def test_layered_converges_in_fewer_iterations_than_flooding():
    enc, u, llr = channel_llrs(1024, 0.5, "qpsk", 1.75, 200, seed=3)
    its = {s: FastLDPC5GDecoder(enc, s, "sum-product", 50) for s in SCHEDULES}
    for d in its.values():
        d(llr)
    assert its["layered"].last_iterations.mean() < its["flooding"].last_iterations.mean()


def test_decoder_keeps_shapes_and_threads():
    enc, u, llr = channel_llrs(100, 0.5, "qpsk", 8.0, 6, seed=2)
    dec = FastLDPC5GDecoder(enc)
    out = dec(llr.reshape(2, 3, -1))
    assert out.shape == (2, 3, 100) and out.dtype == torch.float32
    assert torch.equal(out.reshape(6, 100), u)


def test_decoding_settings_resolve_by_device():
    assert LDPCDecoding().resolved("cpu").decoder == "fast"
    assert LDPCDecoding().resolved("cuda").decoder == "sionna"
    fast = LDPCDecoding("fast").resolved()
    assert (fast.schedule, fast.cn_update, fast.early_stop) == ("layered", "sum-product", True)
    assert LDPCDecoding("sionna").resolved().cn_update == "boxplus-phi"
    assert LDPCDecoding("fast", cn_update="boxplus-phi").resolved().cn_update == "sum-product"
    assert LDPCDecoding("sionna", cn_update="sum-product").resolved().cn_update == "boxplus-phi"


@pytest.mark.parametrize("kw,field", [
    (dict(decoder="turbo"), "decoder"), (dict(iterations=0), "iterations"),
    (dict(iterations=True), "iterations"), (dict(decoder="fast", cn_update="minsum"), "cn_update"),
    (dict(decoder="sionna", cn_update="offset-min-sum"), "cn_update"),
    (dict(decoder="sionna", schedule="layered"), "schedule"),
    (dict(decoder="sionna", alpha=0.8), "alpha"), (dict(decoder="fast", schedule="zigzag"), "schedule"),
])
def test_bad_decoding_settings_name_the_parameter(kw, field):
    with pytest.raises(ValueError, match=field):
        LDPCDecoding(**kw).resolved("cpu")


@pytest.mark.parametrize("kw,field", [(dict(alpha=1.5), "alpha"), (dict(beta=-1.0), "beta"),
                                      (dict(iterations=0), "iterations")])
def test_bad_fast_decoder_settings_name_the_parameter(kw, field):
    enc = LDPC5GEncoder(100, 200, num_bits_per_symbol=2)
    with pytest.raises(ValueError, match=field):
        FastLDPC5GDecoder(enc, **kw)


def test_code_records_iterations_for_both_decoders():
    enc_llr = channel_llrs(1024, 0.5, "qpsk", 4.0, 8, seed=9)[2]
    fast = LDPCCode(1024, 0.5, 2, LDPCDecoding("fast"))
    sionna = LDPCCode(1024, 0.5, 2, LDPCDecoding("sionna", iterations=7))
    assert torch.equal(fast.decode(enc_llr), sionna.decode(enc_llr))
    assert fast.last_iterations.shape == (8,) and fast.last_iterations.max() < 7
    assert (sionna.last_iterations == 7).all()


def test_vectorised_phi_matches_float64_phi():
    """The sum-product kernel's array phi (Cephes exp/log) against -log(tanh(x/2)) in
    float64 on Sionna's clamped float32 domain: within 2e-5 relative where phi > 1e-2
    (x < ~5.3) and 2e-7 absolute below (float32's (e + 1) / (e - 1) = 1 + 2/e keeps
    that much). Below x = 1e-3 float32's e^x - 1 keeps few
    digits (Sionna's formula loses the same ones): phi is then large (> 8) and only
    within 3 % (its extrinsic share, phi of a sum above 8, is < 7e-4 either way)."""
    from lgvsc.link import ldpc_fast

    x = np.geomspace(1e-9, 30, 20000).astype(np.float32)
    y = x.copy()
    ldpc_fast._phi_vec(y, y.view(np.int32), np.empty_like(y), y.size)
    ref = -np.log(np.tanh(np.clip(x.astype(np.float64), 8.5e-8, 16.635532) / 2))
    rel, err = np.abs(y - ref) / ref, np.abs(y - ref)
    mid = (x >= 1e-3) & (ref > 1e-2)
    assert rel[mid].max() < 2e-5
    assert err[ref <= 1e-2].max() < 2e-7
    assert rel[x < 1e-3].max() < 0.03
