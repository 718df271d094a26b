import zlib

import numpy as np
import pytest
import torch

from lgvsc.link.bits import bits_to_bytes
from lgvsc.link.channels import AWGN, snr_db_to_no
from lgvsc.link.digital import DigitalPipe
from lgvsc.semantic.text_bits import (DEFLATE, RAW, decode_text, decode_texts, encode_text,
                                      encode_texts)

UTF8 = "a caption – with ümlauts and 漢字"
LONG = " ".join(f"a red car drives past building number {i % 7} on a sunny street"
                for i in range(40))[:2048]


@pytest.mark.parametrize("text", ["a dog runs on the beach", UTF8, "", LONG])
def test_round_trip(text):
    bits = encode_text(text)
    assert bits.dtype == torch.uint8 and bits.numel() % 8 == 0
    assert decode_text(bits) == text


def test_format_header_and_compression():
    short = bits_to_bytes(encode_text("hi"))
    assert short == bytes([RAW, 0, 2]) + b"hi"
    assert bits_to_bytes(encode_text("")) == bytes([RAW, 0, 0])
    data = bits_to_bytes(encode_text(LONG))
    n = int.from_bytes(data[1:3], "big")
    assert data[0] == DEFLATE and len(data) == 3 + n and n < len(LONG) // 4
    assert zlib.decompressobj(-15).decompress(data[3:]) == LONG.encode()


def test_decode_tolerates_extra_bits_and_padding():
    bits = encode_text(UTF8)
    assert decode_text(torch.cat([bits, torch.ones(5, dtype=torch.uint8)])) == UTF8
    assert decode_text(torch.cat([bits, torch.zeros(64, dtype=torch.uint8)])) == UTF8
    assert decode_text(bits.numpy()) == UTF8


def test_multiple_captions_round_trip():
    caps = ["first", UTF8, "", LONG, "last one"]
    bits = encode_texts(caps)
    assert decode_texts(bits, len(caps)) == caps
    assert decode_texts(bits, 2) == caps[:2]
    assert decode_texts(bits, 7) == caps + ["", ""]
    assert decode_texts(encode_texts([]), 0) == []
    assert encode_texts(caps).numel() < sum(encode_text(c).numel() for c in caps)
    with pytest.raises(ValueError, match="n must"):
        decode_texts(bits, -1)


def _corrupt(bits, rng):
    """One random corruption: BER flips, truncation, all zeros / ones, random garbage."""
    n = bits.numel()
    kind = rng.integers(0, 6)
    if kind < 3:
        ber = (1e-3, 1e-2, 0.1)[kind]
        flips = torch.from_numpy((rng.random(n) < ber).astype(np.uint8))
        return bits ^ flips
    if kind == 3:
        return bits[: int(rng.integers(0, n + 1))]
    if kind == 4:
        return torch.full((n,), int(rng.integers(0, 2)), dtype=torch.uint8)
    return torch.from_numpy(rng.integers(0, 2, int(rng.integers(0, 4 * n + 1)), dtype=np.uint8))


def test_corruption_never_raises():
    rng = np.random.default_rng(7)
    texts = ["a dog runs on the beach", UTF8, "", LONG]
    singles = [encode_text(t) for t in texts]
    multi = encode_texts(texts)
    for i in range(200):
        s = decode_text(_corrupt(singles[i % len(singles)], rng))
        assert isinstance(s, str)
        out = decode_texts(_corrupt(multi, rng), len(texts))
        assert len(out) == len(texts) and all(isinstance(x, str) for x in out)


@pytest.mark.parametrize("n_bits", [0, 1, 7, 8, 23, 24])
def test_short_and_empty_bits(n_bits):
    for fill in (0, 1):
        bits = torch.full((n_bits,), fill, dtype=torch.uint8)
        assert isinstance(decode_text(bits), str)
        assert len(decode_texts(bits, 3)) == 3


def test_through_digital_pipe():
    pipe = DigitalPipe("qpsk", rate=0.5)
    bits = encode_texts(["a dog runs on the beach", UTF8])
    gen = torch.Generator().manual_seed(3)
    good = pipe(bits, AWGN(), snr_db_to_no(20.0), gen)
    assert decode_texts(good.bits, 2) == ["a dog runs on the beach", UTF8]
    single = pipe(encode_text(LONG), AWGN(), snr_db_to_no(20.0), gen)
    assert decode_text(single.bits) == LONG
    bad = pipe(encode_text(LONG), AWGN(), snr_db_to_no(-5.0), gen)
    assert bad.bit_errors > 0 and isinstance(decode_text(bad.bits), str)
    assert len(decode_texts(pipe(bits, AWGN(), snr_db_to_no(-5.0), gen).bits, 2)) == 2
