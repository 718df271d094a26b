"""``vlm``: PSSS from a vision-language model (the real tier), in two modes.

``mode="paper"`` -- what the authors' code does, per (keyframe, candidate) pair:

1. round 1: ONE greedy ``generate`` with both images (Image-1 = keyframe,
   Image-2 = candidate) asking :data:`~lgvsc.semantic.psss.DESCRIBE_PROMPT`,
   which asks for a fixed format (``Image-1: <one sentence>`` /
   ``Image-2: <one sentence>``), at most ``max_new_tokens`` (default 128) tokens;
   the text is split into two descriptions (:func:`split_descriptions`);
2. round 2: a text-only prompt ``psss_prompt(desc_1, desc_2, focus)`` through
   the chat template with the assistant generation prompt; P(Yes) and P(No)
   are read at the first answer position.

Round 1's budget: the fixed format costs two labels (~4 tokens each) and two
one-sentence descriptions (real InternVL / Qwen descriptions run 15-45 tokens),
so 96 tokens cover the long cases and 128 leave margin; a model that ends its
turn earlier generates (and costs) no more. The old 48 cut the second
description of ordinary answers.

A failed split -- no second description found (no ``Image-2`` label, numbered
item, "the second image ..." sentence, second line or second sentence), or a
half empty -- is never judged as a text compared with itself: that pair is
scored in direct mode instead (:meth:`VLMScorer.uncached_score`, both images in
one prompt: a real judgement of the pair, on direct mode's scale) and counted in
``cost.split_failures``. Answers cut at ``max_new_tokens`` (no end of turn) are
counted in ``cost.truncated``; they are judged from their split when it
succeeds (the second description is shortened, not absent), else fall back as
above. Both counters reach the selection's cost in the unit's extras: a run
whose ``split_failures`` is more than a few pairs is mostly direct mode and
should fix the prompt or ``max_new_tokens``.

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
  round-1 prompt + generated tokens + round-2 prompt (a failed split: round-1
  prompt + generated tokens + the direct prompt, 2 passes). Vision-tower
  patches are not token-steps.

Loading: building a scorer reads no weights (settings and the folder's layout
only); the first score loads the VLM through the process's model cache
(:func:`~lgvsc.semantic.vlm_backend.shared_backend`), shared with every other
scorer and captioner on the same folder, dtype and device. The scorer's own
caches (vision features by frame content, keyframe prefixes by frame content and
prefix tokens, token layouts by frame shapes and focus) belong to the scorer and
to the backend object they were computed with: they are dropped when the cache
hands back a different (reloaded) backend.
"""

from __future__ import annotations

import copy
import hashlib
import re
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from ..psss import DESCRIBE_PROMPT, PSSS, psss_prompt
from ...link.registry import bound_params
from ..vlm_backend import (IMAGE, SharedVLM, VLMBackend, check_folder, check_settings, to_pil,
                           vlm_info)
from . import SCORERS, Scorer

MODES = ("direct", "paper")
#: Info A / Info B of the direct prompt
IMAGE_1, IMAGE_2 = f"Image-1: {IMAGE}", f"Image-2: {IMAGE}"
#: round-1 question of the paper mode
DESCRIBE_PAIR = f"{IMAGE_1}\n{IMAGE_2}\n{DESCRIBE_PROMPT}"


def direct_prompt(focus: str) -> str:
    """The PSSS question with both images inline (the user turn)."""
    return psss_prompt(IMAGE_1, IMAGE_2, focus)


_NAME = r"(?:image|picture|frame|photo)"
#: where a line, a sentence or a clause starts, with an optional bullet and connective
_START = (r"(?:^|\n|(?<=[.!?;:,])[ \t]+)[ \t]*(?:[-*>#]+[ \t]*)?"
          r"(?:(?:and|while|whereas|but)[ \t]+)?")


def _label(n: int, word: str) -> str:
    """``Image-2``, ``**Image 2**``, ``Picture two`` (punctuation not included)."""
    return rf"\**[ \t]*{_NAME}[ \t_-]*(?:{n}|{word})\b[ \t]*\**"


