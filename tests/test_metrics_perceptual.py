"""The weight-free perceptual metrics: ``vmaf`` / ``xpsnr`` (FFmpeg,
:mod:`lgvsc.sim.metrics_ffmpeg`), the piq ones (:mod:`lgvsc.sim.metrics_piq`) and the
streaming sessions that :func:`lgvsc.sim.metrics.frame_scores` drives."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import numpy as np
import pytest

from lgvsc.sim import metrics_ffmpeg
from lgvsc.sim.metrics import (METRICS, PSNR_CAP_DB, ChunkSession, axis_label, frame_scores,
                               paired_chunks, resolve_metrics)
from lgvsc.sim.metrics_ffmpeg import ffmpeg_exe

PIQ = ["haarpsi", "vif", "fsim", "gmsd", "ms_gmsd", "mdsi", "vsi", "dss", "iw_ssim"]
LOWER_IS_BETTER = {"gmsd", "ms_gmsd", "mdsi"}


def _ffmpeg_missing():
    return METRICS.get("vmaf")().unavailable_reason() or METRICS.get("xpsnr")().unavailable_reason()


needs_ffmpeg = pytest.mark.skipif(bool(_ffmpeg_missing()), reason=str(_ffmpeg_missing()))


@pytest.fixture(scope="module")
def clip():
    """8 frames of carphone at 64x80 (real content; frames 5..12, some repeat)."""
    from lgvsc.sim.video import VideoSpec, load_video

    v = load_video(VideoSpec(source="builtin:carphone", size=[64, 80], frames=8, start=5))
    return np.concatenate(list(v.chunks(64)))


def _noisy(ref, sigma, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(ref + rng.normal(0, sigma, ref.shape)), 0, 255).astype(np.uint8)


def _y4m(tmp_path, name, frames):
    """``frames`` as a 4:2:0 .y4m written by the same FFmpeg with its *default* rgb24 ->
    yuv420p conversion (the metrics pin BT.601 limited range, bicubic: the same)."""
    n, h, w, _ = frames.shape
    raw = tmp_path / f"{name}.rgb"
    frames.tofile(raw)
    out = tmp_path / f"{name}.y4m"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
                    "-pix_fmt", "rgb24", "-video_size", f"{w}x{h}", "-framerate", "25",
                    "-i", str(raw), "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def _direct(tmp_path, graph, *inputs):
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                    *[a for i in inputs for a in ("-i", str(i))], "-lavfi", graph, "-f", "null",
                    "-"], check=True, cwd=tmp_path)


# -- sessions ---------------------------------------------------------------------------
def test_default_session_is_per_chunk_frame_scores(clip):
    test = _noisy(clip, 10)
    m = METRICS.get("ssim")()
    s = m.session()
    assert isinstance(s, ChunkSession)
    for a, b in ((0, 3), (3, 4), (4, 8)):
        s.feed(clip[a:b], test[a:b])
    chunked = s.close()
    per_call = np.concatenate([m.frame_scores(clip[a:b], test[a:b]) for a, b in ((0, 3), (3, 4), (4, 8))])
    assert chunked.tobytes() == per_call.tobytes()  # bit-identical
    assert s.close().shape == (0,)  # spent
    out = frame_scores({"ssim": m}, iter(()))
    assert out["ssim"].shape == (0,)


# -- vmaf -------------------------------------------------------------------------------
@needs_ffmpeg
def test_vmaf_of_a_clip_against_itself(clip):
    """Not exactly 100: VMAF v0.6.1 regresses from its features, and with identical
    frames (VIF = ADM = 1) the score still depends on the motion feature -- 97.43 with
    none (the first frame, repeated frames), up to 100 (the model's clip) with motion."""
    v = METRICS.get("vmaf")().frame_scores(clip, clip.copy())
    assert v.shape == (8,)
    assert v[0] == pytest.approx(97.43, abs=0.01)
    assert np.all((v >= 97.4) & (v <= 100.0)), v


@needs_ffmpeg
def test_vmaf_falls_with_noise(clip):
    m = METRICS.get("vmaf")()
    means = [m(clip, _noisy(clip, s)) for s in (0, 4, 12, 30, 60)]
    assert all(a > b for a, b in zip(means, means[1:])), means


@needs_ffmpeg
def test_vmaf_matches_a_direct_ffmpeg_run(clip, tmp_path):
    test = _noisy(clip, 8)
    ours = METRICS.get("vmaf")().frame_scores(clip, test)
    ref, dis = _y4m(tmp_path, "ref", clip), _y4m(tmp_path, "dis", test)
    _direct(tmp_path, "[0:v][1:v]libvmaf=log_fmt=json:log_path=direct.json", dis, ref)
    frames = json.loads((tmp_path / "direct.json").read_text())["frames"]
    direct = np.array([f["metrics"]["vmaf"] for f in frames])
    np.testing.assert_allclose(ours, direct, rtol=0, atol=1e-6)  # the log's 6 decimals


@needs_ffmpeg
@pytest.mark.parametrize("name", ["vmaf", "xpsnr"])
def test_chunking_does_not_change_temporal_metrics(clip, name):
    """One process sees the clip whatever its chunks: equal to one chunk, while
    scoring each chunk as a clip of its own differs (motion / temporal activity
    restart at every chunk)."""
    m = METRICS.get(name)()
    test = _noisy(clip, 8)
    whole = frame_scores({name: m}, [(clip, test)])[name]
    chunks = [(0, 3), (3, 4), (4, 8)]
    pieces = frame_scores({name: m}, paired_chunks((clip[a:b] for a, b in chunks),
                                                   (test[a:b] for a, b in ((0, 5), (5, 8)))))[name]
    assert pieces.tobytes() == whole.tobytes()
    alone = np.concatenate([m.frame_scores(clip[a:b], test[a:b]) for a, b in chunks])
    assert not np.array_equal(alone, whole)


# -- xpsnr ------------------------------------------------------------------------------
@needs_ffmpeg
def test_xpsnr_self_is_the_cap_and_falls_with_noise(clip):
    m = METRICS.get("xpsnr")()
    assert np.all(m.frame_scores(clip, clip.copy()) == PSNR_CAP_DB)
    means = [m(clip, _noisy(clip, s)) for s in (2, 6, 18, 50)]
    assert all(a > b for a, b in zip(means, means[1:])) and means[0] < PSNR_CAP_DB, means


@needs_ffmpeg
def test_xpsnr_matches_a_direct_ffmpeg_run(clip, tmp_path):
    """The reported value is the per-frame minimum over the Y, U, V planes (the
    combination of the filter's own summary); the reference is the first input."""
    test = _noisy(clip, 8)
    ours = METRICS.get("xpsnr")().frame_scores(clip, test)
    ref, dis = _y4m(tmp_path, "ref", clip), _y4m(tmp_path, "dis", test)
    _direct(tmp_path, "[0:v][1:v]xpsnr=stats_file=direct.log", ref, dis)
    rows = [ln.split() for ln in (tmp_path / "direct.log").read_text().splitlines()
            if ln.startswith("n:")]
    planes = np.array([[float(r[4]), float(r[7]), float(r[10])] for r in rows])
    assert planes.shape == (8, 3) and np.all(planes[:, 0] < planes[:, 1:].min(axis=1))
    np.testing.assert_array_equal(ours, planes.min(axis=1))


# -- FFmpeg: sizes, errors, processes ---------------------------------------------------
@needs_ffmpeg
def test_odd_sizes_score_and_small_ones_fail_up_front(clip, monkeypatch):
    odd = clip[:3, :45, :63].copy()
    for name in ("vmaf", "xpsnr"):
        v = METRICS.get(name)().frame_scores(odd, _noisy(odd, 8))
        assert v.shape == (3,) and np.all(np.isfinite(v))
    started = []
    monkeypatch.setattr(metrics_ffmpeg.subprocess, "Popen",
                        lambda *a, **k: started.append(a) or pytest.fail("FFmpeg started"))
    with pytest.raises(ValueError, match=r"vmaf needs frames of at least 32x32 px.*got 31x80"):
        METRICS.get("vmaf")().frame_scores(clip[:2, :31], clip[:2, :31])
    with pytest.raises(ValueError, match=r"xpsnr needs .*2025 pixels.*got 40x50"):
        METRICS.get("xpsnr")().frame_scores(clip[:2, :40, :50], clip[:2, :40, :50])
    assert not started


@needs_ffmpeg
def test_frame_size_change_within_a_clip_fails(clip):
    s = METRICS.get("xpsnr")().session()
    try:
        s.feed(clip[:2], clip[:2])
        with pytest.raises(ValueError, match="frame size changed within the clip from 64x80 to 48x80"):
            s.feed(clip[2:4, :48], clip[2:4, :48])
    finally:
        s.abort()


@pytest.fixture
def spawned(monkeypatch):
    """The FFmpeg processes the sessions start."""
    procs = []
    real = subprocess.Popen

    def popen(*a, **k):
        procs.append(real(*a, **k))
        return procs[-1]

    monkeypatch.setattr(metrics_ffmpeg.subprocess, "Popen", popen)
    return procs


@needs_ffmpeg
def test_an_exception_mid_stream_ends_the_child(clip, spawned):
    def pairs():
        yield clip[:3], clip[:3]
        yield clip[3:5], clip[3:5]
        raise OSError("the receiver broke")

    metrics = {"vmaf": METRICS.get("vmaf")(), "xpsnr": METRICS.get("xpsnr")()}
    with pytest.raises(OSError, match="the receiver broke"):
        frame_scores(metrics, pairs())
    assert len(spawned) == 2 and all(p.poll() is not None for p in spawned)


@needs_ffmpeg
def test_another_metric_failing_aborts_the_session(clip, spawned):
    class Broken(METRICS.get("psnr")):
        def frame_scores(self, ref, test):
            raise ZeroDivisionError("broken metric")

    with pytest.raises(ZeroDivisionError):
        frame_scores({"vmaf": METRICS.get("vmaf")(), "broken": Broken()}, [(clip, clip)])
    assert len(spawned) == 1 and spawned[0].poll() is not None


@needs_ffmpeg
def test_ffmpeg_error_raises_with_its_stderr(clip, monkeypatch, spawned):
    monkeypatch.setattr(metrics_ffmpeg.VMAF, "graph", lambda self: "[0:v][1:v]nosuchfilter")
    with pytest.raises(RuntimeError, match=r"(?s)vmaf: FFmpeg exited with .*nosuchfilter"):
        METRICS.get("vmaf")().frame_scores(clip, clip)
    assert spawned[0].poll() is not None


@needs_ffmpeg
def test_a_slow_ffmpeg_is_killed_at_the_time_limit(clip, monkeypatch, spawned):
    slow = metrics_ffmpeg.XPSNR().graph() + ",realtime=speed=0.02"  # 8 frames: 16 s
    monkeypatch.setattr(metrics_ffmpeg.XPSNR, "graph", lambda self: slow)
    monkeypatch.setattr(metrics_ffmpeg.XPSNR, "time_limit", lambda self, *a: 0.5)
    with pytest.raises(RuntimeError, match="xpsnr: FFmpeg .*killed"):
        METRICS.get("xpsnr")().frame_scores(clip, clip)
    assert spawned[0].poll() is not None


# -- availability -----------------------------------------------------------------------
def _names_and_reasons(names):
    ok, missing = resolve_metrics(names)
    return sorted(ok), missing


def test_missing_binary_makes_them_unavailable(monkeypatch, clip):
    import imageio_ffmpeg

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: "/nonexistent/ffmpeg")
    ok, missing = _names_and_reasons(["psnr", "vmaf", "xpsnr"])
    assert ok == ["psnr"] and set(missing) == {"vmaf", "xpsnr"}
    assert missing["vmaf"].startswith("cannot run FFmpeg /nonexistent/ffmpeg")
    with pytest.raises(RuntimeError, match="vmaf is unavailable: cannot run FFmpeg"):
        METRICS.get("vmaf")().frame_scores(clip, clip)  # never a number

    def none():
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", none)
    assert "imageio-ffmpeg has no FFmpeg binary: No ffmpeg exe" in resolve_metrics(["xpsnr"])[1]["xpsnr"]


