"""Video quality metrics, registered by name (``metrics:`` in a video scenario).

Every metric is computed per frame on uint8 RGB frames ``[F, H, W, 3]`` and
averaged over frames; a trial scores its clip chunk by chunk
(:func:`frame_scores`) and keeps the per-frame values. Each metric scores a clip
through a :class:`MetricSession` (:meth:`Metric.session`): fed one chunk pair at a
time, it returns the per-frame values of the whole clip at the end, so that a
temporal metric (``vmaf``, ``xpsnr``: :mod:`lgvsc.sim.metrics_ffmpeg`) sees the clip
continuously across chunk boundaries; the default session scores each chunk on its
own. Metrics that need weights (``lpips``, ``dists``, ``clip``) or a binary
(``vmaf``, ``xpsnr``) report why they are unavailable instead of a number; the
runner records them as unavailable (never as zeros) and says so once at the start.
The weight-free piq metrics (``haarpsi``, ``vif``, ``fsim``, ...) live in
:mod:`lgvsc.sim.metrics_piq`.
"""

from __future__ import annotations

import math

import numpy as np

from ..link.registry import Registry

METRICS: Registry[type["Metric"]] = Registry("metric")

#: per-frame PSNR cap for identical frames (dB); keeps averages finite
PSNR_CAP_DB = 100.0


