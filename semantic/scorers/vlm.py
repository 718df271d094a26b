"""``vlm``: PSSS from a vision-language model (the real tier), in two modes.

``mode="paper"`` -- what the authors' code does, per (keyframe, candidate) pair:

1. round 1: ONE greedy ``generate`` with both images (Image-1 = keyframe,
   Image-2 = candidate) asking :data:`~lgvsc.semantic.psss.DESCRIBE_PROMPT`;
   the text is split into two descriptions (:func:`split_descriptions`);
2. round 2: a text-only prompt ``psss_prompt(desc_1, desc_2, focus)`` through
   the chat template with the assistant generation prompt; P(Yes) and P(No)
   are read at the first answer position.

``mode="direct"`` -- both images in ONE prompt with the PSSS question
(``Info A = "Image-1: <image>"``, ``Info B = "Image-2: <image>"``), Yes/No read
at the answer position, nothing generated. It is made cheap by:

* the keyframe prefix (everything up to and including Image-1's tokens) is run
  once per keyframe; its KV cache is kept (the last ``prefixes`` keyframes) and
  copied for every candidate batch, so only the suffix (Image-2's tokens and
  the question) is processed per candidate;
* each frame's vision features (vision tower + projector) are computed once
  and kept in a bounded LRU keyed by a hash of the frame's bytes and shape,
  then injected in place of the image tokens' embeddings;
* candidates are scored ``batch`` at a time (one forward per batch; frames of
  one shape share a token layout, so no padding);
* Qwen2-VL / Qwen2.5-VL get explicit M-RoPE position ids for the suffix,
  computed on the full (prefix + suffix) sequence.

:meth:`VLMScorer.uncached_score` is the plain reference: one full forward of
the direct prompt, no cache, no batching, no feature reuse.

Counting rule (``self.cost``):

* ``forward_passes``: +1 per language-model invocation whatever its batch size
  (a direct prefix, a direct candidate batch, a round-2 judgement, an uncached
  forward), +1 per generated token of a ``generate`` call (each step is a
  forward; the first one is the prefill), and +1 per vision-tower invocation
  (whatever the number of images in it; the vision tower inside a full
  forward or a ``generate`` prefill counts as one).
* ``token_steps``: tokens through the language model = prompt tokens
  processed (summed over the batch rows, image tokens included) + tokens
  generated. Direct mode: the prefix's P tokens once per keyframe (when its
  cache is built), then S suffix tokens per candidate. Paper mode per pair:
  round-1 prompt + generated tokens + round-2 prompt. Vision-tower patches
  are not token-steps.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from ..psss import DESCRIBE_PROMPT, PSSS, psss_prompt
from ...link.registry import bound_params
from ..vlm_backend import IMAGE, VLMBackend, check_folder, check_settings, to_pil
from . import SCORERS, Scorer

MODES = ("direct", "paper")
#: Info A / Info B of the direct prompt
IMAGE_1, IMAGE_2 = f"Image-1: {IMAGE}", f"Image-2: {IMAGE}"
#: round-1 question of the paper mode
DESCRIBE_PAIR = f"{IMAGE_1}\n{IMAGE_2}\n{DESCRIBE_PROMPT}"


def direct_prompt(focus: str) -> str:
    """The PSSS question with both images inline (the user turn)."""
    return psss_prompt(IMAGE_1, IMAGE_2, focus)


_LABEL_2 = re.compile(r"(?i)\**\s*(?:image|picture|frame)[\s_-]*2\b\s*\**\s*[:.\-)]?\s*")
_LABEL_1 = re.compile(r"(?i)^\W*(?:image|picture|frame)[\s_-]*1\b\s*\**\s*[:.\-)]?\s*")


def split_descriptions(text: str) -> tuple[str, str]:
    """Round-1 answer -> (description of Image-1, description of Image-2), best effort.

    Splits at an "Image-2" label, else at the first line break, else after the
    first sentence; labels are stripped. If it cannot split (or a half is
    empty) the whole text is used for both.
    """
    text = text.replace(IMAGE, "image").strip()
    m = _LABEL_2.search(text)
    if m and m.start() > 0:
        a, b = text[:m.start()], text[m.end():]
    elif "\n" in text:
        a, b = text.split("\n", 1)
    else:
        parts = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)
        a, b = (parts[0], parts[1]) if len(parts) == 2 else ("", "")
    a, b = _LABEL_1.sub("", a).strip(), b.strip()
    return (a, b) if a and b else (text, text)


def frame_key(frame: np.ndarray) -> tuple:
    """Identity of a frame's content: (shape, 128-bit hash of its bytes)."""
    return frame.shape, hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=16).digest()