def test_binary_without_the_filter(monkeypatch, tmp_path):
    import imageio_ffmpeg

    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Filters:'\necho ' T. xpsnr  VV->V  Calculate XPSNR.'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(fake))
    ok, missing = _names_and_reasons(["vmaf", "xpsnr"])
    assert ok == ["xpsnr"] and missing == {
        "vmaf": f"FFmpeg {fake} has no libvmaf filter (an FFmpeg built with --enable-libvmaf)"}
    fake.write_text("#!/bin/sh\necho 'broken build' >&2\nexit 3\n")
    metrics_ffmpeg.ffmpeg_filters.cache_clear()
    assert resolve_metrics(["vmaf"])[1]["vmaf"] == f"FFmpeg {fake} -filters exited with 3: broken build"
    metrics_ffmpeg.ffmpeg_filters.cache_clear()


def test_missing_piq_makes_them_unavailable(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "piq", None)  # import piq -> ImportError
    ok, missing = _names_and_reasons(["psnr", *PIQ])
    assert ok == ["psnr"] and all(missing[n] == "needs piq 0.8.0: pip install 'lgvsc[video]'"
                                  for n in PIQ)


def test_listed_with_their_arrows():
    ok, missing = resolve_metrics(["vmaf", "xpsnr", *PIQ])
    assert set(ok) | set(missing) == {"vmaf", "xpsnr", *PIQ}
    assert set(PIQ) <= set(ok)
    assert axis_label("vmaf") == "VMAF \u2191" and axis_label("xpsnr") == "XPSNR [dB] \u2191"
    for n in PIQ:
        arrow = "\u2193" if n in LOWER_IS_BETTER else "\u2191"
        assert axis_label(n) == f"{n.upper()} {arrow}"
        assert METRICS.get(n).higher_is_better == (n not in LOWER_IS_BETTER)


