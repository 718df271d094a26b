"""Long procedural video files, written frame by frame (memory tests, benchmarks).

:func:`write_clip` renders ``frames`` frames of ``height`` x ``width`` and encodes
them as H.264 (libx264 through PyAV, CRF 18, 4:2:0) into an ``.mp4`` file, one
frame at a time, so a clip of any length is made in the memory of a few frames.
Every ``cut_every`` frames the scene changes (a hard cut): a new two-colour
textured background drifting with a camera pan and three discs moving in
straight lines that bounce off the edges. Only ``np.random.default_rng(seed)``
is used: the same arguments write the same pixels.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def _scene(rng: np.random.Generator, h: int, w: int) -> dict:
    unit = min(h, w) / 128
    return dict(c0=rng.uniform(20, 235, 3).astype(np.float32),
                c1=rng.uniform(20, 235, 3).astype(np.float32),
                freq=rng.uniform(0.01, 0.05, 2) / unit, pan=rng.uniform(-1.5, 1.5, 2) * unit,
                pos=rng.uniform(0, 1, (3, 2)) * (w, h), vel=rng.uniform(-2, 2, (3, 2)) * unit,
                radius=rng.uniform(0.06, 0.16, 3) * min(h, w),
                colour=rng.uniform(0, 255, (3, 3)).astype(np.float32))


def _render(sc: dict, t: int, h: int, w: int) -> np.ndarray:
    ox, oy = sc["pan"] * t
    tx = 0.25 * np.sin((np.arange(w) + ox) * sc["freq"][0] * 2 * np.pi).astype(np.float32)
    ty = 0.25 * np.sin((np.arange(h) + oy) * sc["freq"][1] * 2 * np.pi).astype(np.float32)
    tex = 0.5 + ty[:, None] + tx[None, :]
    img = sc["c0"] + (sc["c1"] - sc["c0"]) * tex[..., None]
    for p, v, r, c in zip(sc["pos"], sc["vel"], sc["radius"], sc["colour"]):
        x, y = (p + v * t) % (2 * w, 2 * h)  # bounce: fold the straight path back
        x, y = (2 * w - x if x > w else x), (2 * h - y if y > h else y)
        x0, x1 = max(0, int(x - r - 1)), min(w, int(x + r + 2))
        y0, y1 = max(0, int(y - r - 1)), min(h, int(y + r + 2))
        if x0 >= x1 or y0 >= y1:
            continue
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - x
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - y
        inside = np.clip(r - np.sqrt(dx * dx + dy * dy) + 0.5, 0, 1)[..., None]
        box = img[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = box + (c - box) * inside
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_clip(path: str | Path, frames: int, height: int, width: int, fps: int = 25,
               seed: int = 0, cut_every: int = 250) -> Path:
    """Write the clip to ``path`` (its folder is created) and return the path."""
    import av

    if frames < 1 or height < 16 or width < 16 or height % 2 or width % 2:
        raise ValueError(f"need frames >= 1 and even height, width >= 16; got {frames}, "
                         f"{height}x{width}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(fps, 1))
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"crf": "18", "preset": "veryfast"}
        scene = None
        for i in range(frames):
            if i % cut_every == 0:
                scene = _scene(rng, height, width)
            frame = av.VideoFrame.from_ndarray(_render(scene, i % cut_every, height, width),
                                               format="rgb24")
            out.mux(st.encode(frame))
        out.mux(st.encode(None))
    tmp.replace(path)
    return path
