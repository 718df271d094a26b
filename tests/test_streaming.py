"""Streaming: short clips give what the whole-clip implementation gave, bit for bit,
and long clips run in bounded memory."""

from __future__ import annotations

import json

import pytest

import short_clips


@pytest.mark.parametrize("channel", sorted(short_clips.CHANNELS))
def test_short_clips_unchanged(channel):
    want = json.loads(short_clips.DATA.read_text())[channel]
    got = short_clips.outcomes(channel)
    assert sorted(got) == sorted(want)
    diff = {u: (got[u], want[u]) for u in want if got[u] != want[u]}
    assert not diff, json.dumps(diff, indent=1)[:3000]
