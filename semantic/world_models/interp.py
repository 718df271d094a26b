"""``interp``: the embedded world model, flow-guided bidirectional interpolation.

Between the decoded first and last keyframes of a segment (``L`` frames apart):

1. dense optical flow both ways, ``F01`` (first -> last) and ``F10`` (OpenCV DIS);
2. refinement with the transmitted motion prior (``request.flow``, px/frame,
   scaled by ``L``) where the two flows disagree (forward-backward error above
   ``consistency_px``, typically occlusions or flow failures on noisy keyframes);
3. frame ``t = i / L`` is ``first`` warped by ``t F01`` and ``last`` warped by
   ``(1 - t) F10`` (backward warping with the flow at the target pixel), blended
   with weights ``(1 - t) v0`` and ``t v1``, where ``v0``, ``v1`` are the
   forward-backward consistency masks: a pixel occluded in one keyframe is
   taken from the other.

When the keyframes do not correspond (fewer than ``min_consistent`` of the
pixels pass the forward-backward check, e.g. across a shot cut, which SKEM
puts at the end of a segment), blending would cross-fade two scenes; the
segment then holds the first keyframe until the last frame instead.

Any segment length works: 1 frame returns the first keyframe, 2 frames the
two keyframes. The caption is not used (no generative model here).
"""

from __future__ import annotations

import numpy as np

from ..side_info import estimate_flow
from . import WORLD_MODELS, SegmentRequest, WorldModel


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` at ``x + flow(x)`` (bilinear, border replicate), float32."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _consistency(f_ab: np.ndarray, f_ba: np.ndarray, tol: float) -> np.ndarray:
    """1 where following ``f_ab`` then ``f_ba`` returns within ``tol`` px, else 0 (float32)."""
    back = _warp(f_ba, f_ab)
    err = np.linalg.norm(f_ab + back, axis=-1)
    return (err <= tol).astype(np.float32)


@WORLD_MODELS.register("interp")
class FlowInterpolator(WorldModel):
    """:param method: flow method (``dis`` | ``farneback``).
    :param consistency_px: forward-backward tolerance in pixels.
    :param min_consistent: fraction of consistent pixels below which the keyframes
        are taken to show different scenes (no blending)."""

    def __init__(self, method: str = "dis", consistency_px: float = 1.5,
                 min_consistent: float = 0.25):
        if method not in ("dis", "farneback"):
            raise ValueError(f"method must be 'dis' or 'farneback', got {method!r}")
        if not consistency_px > 0:
            raise ValueError(f"consistency_px must be > 0, got {consistency_px}")
        if not 0 <= min_consistent < 1:
            raise ValueError(f"min_consistent must be in [0, 1), got {min_consistent}")
        self.method, self.tol, self.min_consistent = method, consistency_px, min_consistent

    def valid_length(self, n: int) -> int:
        """Every count: ``max(1, n)`` (interpolation has no frame-count grid)."""
        return max(1, n)

    def _flows(self, req: SegmentRequest, span: int):
        f01 = estimate_flow(req.first, req.last, self.method)
        f10 = estimate_flow(req.last, req.first, self.method)
        v0, v1 = _consistency(f01, f10, self.tol), _consistency(f10, f01, self.tol)
        if req.flow is not None:
            prior = req.flow.astype(np.float32) * span
            f01 = np.where(v0[..., None] > 0, f01, prior)
            f10 = np.where(v1[..., None] > 0, f10, -prior)
        return f01, f10, v0, v1

    def generate(self, request, length, last_index=None, generator=None):
        return np.concatenate(list(self.generate_chunks(request, length, last_index, generator)))

    def generate_chunks(self, request, length, last_index=None, generator=None, size=16):
        """Frames a chunk at a time: the two flows are estimated once per segment and
        each frame is warped when its chunk is read (working set: the flows and masks
        of one segment plus one chunk, whatever the segment's length)."""
        first = request.first
        if request.last is None or length == 1:
            for s in range(0, length, size):
                yield np.repeat(first[None], min(size, length - s), axis=0)
            return
        span = (length - 1) if last_index is None else last_index
        if span < 1:
            raise ValueError(f"last_index must be >= 1, got {span}")
        frame = self._between(request, span) if span > 1 else None
        for s in range(0, length, size):
            out = np.empty((min(size, length - s), *first.shape), np.uint8)
            for i in range(s, s + len(out)):
                out[i - s] = first if i == 0 else request.last if i >= span else frame(i)
            yield out

    def _between(self, request, span: int):
        """frame(i) for 0 < i < span: the blend of the two warped keyframes, or the
        first keyframe when they show different scenes (no cross-fade)."""
        first = request.first
        f01, f10, v0, v1 = self._flows(request, span)
        if min(v0.mean(), v1.mean()) < self.min_consistent:
            return lambda i: first

        def frame(i):
            t = i / span
            a = _warp(first, -t * f01)  # first keyframe moved forward by t
            b = _warp(request.last, -(1 - t) * f10)
            wa = ((1 - t) * (v0 + 1e-3))[..., None]
            wb = (t * (v1 + 1e-3))[..., None]
            return np.clip(np.rint((wa * a + wb * b) / (wa + wb)), 0, 255).astype(np.uint8)

        return frame
