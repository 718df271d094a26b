"""Bad input that is not a typo: numbers that are not numbers, resource bombs, files
that are not text, ``${VAR}`` outside path fields. Each is refused by ``lgvsc
validate`` in one line naming the file and the field, fast, without a traceback."""

import copy
import math
import time

import pytest
import torch

from conftest import small_link_scenario
from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.code import LDPCDecoding
from lgvsc.link.digital import DigitalPipe
from lgvsc.sim import limits
from lgvsc.sim.cli import main
from lgvsc.sim.scenario import load_scenario

BOMB_SECONDS = 2.0  # generous: each refusal takes milliseconds


def _video(**over):
    sc = {"name": "t-video", "kind": "video",
          "videos": [{"source": "synthetic:pan", "frames": 8, "size": [32, 32]}],
          "channel": {"type": "awgn", "snr_db": [2.0]},
          "schemes": [{"name": "S", "type": "softcast", "target_cbr": 0.01}]}
    sc.update(over)
    return sc


def _set(sc, path, value):
    """``sc`` with the dotted ``path`` (list indices as numbers) set to ``value``."""
    sc = copy.deepcopy(sc)
    *parents, leaf = path.split(".")
    node = sc
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    node[int(leaf) if leaf.isdigit() else leaf] = value
    return sc


def _link(path, value):
    return _set(small_link_scenario(), path, value)


def _vid(path, value):
    return _set(_video(), path, value)


def _check(path, capsys, needles, code=2):
    t0 = time.perf_counter()
    assert main(["validate", str(path)]) == code
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lgvsc: error: "), err
    assert "Traceback" not in err and str(path) in err, err
    for n in needles:
        assert n in err, (n, err)
    return elapsed, err


NAN, INF = float("nan"), float("inf")

