"""Weight-free image-quality metrics from piq 0.8.0, per frame.

Each frame pair is scored on RGB in [0, 1] (float32, ``data_range=1.``), in batches
of at most :data:`PIXELS_PER_BATCH` pixels (bounded memory for any frame size), on
the scenario's device, with ``reduction='none'``; piq's argument order is kept:
``x`` = the received frame, ``y`` = the reference (VIF and IW-SSIM are not
symmetric). None of these functions loads weights or downloads anything
(piq's LPIPS, DISTS, PieAPP, BRISQUE and CLIP-IQA do; they are not registered).

Frames smaller than a metric's minimum fail up front with a ``ValueError`` naming
the metric and the minimum: piq's own checks (HaarPSI, VIF, MS-GMSD, IW-SSIM, DSS)
and sizes at which piq silently returns NaN (DSS, FSIM).

Two inputs piq cannot score are left as piq leaves them (they are not special-cased
here): HaarPSI of two all-black frames is ``inf`` (its pooling weights are all zero),
and IW-SSIM raises piq's ``RuntimeError`` (a singular matrix) on flat frames.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import METRICS, Metric

#: pixels (frames x H x W) scored in one piq call
PIXELS_PER_BATCH = 1 << 20


class PiqMetric(Metric):
    """A piq function of (received, reference) batches ``[b, 3, H, W]`` in [0, 1]."""

    #: the smallest height and width piq can score
    min_side = 1

    def unavailable_reason(self):
        try:
            import piq  # noqa: F401
        except ImportError:
            return "needs piq 0.8.0: pip install 'lgvsc[video]'"
        return None

    def check_size(self, height: int, width: int) -> None:
        """``ValueError`` naming the metric when frames of ``height x width`` are too small."""
        if min(height, width) < self.min_side:
            raise ValueError(f"{self.name} needs frames of at least {self.min_side}x{self.min_side} "
                             f"px, got {height}x{width}")

    def score(self, x, y):
        """piq's per-image values ``[b]`` of received ``x`` against reference ``y``
        (float32 tensors ``[b, 3, H, W]`` in [0, 1])."""
        raise NotImplementedError

    def frame_scores(self, ref, test):
        """Per-frame values ``[n]`` (float32) of uint8 RGB ``[n, H, W, 3]`` clips."""
        import torch

        ref, test = np.asarray(ref), np.asarray(test)
        if ref.shape != test.shape:
            raise ValueError(f"{self.name}: shape mismatch: reference {ref.shape} vs test {test.shape}")
        self.check_size(*ref.shape[1:3])
        batch = max(1, PIXELS_PER_BATCH // (ref.shape[1] * ref.shape[2]))
        out = []
        with torch.no_grad():
            for i in range(0, len(ref), batch):
                x, y = (torch.from_numpy(np.ascontiguousarray(a[i:i + batch])).to(self.device)
                        .permute(0, 3, 1, 2).float() / 255 for a in (test, ref))
                out.append(self.score(x, y).reshape(-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)


@METRICS.register("haarpsi")
class HaarPSI(PiqMetric):
    """HaarPSI (Reisenhofer et al. 2018), in [0, 1], higher is better (1: identical).
    piq needs 16 px a side (its coarsest Haar filter, 3 scales); two all-black frames
    give ``inf`` (module docstring)."""

    name = "haarpsi"
    bounds = (0.0, 1.0)
    min_side = 16

    def score(self, x, y):
        from piq import haarpsi

        return haarpsi(x, y, data_range=1.0, reduction="none")


@METRICS.register("vif")
class VIF(PiqMetric):
    """VIF in the pixel domain (``piq.vif_p``, Sheikh & Bovik 2006) on luma, higher is
    better: 1 for identical frames, 0 when no information survives, above 1 when the
    received frame has more contrast than the reference. piq needs 41 px a side."""

    name = "vif"
    bounds = (0.0, math.inf)
    min_side = 41

    def score(self, x, y):
        from piq import vif_p

        return vif_p(x, y, data_range=1.0, reduction="none")


@METRICS.register("fsim")
class FSIM(PiqMetric):
    """FSIMc (Zhang et al. 2011, with the chromatic term, piq's default), in [0, 1],
    higher is better. piq states no minimum; 1 px frames give NaN, so 2 px a side."""

    name = "fsim"
    bounds = (0.0, 1.0)
    min_side = 2

    def score(self, x, y):
        from piq import fsim

        return fsim(x, y, data_range=1.0, reduction="none")


@METRICS.register("gmsd")
class GMSD(PiqMetric):
    """GMSD (Xue et al. 2013) on luma: the standard deviation of the gradient-magnitude
    similarity map, lower is better (0: identical); piq documents [0, 1]."""

    name = "gmsd"
    bounds = (0.0, 1.0)
    higher_is_better = False

    def score(self, x, y):
        from piq import gmsd

        return gmsd(x, y, data_range=1.0, reduction="none")


@METRICS.register("ms_gmsd")
class MultiScaleGMSD(PiqMetric):
    """Multi-scale GMSD (``piq.multi_scale_gmsd``, Zhang et al. 2017; 4 scales, luma,
    piq's default ``chromatic=False``), lower is better (0: identical), in [0, 1].
    piq needs 2^4 + 1 = 17 px a side."""

    name = "ms_gmsd"
    bounds = (0.0, 1.0)
    higher_is_better = False
    min_side = 17

    def score(self, x, y):
        from piq import multi_scale_gmsd

        return multi_scale_gmsd(x, y, data_range=1.0, reduction="none")


@METRICS.register("mdsi")
class MDSI(PiqMetric):
    """MDSI (Nafchi et al. 2016), lower is better (0: identical); a deviation with no
    fixed upper end (typically below 1)."""

    name = "mdsi"
    bounds = (0.0, math.inf)
    higher_is_better = False

    def score(self, x, y):
        from piq import mdsi

        return mdsi(x, y, data_range=1.0, reduction="none")


@METRICS.register("vsi")
class VSI(PiqMetric):
    """VSI (Zhang et al. 2014; saliency from piq's SDSP at 256x256), in [0, 1], higher
    is better (1: identical)."""

    name = "vsi"
    bounds = (0.0, 1.0)

    def score(self, x, y):
        from piq import vsi

        return vsi(x, y, data_range=1.0, reduction="none")


@METRICS.register("dss")
class DSS(PiqMetric):
    """DSS (Balanov et al. 2015), DCT-subband similarity on luma, in [0, 1], higher is
    better (1: identical). piq needs 8 px a side (the 8x8 DCT); it also pools the
    worst 5 % of each subband's (H/8) x (W/8) values and returns NaN when that is no
    value at all, so frames need :attr:`MIN_BLOCKS` 8x8 blocks."""

    name = "dss"
    bounds = (0.0, 1.0)
    min_side = 8
    #: fewest whole 8x8 blocks: round(0.05 * blocks) >= 1
    MIN_BLOCKS = 11

    def check_size(self, height, width):
        super().check_size(height, width)
        if (height // 8) * (width // 8) < self.MIN_BLOCKS:
            raise ValueError(f"dss needs frames of at least {self.MIN_BLOCKS} whole 8x8 blocks "
                             f"(e.g. 32x24 px; piq returns NaN below), got {height}x{width}")

    def score(self, x, y):
        from piq import dss

        return dss(x, y, data_range=1.0, reduction="none")


@METRICS.register("iw_ssim")
class IWSSIM(PiqMetric):
    """IW-SSIM (``piq.information_weighted_ssim``, Wang & Li 2011; 5 scales, luma), in
    [0, 1], higher is better (1: identical). piq needs (11 - 1) * 2^4 + 1 = 161 px a
    side; flat frames raise piq's ``RuntimeError`` (module docstring)."""

    name = "iw_ssim"
    bounds = (0.0, 1.0)
    min_side = 161

    def score(self, x, y):
        from piq import information_weighted_ssim

        return information_weighted_ssim(x, y, data_range=1.0, reduction="none")