# -- piq --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pair():
    """A known pair: 3 frames of 176x184 (IW-SSIM needs 161 px) of smooth content and
    the same frames with noise (fixed seed)."""
    import cv2

    rng = np.random.default_rng(7)
    base = [cv2.resize(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), (184, 176),
                       interpolation=cv2.INTER_CUBIC) for _ in range(3)]
    ref = np.stack(base)
    return ref, _noisy(ref, 12, seed=8)


@pytest.mark.parametrize("name", PIQ)
def test_piq_metric_agrees_with_a_direct_piq_call(name, pair, monkeypatch):
    import piq
    import torch

    from lgvsc.sim import metrics_piq

    ref, test = pair
    fn = {"vif": piq.vif_p, "ms_gmsd": piq.multi_scale_gmsd,
          "iw_ssim": piq.information_weighted_ssim}.get(name) or getattr(piq, name)
    to = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    direct = fn(to(test), to(ref), data_range=1.0, reduction="none").numpy()
    monkeypatch.setattr(metrics_piq, "PIXELS_PER_BATCH", 2 * 176 * 184)  # batches of 2 and 1
    m = METRICS.get(name)()
    ours = m.frame_scores(ref, test)
    np.testing.assert_allclose(ours, direct, rtol=1e-5, atol=1e-6)
    best = 0.0 if name in LOWER_IS_BETTER else 1.0
    np.testing.assert_allclose(m.frame_scores(ref, ref.copy()), best, atol=1e-4)
    lo, hi = METRICS.get(name).bounds
    assert np.all((ours >= lo) & (ours <= hi)) and not np.allclose(ours, best, atol=1e-3)


