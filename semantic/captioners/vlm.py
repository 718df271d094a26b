"""``vlm``: one caption per segment from a local vision-language model (greedy).

The paper captions segments with a video captioner; here the segment is shown
as ``frames`` (default 4) evenly spaced frames, its first and last included, in
one multi-image prompt (``"Frame1: <image>\\nFrame2: <image>\\n...{prompt}"``),
through the checkpoint's chat template (see :mod:`~lgvsc.semantic.vlm_backend`).
``frames: 1`` shows the first frame only (``"<image>\\n{prompt}"``); a segment
shorter than ``frames`` shows each of its frames once. Every frame costs its
image tokens (InternVL: 256 per 448-px tile, 3 tiles for a 320x576 frame), so
``frames`` trades caption quality against prompt length.

Building a captioner loads nothing; the first caption loads the VLM through the
process's model cache, shared with scorers on the same folder, dtype and device.
"""

from __future__ import annotations

import numpy as np

from ...link.registry import bound_params
from ..vlm_backend import IMAGE, SharedVLM, VLMBackend, check_folder, check_settings, vlm_info
from . import CAPTIONERS, Captioner

#: default captioning instruction
CAPTION_PROMPT = "Describe this video segment in one sentence."


def sample_indices(length: int, n: int) -> list[int]:
    """``n`` evenly spaced frame indices of a ``length``-frame segment (first and last
    included for n > 1; fewer when the segment is shorter)."""
    if n == 1:
        return [0]
    return sorted(set(np.linspace(0, length - 1, n).round().astype(int).tolist()))


def caption_prompt(n_images: int, prompt: str) -> str:
    """The user turn for ``n_images`` images (``<image>`` markers) and the instruction."""
    if n_images == 1:
        return f"{IMAGE}\n{prompt}"
    return "".join(f"Frame{i + 1}: {IMAGE}\n" for i in range(n_images)) + prompt


@CAPTIONERS.register("vlm", weights="a local VLM folder (path:)", packages=("transformers",))
class VLMCaptioner(Captioner):
    """Caption = greedy decoding of the model's answer, stripped.

    :param path: local model directory or a Hugging Face repo id in the local cache.
    :param device: ``"auto"`` | ``"cpu"`` | ``"cuda[:N]"``.
    :param dtype: ``"auto"`` | ``"bfloat16"`` | ``"float16"`` | ``"float32"``.
    :param frames: frames shown per segment, evenly spaced, first and last included
        (default 4; 1 = its first frame only).
    :param max_new_tokens: caption length cap in tokens.
    :param prompt: the instruction.
    """

    def __init__(self, path, device: str = "auto", dtype: str = "auto", frames: int = 4,
                 max_new_tokens: int = 48, prompt: str = CAPTION_PROMPT):
        self._check_settings(frames, max_new_tokens, prompt)
        self.frames, self.max_new_tokens, self.prompt = frames, max_new_tokens, prompt
        self._vlm = SharedVLM(path, device=device, dtype=dtype)

    @property
    def backend(self) -> VLMBackend:
        """The shared backend, loaded on first use (model cache)."""
        return self._vlm.get()

    @property
    def key(self):
        """The model-cache key of this captioner's VLM."""
        return self._vlm.key

    @staticmethod
    def _check_settings(frames, max_new_tokens, prompt) -> None:
        for name, v in (("frames", frames), ("max_new_tokens", max_new_tokens)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not isinstance(prompt, str) or not prompt.strip() or IMAGE in prompt:
            raise ValueError(f"prompt must be a non-empty string without {IMAGE!r}, got {prompt!r}")

    @classmethod
    def check_weights(cls, **params) -> None:
        """The spec's settings and the checkpoint's layout
        (:func:`~lgvsc.semantic.vlm_backend.check_folder`), without loading anything;
        ValueError naming the key (``"path: ..."``)."""
        p = bound_params(cls, params)
        cls._check_settings(p["frames"], p["max_new_tokens"], p["prompt"])
        check_settings(p["device"], p["dtype"])
        check_folder(p["path"])

    @classmethod
    def model_info(cls, **params) -> list:
        """The VLM this spec loads (key and weight memory), without loading anything."""
        p = bound_params(cls, params)
        return [vlm_info(p["path"], p["device"], p["dtype"])]

    def caption(self, frames: np.ndarray, start: int = 0, end: int | None = None) -> str:
        """``frames`` uint8 [L, H, W, 3] (the segment) -> caption text."""
        if not (isinstance(frames, np.ndarray) and frames.ndim == 4 and len(frames) >= 1):
            raise ValueError(f"frames must be uint8 [L, H, W, 3] with L >= 1, got "
                             f"{getattr(frames, 'shape', type(frames).__name__)}")
        picked = [frames[i] for i in sample_indices(len(frames), self.frames)]
        b = self.backend
        enc = b.encode(b.chat(caption_prompt(len(picked), self.prompt)), picked)
        return b.generate(enc, self.max_new_tokens).text
