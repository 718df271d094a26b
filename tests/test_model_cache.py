"""The process's model cache: one load per key, explicit release, header-only estimates."""

import json
import struct

import pytest
import torch

from lgvsc.semantic.model_cache import (ModelCache, ModelInfo, ModelKey, estimate_bytes,
                                        weight_files)

KEY = ModelKey("vlm", "/models/a", "bfloat16", "cpu")


def test_one_load_per_key_and_reload_after_release():
    lines = []
    cache = ModelCache(log=lines.append)
    made = []
    load = lambda: made.append(object()) or made[-1]  # noqa: E731
    a, b = cache.get(KEY, load), cache.get(KEY, load)
    assert a is b and len(made) == 1 and cache.load_counts[KEY] == 1
    other = ModelKey("vlm", "/models/a", "float32", "cpu")  # another dtype is another model
    assert cache.get(other, load) is not a and cache.load_counts[other] == 1
    assert cache.release([KEY]) == [KEY] and cache.loaded() == [other]
    assert cache.get(KEY, load) is not a and cache.load_counts[KEY] == 2
    assert cache.release() == [other, KEY] and cache.loaded() == []
    assert cache.release([KEY]) == []  # nothing left: a no-op
    assert [line.split(" ", 2)[1] for line in lines] == ["loading", "loading", "released",
                                                     "loading", "released", "released"]


def test_a_failed_load_is_not_cached():
    cache = ModelCache(log=lambda line: None)

    def broken():
        raise ValueError("path: no weights")

    with pytest.raises(ValueError, match="no weights"):
        cache.get(KEY, broken)
    assert cache.loaded() == [] and cache.load_counts[KEY] == 0


def _safetensors(path, tensors):
    """A safetensors file with these {name: (dtype, shape)} headers (zero data)."""
    header, off = {}, 0
    for name, (dt, shape) in tensors.items():
        n = {"F32": 4, "BF16": 2, "I64": 8}[dt] * int(torch.tensor(shape).prod())
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(off))


def test_estimate_reads_headers_and_casts_floats_only(tmp_path):
    (tmp_path / "text_encoder").mkdir()
    _safetensors(tmp_path / "model.safetensors", {"w": ("F32", [10, 10]), "ids": ("I64", [4])})
    _safetensors(tmp_path / "model.fp16.safetensors", {"w": ("BF16", [10, 10])})  # a variant
    _safetensors(tmp_path / "text_encoder" / "model.safetensors", {"e": ("BF16", [3, 5])})
    assert [p.name for p in weight_files(tmp_path)] == ["model.safetensors"] * 2
    assert estimate_bytes(tmp_path, None) == 400 + 32 + 30
    assert estimate_bytes(tmp_path, "bfloat16") == 200 + 32 + 30
    assert estimate_bytes(tmp_path, "float32") == 400 + 32 + 60
    assert estimate_bytes(tmp_path / "missing", "float32") is None
    line = ModelInfo(KEY, 3 * 2**30).line()
    assert line.startswith("vlm /models/a (bfloat16, cpu): ~3.0 GiB")


def test_an_index_names_the_shards(tmp_path):
    _safetensors(tmp_path / "a-00001.safetensors", {"w": ("F32", [8])})
    _safetensors(tmp_path / "stale.safetensors", {"w": ("F32", [1000])})
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "a-00001.safetensors"}}))
    assert estimate_bytes(tmp_path, "float32") == 32