# (scenario, needles): values written by yaml.safe_dump (.nan, .inf, 1.0e+400 -> .inf)
NUMBERS = [
    (_link("channel.snr_db", [1.0, NAN]), ["channel.snr_db[1]", "finite", "nan"]),
    (_link("channel.snr_db", [INF]), ["channel.snr_db[0]", "finite"]),
    (_link("channel.snr_db", [-INF, 2.0]), ["channel.snr_db[0]", "finite"]),
    (_link("channel.snr_db", ["1e400"]), ["channel.snr_db[0]", "finite", "1e400"]),
    (_link("channel.snr_db", [True]), ["channel.snr_db", "not true/false"]),
    (_link("channel.snr_db", [2.0, False]), ["channel.snr_db", "not true/false"]),
    (_link("channel.snr_db", [6, 6, 6.0]), ["channel.snr_db", "distinct", "6 dB"]),
    (_link("channel.snr_db", [2, 4, 2.0]), ["channel.snr_db", "distinct", "2 dB"]),
    (_link("channel.snr_db", [-400.0]), ["channel.snr_db[0]", "[-50, 60] dB", "-400"]),
    (_link("channel.snr_db", [0, 61]), ["channel.snr_db[1]", "[-50, 60] dB"]),
    (_link("channel.snr_db", [1e308]), ["channel.snr_db[0]", "[-50, 60] dB"]),
    (_link("channel.snr_db", ["1e308"]), ["channel.snr_db[0]", "[-50, 60] dB"]),
    (_link("schemes.1.rate", NAN), ["schemes[1].rate", "finite"]),
    (_link("schemes.1.rate", True), ["schemes[1].rate"]),
    (_link("schemes.0.k", True), ["schemes[0].k", "not true/false"]),
    (_link("schemes.1.k", 1e308), ["schemes[1].k"]),
    (_link("schemes.1.iterations", 1e308), ["schemes[1].iterations"]),
    (_link("schemes.1.iterations", 1e6), ["schemes[1].iterations", "1000"]),
    (_link("schemes.1.iterations", True), ["schemes[1].iterations", "not true/false"]),
    (_link("schemes.0.k", 10 ** 400), ["schemes[0].k", "..."]),
    (_link("monte_carlo.batch_blocks", True), ["monte_carlo.batch_blocks", "not true/false"]),
    (_link("monte_carlo.max_batches", INF), ["monte_carlo.max_batches", "finite"]),
    (_link("monte_carlo.target_block_errors", False), ["monte_carlo.target_block_errors"]),
    (_link("seed", True), ["seed", "not true/false"]),
    (_link("seed", 1e30), ["seed"]),
    (_link("seed", 2 ** 64), ["seed", "less than"]),
    (_link("executor.workers", True), ["executor.workers", "not true/false"]),
    (_link("executor.workers", 10 ** 9), ["executor.workers", "1024"]),
    (_link("statistics", {"confidence": NAN}), ["statistics.confidence", "finite"]),
    (_link("statistics", {"confidence": True}), ["statistics.confidence", "not true/false"]),
    (_link("channel", {"type": "rician", "snr_db": [1.0], "k_factor": NAN}),
     ["channel.k_factor", "finite"]),
    (_link("channel", {"type": "rician", "snr_db": [1.0], "k_factor": True}),
     ["channel", "k_factor"]),
    (_link("channel", {"type": "rayleigh", "snr_db": [1.0], "coherence": INF}),
     ["channel.coherence", "finite"]),
    (_link("channel", {"type": "rayleigh", "snr_db": [1.0], "coherence": True}),
     ["channel", "coherence"]),
    (_vid("videos.0.frames", True), ["videos[0].frames", "not true/false"]),
    (_vid("videos.0.size", [True, 32]), ["videos[0].size", "not true/false"]),
    (_vid("videos.0.seed", NAN), ["videos[0].seed", "finite"]),
    (_vid("videos.0.seed", -1), ["videos[0].seed"]),
    (_vid("schemes.0.target_cbr", NAN), ["schemes[0].target_cbr", "finite"]),
    (_vid("schemes.0.target_cbr", 1e308), ["schemes[0].target_cbr", "<= 100"]),
    (_vid("schemes.0.target_cbr", True), ["schemes[0].target_cbr", "not true/false"]),
    (_vid("schemes.0.design_snr_db", INF), ["schemes[0].design_snr_db", "finite"]),
    (_vid("schemes.0.gop", True), ["schemes[0].gop", "not true/false"]),
    (_vid("schemes.0.chunks", [[8, True]]), ["schemes[0].chunks"]),
    (_vid("schemes", [{"name": "L", "type": "lgvsc", "target_cbr": 0.01,
                       "scorer": {"type": "classical", "slope": NAN}}]),
     ["schemes[0].scorer.slope", "finite"]),
    (_vid("schemes", [{"name": "L", "type": "lgvsc", "target_cbr": 0.01,
                       "world_model": {"type": "interp", "consistency_px": -INF}}]),
     ["schemes[0].world_model.consistency_px", "finite"]),
    (_vid("schemes", [{"name": "L", "type": "lgvsc", "target_cbr": 0.01, "threshold": True}]),
     ["schemes[0].threshold", "not true/false"]),
    (_vid("schemes", [{"name": "L", "type": "lgvsc", "target_cbr": 0.01, "threshold": 2}]),
     ["schemes[0].threshold: Input should be less than or equal to 1"]),
    (_vid("schemes", [{"name": "L", "type": "lgvsc", "target_cbr": 0.01, "sfa_length": 10 ** 9}]),
     ["schemes[0].sfa_length", "1024"]),
    (_vid("schemes", [{"name": "H", "type": "codec-ldpc", "codec": "h264", "iterations": 10 ** 9}]),
     ["schemes[0].iterations", "1000"]),
    (_vid("schemes", [{"name": "H", "type": "codec-ldpc", "codec": "h264",
                       "decode_timeout_s": 1e300}]), ["schemes[0].decode_timeout_s", "86400"]),
    (_vid("schemes", [{"name": "L", "type": "lgvsc", "target_cbr": 0.01, "keyframe_cbr": INF}]),
     ["schemes[0].keyframe_cbr", "finite"]),
    (_vid("schemes", [{"name": "H", "type": "codec-ldpc", "codec": "h264", "qp": True}]),
     ["schemes[0].qp", "not true/false"]),
    (_vid("schemes", [{"name": "H", "type": "codec-ldpc", "codec": "h264",
                       "table": [{"snr_db": True, "qp": 30}]}]),
     ["schemes[0].table", "not true/false"]),
    (_vid("schemes", [{"name": "H", "type": "codec-ldpc", "codec": "h264",
                       "table": [{"snr_db": NAN, "qp": 30}]}]),
     ["schemes[0].table[0].snr_db", "finite"]),
]