def _number(n: int, letter: str) -> str:
    """``2.``, ``2)``, ``2:``, ``(2)``, ``b)``, ``(b)``."""
    return rf"(?:{n}[.):]|\({n}\)|\(?{letter}\))"


def _lead(n: int, word: str, letter: str) -> re.Pattern:
    """A leading label of description ``n``, stripped: bullet, number, punctuated label."""
    return re.compile(rf"(?i)^[ \t]*(?:[-*>#]+[ \t]*)?(?:{_number(n, letter)}[ \t]+)?"
                      rf"(?:{_label(n, word)}[ \t]*[:.)\-][ \t]*\**[ \t]*)?")


#: where the second description starts, by priority: an Image-2 label or a number 2,
#: then a sentence about "the second / latter / other image"
_SECOND = [re.compile(rf"(?i){_START}(?={_label(2, 'two')}|{_number(2, 'b')}[ \t]+)"),
           re.compile(rf"(?i){_START}(?=(?:in[ \t]+)?(?:the|this)[ \t]+(?:second|latter|other)[ \t]+"
                      rf"(?:{_NAME}|one)\b)")]
_LEAD_1, _LEAD_2 = _lead(1, "one", "a"), _lead(2, "two", "b")


def split_descriptions(text: str) -> tuple[str, str] | None:
    """Round-1 answer -> (description of Image-1, description of Image-2), or None when
    the answer holds no two descriptions (the pair is then judged another way, never
    as a text compared with itself).

    The second description starts at the first of (after some text): an ``Image-2``
    label (``Image-2:``, ``**Image 2:**``, ``Picture 2.``, ``Image 2 shows``) or a
    number ``2.`` / ``2)`` / ``(2)`` / ``(b)`` at the start of a line, sentence or
    clause; else a sentence or clause opening "the second / latter / other image";
    else, for an answer of exactly two non-empty lines, the second line; else, for
    exactly two sentences, the second sentence. Leading numbers and punctuated labels
    (``Image-1:``, ``2.``) are stripped, as are separators (``,;:``) and connectives
    ("and", "while") between the halves; unpunctuated text ("The first image shows",
    "Image 2 shows") is kept. None when no rule applies or a half has no word left.
    """
    text = text.replace(IMAGE, "image").strip()
    cut = _second_start(text)
    if cut is None:
        return None
    a = _LEAD_1.sub("", text[:cut[0]], count=1).strip().rstrip(",;:").strip()
    b = _LEAD_2.sub("", text[cut[1]:], count=1).strip()
    if not (re.search(r"\w", a) and re.search(r"\w", b)):
        return None
    return a, b