def test_piq_metrics_download_nothing(pair, monkeypatch):
    import socket

    import torch

    def refuse(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    from piq.utils import common

    monkeypatch.setattr(common, "download_tensor", refuse)
    ref, test = pair
    for name in PIQ:
        assert np.all(np.isfinite(METRICS.get(name)().frame_scores(ref[:1], test[:1]))), name


@pytest.mark.parametrize("name,shape,minimum", [
    ("haarpsi", (15, 64), "16x16"), ("vif", (64, 40), "41x41"), ("ms_gmsd", (16, 64), "17x17"),
    ("iw_ssim", (160, 200), "161x161"), ("fsim", (1, 64), "2x2"),
    ("dss", (7, 200), "8x8"), ("dss", (24, 24), "11 whole 8x8 blocks")])
def test_piq_size_minimums_fail_up_front(name, shape, minimum, monkeypatch):
    from lgvsc.sim import metrics_piq

    monkeypatch.setattr(metrics_piq.PiqMetric, "score", lambda *a: pytest.fail("piq was called"))
    x = np.zeros((2, *shape, 3), np.uint8)
    with pytest.raises(ValueError, match=f"{name} needs frames of at least {minimum}.*got "
                                         f"{shape[0]}x{shape[1]}"):
        METRICS.get(name)().frame_scores(x, x)