class Metric:
    name = ""
    #: the direction of better quality (plots put it in the axis label as an arrow)
    higher_is_better = True
    #: the range of the metric's values; summary intervals are clipped to it
    bounds: tuple[float, float] = (-math.inf, math.inf)
    #: the unit of the values ("dB"), empty when dimensionless
    unit = ""

    def __init__(self, device: str = "cpu"):
        self.device = device

    def unavailable_reason(self) -> str | None:
        """None when the metric can run here, else a one-line reason."""
        return None

    def frame_scores(self, ref: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Per-frame values ``[n]`` (float) of uint8 RGB clips ``ref``, ``test``
        ``[n, H, W, 3]``; frames are scored as a clip of their own."""
        raise NotImplementedError

    def session(self) -> "MetricSession":
        """A fresh :class:`MetricSession` that scores one clip fed chunk by chunk
        (default: :meth:`frame_scores` per chunk, the frames independent)."""
        return ChunkSession(self)

    def __call__(self, ref: np.ndarray, test: np.ndarray) -> float:
        """Mean over frames of the whole clips ``ref`` and ``test`` (read into arrays)."""
        ref, test = np.asarray(ref), np.asarray(test)
        if ref.shape != test.shape:
            raise ValueError(f"shape mismatch: reference {ref.shape} vs test {test.shape}")
        return float(np.mean(self.frame_scores(ref, test)))


class MetricSession:
    """One metric scoring one clip that arrives in chunks: :meth:`feed` each chunk
    pair in order, then :meth:`close` for the per-frame values of every frame fed;
    :meth:`abort` instead when scoring stops early (an error anywhere)."""

    def feed(self, ref: np.ndarray, test: np.ndarray) -> None:
        """Score (or start scoring) the next frames: uint8 RGB ``[n, H, W, 3]`` each,
        equal shapes; the arrays may be reused by the caller once this returns."""
        raise NotImplementedError

    def close(self) -> np.ndarray:
        """The per-frame values ``[frames fed]`` (float), in feeding order; the session
        is spent afterwards."""
        raise NotImplementedError

    def abort(self) -> None:
        """Release what the session holds (a child process, temporary files); safe to
        call at any point, also after :meth:`close`, and never raises."""


class ChunkSession(MetricSession):
    """The default session: :meth:`Metric.frame_scores` of each chunk, concatenated
    (bit-identical to scoring the chunks one call each)."""

    def __init__(self, metric: Metric):
        self.metric = metric
        self._parts: list[np.ndarray] = []

    def feed(self, ref, test):
        self._parts.append(np.asarray(self.metric.frame_scores(ref, test)))

    def close(self):
        parts, self._parts = self._parts, []
        return np.concatenate(parts) if parts else np.zeros(0)

    def abort(self):
        self._parts = []


@METRICS.register("psnr")
class PSNR(Metric):
    """PSNR on 8-bit RGB frames, per frame (capped at 100 dB for identical frames)."""

    name = "psnr"
    bounds = (0.0, PSNR_CAP_DB)
    unit = "dB"

    def frame_scores(self, ref, test):
        mse = np.empty(len(ref))
        for i, (a, b) in enumerate(zip(ref, test)):  # float64 copies of one frame at a time
            d = a.astype(np.float64) - b.astype(np.float64)
            mse[i] = (d * d).reshape(-1).mean()
        with np.errstate(divide="ignore"):
            psnr = 10 * np.log10(255.0**2 / mse)
        return np.minimum(psnr, PSNR_CAP_DB)


def _grey(frames: np.ndarray) -> np.ndarray:
    import cv2

    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


@METRICS.register("ssim")
class SSIM(Metric):
    """SSIM on greyscale frames (scikit-image, data range 255), as the authors' code."""

    name = "ssim"
    bounds = (-1.0, 1.0)

    def frame_scores(self, ref, test):
        from skimage.metrics import structural_similarity

        return np.array([structural_similarity(a, b, data_range=255)
                         for a, b in zip(_grey(ref), _grey(test))])


@METRICS.register("ssim_rgb")
class SSIMRGB(Metric):
    """SSIM averaged over the R, G, B channels (scikit-image)."""

    name = "ssim_rgb"
    bounds = (-1.0, 1.0)

    def frame_scores(self, ref, test):
        from skimage.metrics import structural_similarity

        return np.array([structural_similarity(a, b, data_range=255, channel_axis=-1)
                         for a, b in zip(ref, test)])


@METRICS.register("ms_ssim")
class MSSSIM(Metric):
    """MS-SSIM on RGB (pytorch-msssim, 5 scales). The Gaussian window (11 by
    default) shrinks to the largest odd size that frames smaller than 161 px
    allow; frames of 32 px or less are not supported."""

    name = "ms_ssim"
    bounds = (0.0, 1.0)

    def frame_scores(self, ref, test):
        import torch
        from pytorch_msssim import ms_ssim

        side = min(ref.shape[1:3])
        win = next((w for w in range(11, 2, -2) if (w - 1) * 16 < side), None)
        if win is None:
            raise ValueError(f"ms_ssim needs frames larger than 32 px, got {ref.shape[1:3]}")
        x = torch.from_numpy(ref).permute(0, 3, 1, 2).float()
        y = torch.from_numpy(test).permute(0, 3, 1, 2).float()
        return ms_ssim(x, y, data_range=255, size_average=False, win_size=win).numpy()


def paired_chunks(ref_chunks, test_chunks):
    """Equal-length pairs ``(ref, test)`` from two chunk iterators whose chunk sizes
    may differ; ``RuntimeError`` when one holds more frames than the other."""
    refs, tests = iter(ref_chunks), iter(test_chunks)
    a = b = None
    seen = 0
    while True:
        if a is None or not len(a):
            a = next(refs, None)
        if b is None or not len(b):
            b = next(tests, None)
        if a is None or b is None:
            if a is not None or b is not None:
                extra = "received" if b is not None else "reference"
                raise RuntimeError(f"the {extra} video has more frames than the other "
                                   f"(both had {seen} so far)")
            return
        n = min(len(a), len(b))
        yield a[:n], b[:n]
        a, b, seen = a[n:], b[n:], seen + n


def frame_scores(metrics: dict[str, "Metric"], pairs) -> dict[str, np.ndarray]:
    """{name: per-frame values} of every metric over ``pairs`` of uint8 chunks
    ``(ref [n, H, W, 3], test [n, H, W, 3])`` (:func:`paired_chunks`), chunk by chunk:
    one :meth:`Metric.session` per metric sees every pair in order. On any exception
    (a bad pair, a metric failing, the pairs' iterator failing) every session is
    aborted (child processes end) and the exception propagates."""
    sessions: dict[str, MetricSession] = {}
    try:
        for name, m in metrics.items():
            sessions[name] = m.session()
        for ref, test in pairs:
            if ref.shape != test.shape:
                raise ValueError(f"shape mismatch: reference {ref.shape} vs test {test.shape}")
            for s in sessions.values():
                s.feed(ref, test)
        return {name: np.asarray(s.close()) for name, s in sessions.items()}
    except BaseException:
        for s in sessions.values():
            s.abort()
        raise


def axis_label(name: str) -> str:
    """How plots label metric ``name``: ``"PSNR [dB] \u2191"`` (the arrow points to
    better quality, as in the paper's figures); unknown names fail listing the valid."""
    cls = METRICS.get(name)
    unit = f" [{cls.unit}]" if cls.unit else ""
    arrow = "\u2191" if cls.higher_is_better else "\u2193"
    return f"{name.upper()}{unit} {arrow}"


def resolve_metrics(names: list[str], device: str = "cpu") -> tuple[dict[str, Metric], dict[str, str]]:
    """(metrics that can run, {name: reason} for those that cannot)."""
    ok, missing = {}, {}
    for n in names:
        m = METRICS.get(n)(device)
        reason = m.unavailable_reason()
        if reason:
            missing[n] = reason
        else:
            ok[n] = m
    return ok, missing


from . import metrics_deep  # noqa: E402,F401  (registers lpips, dists, clip)
from . import metrics_ffmpeg  # noqa: E402,F401  (registers vmaf, xpsnr)
from . import metrics_piq  # noqa: E402,F401  (registers haarpsi, vif, fsim, gmsd, ...)