@pytest.mark.parametrize("data,needles", NUMBERS)
def test_numbers_that_are_not_numbers(write_yaml, capsys, data, needles):
    _check(write_yaml(data), capsys, needles)


def _alias_bomb(levels=9, width=9):
    lines = ["name: bomb", "kind: link", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


BOMBS = [
    (_alias_bomb(), ["aliases expand to more than 100,000 values"]),
    ("name: x\nkind: link\nchannel: " + "[" * 10_000 + "]" * 10_000 + "\n",
     ["nested deeper than 50 levels", "line 3"]),
    ("name: x\nkind: link\nchannel: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
     ["nested deeper than 50 levels"]),
    ("a: &a [1, *a]\n", ["alias refers to a collection that holds it"]),
    ("a: &a [[[[[[[[[[1]]]]]]]]]]\n" + "".join(
        f"b{i}: &b{i} [[[[[[[[[[*{'a' if i == 0 else f'b{i - 1}'}]]]]]]]]]]\n" for i in range(6)),
     ["nested deeper than 50 levels once YAML aliases are expanded"]),
    ("# " + "x" * (limits.MAX_FILE_BYTES + 10) + "\nname: x\n", ["larger than the 1.0 MiB"]),
    (_set(_video(), "monte_carlo", {"trials": 1_000_000_000}),
     ["monte_carlo.trials", "1,000,000,000 units", "1,000,000"]),
    (_set(_video(), "channel.snr_db", [x / 100 for x in range(2000)]) | {
        "monte_carlo": {"trials": 600}}, ["monte_carlo.trials", "1,200,000 units"]),
    (_vid("videos.0.size", [20000, 20000]), ["videos[0]", "8 frames of 20000x20000", "available"]),
    (_set(_video(), "videos.0", {"source": "synthetic:pan", "size": [20000, 20000]}),
     ["videos[0]", "32 frames of 20000x20000", "GiB", "available"]),
    (_vid("videos.0.frames", 1_000_000_000), ["videos[0]", "1000000000 frames", "TiB"]),
    (_set(_video(), "videos.0", {"source": "builtin:bikes", "size": [16000, 16000]}),
     ["videos[0]", "a window of 32 frames of 16000x16000 (the clip is streamed)", "available"]),
    (_link("monte_carlo.batch_blocks", 10 ** 12),
     ["monte_carlo.batch_blocks", "1000000000000 blocks of 256 bits", "per batch",
      "available"]),
]


@pytest.mark.parametrize("data,needles", BOMBS)
def test_bombs_are_refused_fast(write_yaml, capsys, data, needles):
    elapsed, _ = _check(write_yaml(data), capsys, needles)
    assert elapsed < BOMB_SECONDS, elapsed


FILES = [
    ("name: caf\xe9\nkind: link\n".encode("latin-1"), ["not UTF-8 text (byte 0xe9 at offset 9)"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["not UTF-8 text (byte 0x89 at offset 0)"]),
    (bytes(range(256)) * 4, ["not UTF-8 text (byte 0x80 at offset 128)"]),
    (b"name: a\x00b\nkind: link\n", ["binary file", "NUL byte at offset 7"]),
    (b"\xff\xfen\x00a\x00m\x00e\x00", ["not UTF-8 text (byte 0xff at offset 0)"]),  # UTF-16
]


@pytest.mark.parametrize("raw,needles", FILES)
def test_files_that_are_not_text(tmp_path, capsys, raw, needles):
    path = tmp_path / "scenario.yaml"
    path.write_bytes(raw)
    _check(path, capsys, needles)


def test_a_folder_is_not_a_scenario(tmp_path, capsys):
    _check(tmp_path, capsys, ["cannot read"])


# -- ${VAR} ------------------------------------------------------------------
SECRET = "hunter2-s3cr3t-token"

VARIABLES = [
    (_link("name", "${LGVSC_TEST_SECRET}"), ["name: ${LGVSC_TEST_SECRET} is only expanded in "
                                             "path fields (path, checkpoint", "$${"]),
    (_link("description", "key ${LGVSC_TEST_SECRET}"), ["description: ${LGVSC_TEST_SECRET}"]),
    (_link("channel.type", "${LGVSC_TEST_SECRET}"), ["channel.type: ${LGVSC_TEST_SECRET}"]),
    (_link("schemes.0.name", "${LGVSC_TEST_SECRET}"), ["schemes[0].name: ${LGVSC_TEST_SECRET}"]),
    (_link("executor.type", "${LGVSC_TEST_SECRET}"), ["executor.type: ${LGVSC_TEST_SECRET}"]),
    (_vid("videos.0.name", "${LGVSC_TEST_SECRET}"), ["videos[0].name: ${LGVSC_TEST_SECRET}"]),
    (_vid("videos.0.caption", "${LGVSC_TEST_SECRET}"), ["videos[0].caption"]),
    (_link("description", "cost ${5}"), ["description: '${' must start a variable", "$${"]),
    (_link("schemes.1.rate", "${LGVSC_TEST_SECRET}"), ["schemes[1].rate: ${LGVSC_TEST_SECRET}"]),
    # an expanded value that fails validation is shown as its ${NAME}, never as the value
    (_vid("videos.0.source", "${LGVSC_TEST_EMPTY}"),
     ["videos[0].source", "at least 1 character", "(got '${LGVSC_TEST_EMPTY}')"]),
    (_link("executor.address", "${LGVSC_TEST_UNSET}"), ["executor.address: ${LGVSC_TEST_UNSET} "
                                                        "is not set"]),
]


@pytest.mark.parametrize("data,needles", VARIABLES)
def test_variables_only_in_path_fields(write_yaml, capsys, monkeypatch, data, needles):
    monkeypatch.setenv("LGVSC_TEST_SECRET", SECRET)
    monkeypatch.setenv("LGVSC_TEST_EMPTY", "")
    monkeypatch.delenv("LGVSC_TEST_UNSET", raising=False)
    _, err = _check(write_yaml(data), capsys, needles)
    assert SECRET not in err


def test_dollar_escape_and_path_expansion(write_yaml, capsys, monkeypatch):
    monkeypatch.setenv("LGVSC_TEST_CLIP", "synthetic:pan")
    sc = _video(description="costs $${HOME} and $${ literally")
    sc["videos"][0]["source"] = "${LGVSC_TEST_CLIP}"
    sc["schemes"].append({"name": "L", "type": "lgvsc", "target_cbr": 0.01,
                          "scorer": {"type": "classical", "slope": 2.0},
                          "world_model": {"type": "interp"}})
    path = write_yaml(sc)
    loaded = load_scenario(path)
    assert loaded.description == "costs ${HOME} and ${ literally"
    assert loaded.videos[0].source == "synthetic:pan"
    assert loaded.hide_expanded("clip synthetic:pan missing") == "clip ${LGVSC_TEST_CLIP} missing"
    assert main(["validate", str(path)]) == 0
    assert "ok (video scenario" in capsys.readouterr().out


def test_unit_count_is_arithmetic(write_yaml):
    sc = load_scenario(write_yaml(_set(_video(), "monte_carlo", {"trials": 1000})))
    assert sc.unit_count() == 1 * 1 * 1 * 1000
    link = load_scenario(write_yaml(small_link_scenario(), "link.yaml"))
    assert link.unit_count() == 4


# -- link layer: out-of-range noise never reads as success --------------------
@pytest.mark.parametrize("snr", [-385.0, -101.0, 101.0, NAN, INF, -INF, True, "5"])
def test_snr_db_to_no_refuses_out_of_range(snr):
    with pytest.raises(ValueError, match="snr_db"):
        snr_db_to_no(snr)


def test_snr_db_to_no_is_float64_and_exact_at_the_edges():
    assert snr_db_to_no(-100.0) == pytest.approx(1e10)
    assert snr_db_to_no(100.0) == pytest.approx(1e-10)
    assert isinstance(snr_db_to_no(3), float)


@pytest.mark.parametrize("no", [1e38, 10 ** 38.5, NAN, INF, -1.0, 1e10 * 1.01])
def test_channel_refuses_unusable_noise(no):
    x = torch.ones(8, dtype=torch.complex64)
    with pytest.raises(ValueError, match="no must be a finite noise variance"):
        AWGN()(x, no, torch.Generator().manual_seed(0))


def _pipe_bits(n=1500, seed=0):
    return torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("no", [1e38, 10 ** 38.5])
def test_pipe_at_extreme_noise_never_reports_ok(no):
    pipe = DigitalPipe("qpsk", "ldpc5g", 0.5, max_block=512, decoding=LDPCDecoding(iterations=5))
    with pytest.raises(ValueError, match="noise variance"):
        pipe(_pipe_bits(), AWGN(), no, torch.Generator().manual_seed(1))


def test_pipe_at_the_noisiest_allowed_snr_fails_every_block():
    pipe = DigitalPipe("qpsk", "ldpc5g", 0.5, max_block=512, decoding=LDPCDecoding(iterations=5))
    res = pipe(_pipe_bits(), AWGN(), snr_db_to_no(-100.0), torch.Generator().manual_seed(1))
    assert res.num_blocks > 1 and not res.crc_ok.any()


@pytest.mark.parametrize("crc,coding", [("CRC24B", "ldpc5g"), ("CRC24B", "uncoded"),
                                        ("none", "uncoded")])
@pytest.mark.parametrize("poison", [NAN, INF])
def test_non_finite_llr_block_fails(monkeypatch, crc, coding, poison):
    pipe = DigitalPipe("qpsk", coding, 0.5, max_block=512, crc=crc, decoding=LDPCDecoding(iterations=5))
    demod = pipe.modem.demodulate

    def poisoned(y, h, no):
        llr = demod(y, h, no).clone()
        llr[1, : llr.shape[1] // 2] = poison  # block 1 half NaN / inf
        return llr

    monkeypatch.setattr(pipe.modem, "demodulate", poisoned)
    res = pipe(_pipe_bits(), AWGN(), snr_db_to_no(30.0), torch.Generator().manual_seed(2))
    assert res.num_blocks >= 3
    assert not bool(res.crc_ok[1])
    assert bool(res.crc_ok[0]) and bool(res.crc_ok[2])  # clean blocks at 30 dB pass


def test_all_nan_llrs_never_pass_the_crc(monkeypatch):
    """NaN LLRs decode to the all-zero word, whose CRC is valid: the block still fails."""
    pipe = DigitalPipe("qpsk", "ldpc5g", 0.5, max_block=512, decoding=LDPCDecoding(iterations=5))
    monkeypatch.setattr(pipe.modem, "demodulate",
                        lambda y, h, no: torch.full((y.shape[0], y.shape[1] * 2), math.nan))
    res = pipe(torch.zeros(1500, dtype=torch.int64), AWGN(), snr_db_to_no(10.0),
               torch.Generator().manual_seed(3))
    assert not res.crc_ok.any()


# -- memory checks -----------------------------------------------------------
def test_memory_checks(monkeypatch):
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 1 << 30)
    limits.check_video_memory("v", None, 100000, 100000)  # frame count unknown: nothing
    limits.check_video_memory("v", 8, 64, 64)
    with pytest.raises(limits.LimitError, match=r"v: 100 frames of 1080x1920 need ~9\.3 GiB; "
                                                r"this machine has 1\.0 GiB available"):
        limits.check_video_memory("v", 100, 1080, 1920)
    limits.check_link_batch("b", 100, 2048, 4)
    with pytest.raises(limits.LimitError, match=r"b: 1000000 blocks of 2048 bits need ~122\.1 "
                                                r"GiB per batch"):
        limits.check_link_batch("b", 10 ** 6, 2048, 4)


def test_available_memory_is_positive():
    assert limits.available_memory_bytes() > 1 << 20


# -- lgvsc keyframes options -------------------------------------------------
KEYFRAME_OPTIONS = [
    (["--min-len", "10", "--max-len", "2"], ["--min-len 10", "--max-len 2"]),
    (["--size", "1", "1"], ["--size", "even", ">= 16", "[1, 1]"]),
    (["--size", "17", "32"], ["--size", "even"]),
    (["--size", "20000", "20000"], ["--frames/--size", "20000x20000", "available"]),
]


@pytest.mark.parametrize("args,needles", KEYFRAME_OPTIONS)
def test_keyframes_options_one_line(capsys, args, needles):
    assert main(["keyframes", "synthetic:pan", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