class LRU(OrderedDict):
    """A dict that keeps the ``size`` most recently used entries."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get(self, k, default=None):
        if k in self:
            self.move_to_end(k)
            return self[k]
        return default

    def put(self, k, v) -> None:
        self[k] = v
        self.move_to_end(k)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class Layout:
    """Token layout of the direct prompt for one (keyframe shape, candidate shape, focus).

    ``ids`` int64 [1, T]; ``split`` = P, the prefix length (through Image-1's
    tokens and its end-of-image token); ``pos`` Qwen M-RoPE int64 [3, 1, T] or None.
    """

    ids: torch.Tensor
    split: int
    pos: torch.Tensor | None

    @property
    def suffix_len(self) -> int:
        return self.ids.shape[1] - self.split


@dataclass
class Prefix:
    """The keyframe prefix's KV cache (batch 1) and its length."""

    cache: object
    length: int


def _check_frame(frame) -> None:
    to_pil(frame)  # raises ValueError naming the expected uint8 [H, W, 3]


@SCORERS.register("vlm", weights="a local VLM folder (path:)", packages=("transformers",))
class VLMScorer(Scorer):
    """PSSS from a local vision-language model (InternVL, Qwen2-VL, Qwen2.5-VL).

    :param path: local model directory or a Hugging Face repo id in the local cache.
    :param mode: ``"direct"`` (one prompt, both images, cached prefix) or ``"paper"``
        (describe, then judge the descriptions; the authors' code).
    :param device: ``"auto"`` | ``"cpu"`` | ``"cuda[:N]"``.
    :param dtype: ``"auto"`` | ``"bfloat16"`` | ``"float16"`` | ``"float32"``.
    :param batch: candidates per forward in direct mode (paper mode scores pair by pair).
    :param max_new_tokens: round-1 generation length cap (paper mode).
    :param min_new_tokens: round-1 minimum length (0 = stop at end of turn); set it to
        ``max_new_tokens`` to force realistic lengths with random-weight models.
    :param feature_cache: frames whose vision features are kept (LRU).
    :param prefixes: keyframe prefix KV caches kept (LRU).
    """

    #: round-1 text -> (description of Image-1, of Image-2); a subclass may replace it
    splitter = staticmethod(split_descriptions)

    def __init__(self, path, mode: str = "direct", device: str = "auto", dtype: str = "auto",
                 batch: int = 8, max_new_tokens: int = 48, min_new_tokens: int = 0,
                 feature_cache: int = 256, prefixes: int = 2):
        super().__init__()
        self._check_settings(mode, batch, max_new_tokens, min_new_tokens, feature_cache, prefixes)
        self.mode, self.batch = mode, batch
        self.max_new_tokens, self.min_new_tokens = max_new_tokens, min_new_tokens
        self.backend = VLMBackend(path, device=device, dtype=dtype)
        self._features_lru, self._prefixes = LRU(max(feature_cache, batch + 1)), LRU(prefixes)
        self._layouts = LRU(64)

    @staticmethod
    def _check_settings(mode, batch, max_new_tokens, min_new_tokens, feature_cache, prefixes):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        for name, v in (("batch", batch), ("max_new_tokens", max_new_tokens),
                        ("feature_cache", feature_cache), ("prefixes", prefixes)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not isinstance(min_new_tokens, int) or not 0 <= min_new_tokens <= max_new_tokens:
            raise ValueError(f"min_new_tokens must be an integer in [0, max_new_tokens={max_new_tokens}], "
                             f"got {min_new_tokens!r}")

    @classmethod
    def check_weights(cls, **params) -> None:
        """The spec's settings and the checkpoint's layout
        (:func:`~lgvsc.semantic.vlm_backend.check_folder`), without loading anything;
        ValueError naming the key (``"path: ..."``, ``"mode ..."``)."""
        p = bound_params(cls, params)
        cls._check_settings(p["mode"], p["batch"], p["max_new_tokens"], p["min_new_tokens"],
                            p["feature_cache"], p["prefixes"])
        check_settings(p["device"], p["dtype"])
        check_folder(p["path"])

    # ---- public --------------------------------------------------------------------------
    def score_batch(self, key: np.ndarray, candidates: list[np.ndarray], focus: str) -> list[PSSS]:
        """``key`` uint8 [H, W, 3], ``candidates`` uint8 [H', W', 3] each -> one PSSS per candidate."""
        for f in (key, *candidates):
            _check_frame(f)
        if self.mode == "paper":
            return [self._paper_pair(key, c, focus) for c in candidates]
        return self._direct(key, candidates, focus)

    @torch.inference_mode()
    def uncached_score(self, key: np.ndarray, cand: np.ndarray, focus: str) -> PSSS:
        """Reference: the direct prompt in one plain forward (no cache, no batching)."""
        b = self.backend
        enc = b.encode(b.chat(direct_prompt(focus)), [key, cand])
        logits = b.model(**enc, logits_to_keep=1).logits[:, -1]
        self._count(passes=2, tokens=enc["input_ids"].numel())  # vision tower + LLM
        return self._psss(logits)[0]

    def prompt_lengths(self, key: np.ndarray, cand: np.ndarray, focus: str) -> tuple[int, int]:
        """(prefix tokens P, suffix tokens S) of the direct prompt for these frame shapes."""
        lay = self._layout(key, cand, focus)
        return lay.split, lay.suffix_len

    def clear_caches(self) -> None:
        """Forget cached vision features, keyframe prefixes and token layouts."""
        self._features_lru.clear()
        self._prefixes.clear()
        self._layouts.clear()

    # ---- shared ----------------------------------------------------------------------------
    def _count(self, passes: int, tokens: int) -> None:
        self.cost.forward_passes += int(passes)
        self.cost.token_steps += int(tokens)

    def _psss(self, logits: torch.Tensor) -> list[PSSS]:
        """logits [B, V] at the answer position -> B PSSS values."""
        p_yes, p_no = self.backend.yes_no(logits)
        return [PSSS(p_yes=min(1.0, float(y)), p_no=min(1.0, float(n))) for y, n in zip(p_yes, p_no)]

    # ---- paper mode ------------------------------------------------------------------------
    def _paper_pair(self, key: np.ndarray, cand: np.ndarray, focus: str) -> PSSS:
        desc_1, desc_2 = self.splitter(self._describe(key, cand))
        return self._judge(psss_prompt(desc_1, desc_2, focus))

    def _describe(self, key: np.ndarray, cand: np.ndarray) -> str:
        """Round 1: one greedy generate with both images -> the generated text."""
        b = self.backend
        enc = b.encode(b.chat(DESCRIBE_PAIR), [key, cand])
        text, n = b.generate(enc, self.max_new_tokens, self.min_new_tokens)
        self._count(passes=1 + n, tokens=enc["input_ids"].numel() + n)
        return text

    @torch.inference_mode()
    def _judge(self, question: str) -> PSSS:
        """Round 2: text-only PSSS question -> Yes/No at the first answer position."""
        b = self.backend
        enc = b.encode(b.chat(question))
        logits = b.model(**enc, logits_to_keep=1).logits[:, -1]
        self._count(passes=1, tokens=enc["input_ids"].numel())
        return self._psss(logits)[0]

    # ---- direct mode -----------------------------------------------------------------------
    def _direct(self, key: np.ndarray, cands: list[np.ndarray], focus: str) -> list[PSSS]:
        out: list[PSSS | None] = [None] * len(cands)
        groups: dict[tuple, list[int]] = {}
        for i, c in enumerate(cands):
            groups.setdefault(c.shape, []).append(i)
        for idx in groups.values():  # one token layout per candidate shape
            lay = self._layout(key, cands[idx[0]], focus)
            pre = self._prefix(key, lay)
            for s in range(0, len(idx), self.batch):
                chunk = idx[s:s + self.batch]
                for i, v in zip(chunk, self._suffix(pre, lay, [cands[i] for i in chunk])):
                    out[i] = v
        return out

    def _layout(self, key: np.ndarray, cand: np.ndarray, focus: str) -> Layout:
        k = (key.shape, cand.shape, focus)
        lay = self._layouts.get(k)
        if lay is None:
            b = self.backend
            enc = b.encode(b.chat(direct_prompt(focus)), [key, cand])
            ids = enc["input_ids"]
            lay = Layout(ids, self._split_point(ids[0]), b.rope_positions(ids, enc.get("image_grid_thw")))
            self._layouts.put(k, lay)
        return lay

    def _split_point(self, ids: torch.Tensor) -> int:
        """Index just after Image-1's tokens (and its end-of-image token) in ids [T]."""
        where = (ids == self.backend.image_token_id).nonzero().flatten().tolist()
        if not where:
            raise ValueError("the direct prompt has no image tokens (chat template dropped the images?)")
        end = where[0]
        while end + 1 < len(ids) and int(ids[end + 1]) == self.backend.image_token_id:
            end += 1
        end += 1
        return end + 1 if end < len(ids) and int(ids[end]) == self.backend.end_image_id else end

    def _features(self, frames: list[np.ndarray]) -> list[torch.Tensor]:
        """Vision features per frame ([image tokens, hidden]); missing ones in ONE vision call."""
        keys = [frame_key(f) for f in frames]
        have = {k: self._features_lru.get(k) for k in dict.fromkeys(keys)}
        missing = {k: f for k, f in zip(keys, frames) if have[k] is None}
        if missing:
            pix = [self.backend.pixels(f) for f in missing.values()]
            for k, v in zip(missing, self.backend.image_features(pix)):
                have[k] = v
                self._features_lru.put(k, v)
            self._count(passes=1, tokens=0)
        return [have[k] for k in keys]

    @torch.inference_mode()
    def _prefix(self, key: np.ndarray, lay: Layout) -> Prefix:
        """KV cache of the keyframe prefix (built once per keyframe and prefix tokens)."""
        ids = lay.ids[:, :lay.split]
        k = (frame_key(key), hashlib.blake2b(ids.cpu().numpy().tobytes(), digest_size=16).digest())
        pre = self._prefixes.get(k)
        if pre is None:
            b, P = self.backend, lay.split
            emb = b.embed(ids, self._features([key]))
            pos = None if lay.pos is None else lay.pos[:, :, :P]
            out = b.model(inputs_embeds=emb, attention_mask=torch.ones_like(ids), position_ids=pos,
                          use_cache=True, logits_to_keep=1)
            pre = Prefix(out.past_key_values, P)
            self._prefixes.put(k, pre)
            self._count(passes=1, tokens=P)
        return pre

    @torch.inference_mode()
    def _suffix(self, pre: Prefix, lay: Layout, frames: list[np.ndarray]) -> list[PSSS]:
        """One forward of B candidates' suffixes on a copy of the prefix cache."""
        b, B = self.backend, len(frames)
        ids = lay.ids[:, lay.split:].expand(B, -1)
        emb = b.embed(ids, self._features(frames))
        cache = copy.deepcopy(pre.cache)
        if B > 1:
            cache.batch_repeat_interleave(B)
        mask = torch.ones(B, pre.length + ids.shape[1], dtype=torch.long, device=ids.device)
        pos = None if lay.pos is None else lay.pos[:, :, lay.split:].expand(-1, B, -1)
        logits = b.model(inputs_embeds=emb, attention_mask=mask, position_ids=pos, past_key_values=cache,
                         use_cache=True, logits_to_keep=1).logits[:, -1]
        self._count(passes=1, tokens=ids.numel())
        return self._psss(logits)