def _second_start(text: str) -> tuple[int, int] | None:
    """(end of the first part, start of the second part) in ``text``, or None."""
    for pat in _SECOND:
        for m in pat.finditer(text):
            if text[:m.start()].strip():
                return m.start(), m.end()
    lines = list(re.finditer(r"[^\n]*\S[^\n]*", text))
    if len(lines) == 2:
        return lines[0].end(), lines[1].start()
    if len(lines) == 1:
        ends = [m.end() for m in re.finditer(r"[.!?]+(?=\s+\S)", text)]
        if len(ends) == 1:
            return ends[0], ends[0]
    return None


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
    :param max_new_tokens: round-1 generation length cap (paper mode; default 128: two
        labelled one-sentence descriptions with margin, see the module notes).
    :param min_new_tokens: round-1 minimum length (0 = stop at end of turn); set it to
        ``max_new_tokens`` to force realistic lengths with random-weight models (every
        answer then counts as truncated).
    :param feature_cache: frames whose vision features are kept (LRU).
    :param prefixes: keyframe prefix KV caches kept (LRU).

    Building a scorer loads nothing (settings and the folder's layout are checked);
    the first score loads the VLM through the process's model cache, shared with
    captioners and other scorers on the same folder, dtype and device
    (:meth:`model_info` says what that will be). Paper mode: pairs whose round-1
    answer does not split are judged in direct mode and counted in
    ``cost.split_failures``; answers cut at ``max_new_tokens`` are counted in
    ``cost.truncated``.

    Which VLM: the paper's InternVL2-8B is remote code (``model_type: internvl_chat``),
    refused here; a transformers-format stand-in -- ``OpenGVLab/InternVL2_5-8B-MPO-hf``
    (InternViT-300M + InternLM2.5-7B, as InternVL2-8B) or ``OpenGVLab/InternVL3-8B-hf``
    -- goes with ``mode: direct`` and SKEM ``threshold: auto``: the paper's
    ``eta_th = 0.35`` belongs to its paper mode on InternVL2-8B, and another model's
    or mode's S_rel scale differs.
    """

    #: round-1 text -> (description of Image-1, of Image-2), or None when it holds no two
    #: descriptions; a subclass may replace it
    splitter = staticmethod(split_descriptions)

    def __init__(self, path, mode: str = "direct", device: str = "auto", dtype: str = "auto",
                 batch: int = 8, max_new_tokens: int = 128, min_new_tokens: int = 0,
                 feature_cache: int = 256, prefixes: int = 2):
        super().__init__()
        self._check_settings(mode, batch, max_new_tokens, min_new_tokens, feature_cache, prefixes)
        self.mode, self.batch = mode, batch
        self.max_new_tokens, self.min_new_tokens = max_new_tokens, min_new_tokens
        self._vlm = SharedVLM(path, device=device, dtype=dtype)
        self._owner = None  # weakref to the backend the caches below were computed with
        self._features_lru, self._prefixes = LRU(max(feature_cache, batch + 1)), LRU(prefixes)
        self._layouts = LRU(64)

    @property
    def backend(self) -> VLMBackend:
        """The shared backend (:meth:`load`)."""
        return self.load()

    def load(self) -> VLMBackend:
        """The shared backend, loaded now if it is not yet (the first score does it
        anyway); the scorer's caches are dropped when it is not the object they were
        computed with (the model was released and reloaded)."""
        b = self._vlm.get()
        if self._owner is None or self._owner() is not b:
            self.clear_caches()
            self._owner = weakref.ref(b)
        return b

    @property
    def key(self):
        """The model-cache key of this scorer's VLM."""
        return self._vlm.key

    def __getstate__(self) -> dict:
        """Picklable without the caches (device tensors) and the backend reference."""
        state = dict(self.__dict__, _owner=None)
        for name in ("_features_lru", "_prefixes", "_layouts"):
            state[name] = LRU(state[name].size)
        return state

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

    @classmethod
    def model_info(cls, **params) -> list:
        """The VLM this spec loads (its model-cache key and weight memory), computed
        without loading anything; the same key a captioner on that folder, dtype and
        device has."""
        p = bound_params(cls, params)
        return [vlm_info(p["path"], p["device"], p["dtype"])]

    # ---- public --------------------------------------------------------------------------
    def score_batch(self, key: np.ndarray, candidates: list[np.ndarray], focus: str) -> list[PSSS]:
        """``key`` uint8 [H, W, 3], ``candidates`` uint8 [H', W', 3] each -> one PSSS per candidate."""
        for f in (key, *candidates):
            _check_frame(f)
        self.load()  # before any cache lookup: a reloaded backend drops the caches
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
        """Describe, split, judge; a failed split is judged in direct mode (counted)."""
        parts = self.splitter(self._describe(key, cand))
        if parts is None:
            self.cost.split_failures += 1
            return self.uncached_score(key, cand, focus)
        return self._judge(psss_prompt(parts[0], parts[1], focus))

    def _describe(self, key: np.ndarray, cand: np.ndarray) -> str:
        """Round 1: one greedy generate with both images -> the generated text."""
        b = self.backend
        enc = b.encode(b.chat(DESCRIBE_PAIR), [key, cand])
        gen = b.generate(enc, self.max_new_tokens, self.min_new_tokens)
        self._count(passes=1 + gen.tokens, tokens=enc["input_ids"].numel() + gen.tokens)
        self.cost.truncated += int(not gen.stopped)
        return gen.text

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
            pre = Prefix(out.cache, P)
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
        logits = b.model(inputs_embeds=emb, attention_mask=mask, position_ids=pos, cache=cache,
                         use_cache=True, logits_to_keep=1).logits[:, -1]
        self._count(passes=1, tokens=ids.numel())
        return self._psss(logits)
