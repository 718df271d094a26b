"""A vision-language model from local weights, and what every real-tier part needs.

:class:`VLMBackend` loads a checkpoint from a local directory or a Hugging
Face repo id already in the local cache (``local_files_only`` always; nothing
is downloaded) and detects the architecture from ``config.json``:

* ``internvl``   -> ``InternVLForConditionalGeneration``
* ``qwen2_vl``   -> ``Qwen2VLForConditionalGeneration``
* ``qwen2_5_vl`` -> ``Qwen2_5_VLForConditionalGeneration``

Prompts are written with ``<image>`` markers (``"Image-1: <image>, ..."``) and
go through the checkpoint's processor and chat template when the directory has
them (``AutoProcessor``). Otherwise the tokenizer and image processor are used
and each marker is expanded by hand into the model's image tokens (InternVL:
``<img>`` + ``<IMG_CONTEXT>`` x tokens + ``</img>``; Qwen: ``<|vision_start|>`` +
``<|image_pad|>`` x tokens + ``<|vision_end|>``), with the tokenizer's chat
template, or a ChatML turn when it has none.

The processor path is the one a checkpoint's authors meant; the fallback exists
for folders whose files assemble no usable processor (see :func:`load_processor`
for exactly which). Which path a load took, and why, is printed once per load
(``lgvsc: vlm <folder>: ...``) and kept as :attr:`VLMBackend.load_path` /
:attr:`VLMBackend.load_note`. Both paths preprocess images identically: the
fallback passes the image processor the settings the processor class passes
(:data:`PROCESSOR_IMAGE_KWARGS`: InternVL's dynamic tiling, ``crop_to_patches``),
so a 320x576 frame is 3 tiles (2 + thumbnail) of 448 px on either path.

One loaded model per process: :func:`shared_backend` / :meth:`VLMBackend.shared`
fetch the backend through :func:`~lgvsc.semantic.model_cache.model_cache` under
:func:`vlm_key` -- ``ModelKey("vlm", <resolved folder>, <dtype name>, <device>)``
-- so a scorer and a captioner on one folder, dtype and device share one copy;
:func:`vlm_info` gives the key and the weights' memory without loading anything.

Forward passes use the ``cache=`` argument and read ``output.cache`` (the
transformers 5 names; ``past_key_values`` is deprecated there).

Yes/No: every surface form (``Yes``, `` Yes``, ``yes``, `` yes``, ``YES``,
`` YES`` and the same for No) that encodes to exactly one token;
``P(Yes)`` and ``P(No)`` are sums of the float32 softmax over the full
vocabulary at the answer position.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from .model_cache import ModelInfo, ModelKey, estimate_bytes, model_cache

#: model_type -> transformers class name
SUPPORTED = {"internvl": "InternVLForConditionalGeneration",
             "qwen2_vl": "Qwen2VLForConditionalGeneration",
             "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
YES_FORMS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_FORMS = ("No", " No", "no", " no", "NO", " NO")
#: the marker prompts use for one image
IMAGE = "<image>"


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:N"``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = str(device)
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``"auto"`` -> bfloat16 on cuda, float32 on cpu; or one of :data:`DTYPES`."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def locate(path) -> str:
    """Directory holding the checkpoint's ``config.json`` (a local folder or a cached repo id)."""
    from transformers.utils import cached_file

    try:
        cfg = cached_file(str(path), "config.json", local_files_only=True)
    except Exception as e:  # OSError, HFValidationError, EnvironmentError: all "not there"
        raise ValueError(f"VLM path {str(path)!r} is neither a local model directory nor a "
                         f"Hugging Face repo id in the local cache ({type(e).__name__})") from None
    if cfg is None:
        raise ValueError(f"VLM path {str(path)!r} has no config.json")
    return os.path.dirname(cfg)


def model_class(folder: str):
    """The transformers class for the ``model_type`` in ``folder/config.json``."""
    import transformers

    with open(f"{folder}/config.json") as f:
        mt = json.load(f).get("model_type")
    if mt not in SUPPORTED:
        hint = UNSUPPORTED_HINTS.get(mt)
        raise ValueError(f"unsupported VLM architecture {mt!r} in {folder}/config.json; "
                         f"supported model_type: {', '.join(sorted(SUPPORTED))}"
                         + (f" ({mt}: {hint})" if hint else ""))
    return mt, getattr(transformers, SUPPORTED[mt])


#: what the paper used, and what stands in for it (InternVL2-8B is remote code)
PAPER_VLM_NOTE = ("the original InternVL releases -- InternVL2-8B, the paper's VLM, and "
                  "InternVL2.5/3 folders without -hf -- are remote code (model_type "
                  "'internvl_chat'), which the backend does not run; use a transformers-format "
                  "stand-in: OpenGVLab/InternVL2_5-8B-MPO-hf (InternViT-300M + InternLM2.5-7B "
                  "like InternVL2-8B, the closest) or OpenGVLab/InternVL3-8B-hf, in mode: "
                  "direct with threshold: auto (the paper's eta_th = 0.35 belongs to its paper "
                  "mode on InternVL2-8B)")
#: model_type of checkpoints the backend cannot load, -> what to use instead
UNSUPPORTED_HINTS = {"internvl_chat": PAPER_VLM_NOTE}


def check_folder(path, key: str = "path") -> str:
    """Check a VLM checkpoint's layout without loading it; returns its ``model_type``.

    ``path``: a local folder or a Hugging Face repo id in the local cache (never
    downloaded). The folder must hold ``config.json`` with a supported
    ``model_type`` (:data:`SUPPORTED`), weight files (``*.safetensors`` / ``*.bin``,
    every shard an index lists), a tokenizer (``tokenizer.json``,
    ``tokenizer.model``, ``vocab.json`` + ``merges.txt`` ...) and an image processor
    (``preprocessor_config.json``, or ``processor_config.json`` with an
    ``image_processor`` entry) -- what :class:`VLMBackend` loads.
    Raises ValueError ``"<key>: ..."`` (one line). Needs no transformers.
    """
    from .model_files import check_weight_files, has_tokenizer, model_folder, read_json

    folder, shown = model_folder(path, key)
    cfg = read_json(folder / "config.json", key, f"{shown}/config.json")
    mt = cfg.get("model_type")
    if mt not in SUPPORTED:
        arch = ", ".join(map(str, cfg.get("architectures") or [])) or "no architectures"
        hint = UNSUPPORTED_HINTS.get(mt)
        raise ValueError(f"{key}: {shown!r} holds model_type {mt!r} ({arch}), which the VLM "
                         f"backend does not load; supported model_type: "
                         f"{', '.join(sorted(SUPPORTED))}" + (f" ({mt}: {hint})" if hint else ""))
    check_weight_files(folder, key, shown)
    if not has_tokenizer(folder):
        raise ValueError(f"{key}: {shown!r} has no tokenizer files (tokenizer.json, "
                         "tokenizer.model or vocab.json + merges.txt)")
    proc = folder / "processor_config.json"
    if not ((folder / "preprocessor_config.json").is_file() or (
            proc.is_file() and "image_processor" in read_json(proc, key, f"{shown}/{proc.name}"))):
        raise ValueError(f"{key}: {shown!r} has no image processor config "
                         "(preprocessor_config.json, or processor_config.json with an "
                         "image_processor entry)")
    return mt


def check_settings(device, dtype) -> None:
    """``device`` and ``dtype`` as :class:`VLMBackend` takes them (the form only)."""
    from .model_files import check_device, check_dtype

    check_device(device)
    check_dtype(dtype)


# ---- one loaded backend per (folder, dtype, device) ---------------------------------------
def key_device(device) -> str:
    """The device a key names: ``"auto"`` resolved here (cuda when available), else
    ``str(torch.device(device))`` without asking for CUDA (keys may be computed on a
    machine without the GPU that will run the units)."""
    if device == "auto":
        return str(resolve_device("auto"))
    if not (isinstance(device, str) and re.fullmatch(r"cpu|cuda(:\d+)?", device)):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return str(torch.device(device))


def key_dtype(dtype, device: str) -> str:
    """The dtype name a key names (``"auto"``: bfloat16 on cuda, float32 on cpu)."""
    return str(resolve_dtype(dtype, torch.device(device))).removeprefix("torch.")


def vlm_key(path, device="auto", dtype="auto") -> ModelKey:
    """The model-cache key of the backend for ``path`` (a local folder or a cached repo
    id), ``device`` and ``dtype``: ``ModelKey("vlm", <absolute folder>, <dtype name>,
    <device>)``. Reads nothing but the folder's location; loads nothing."""
    from .model_files import model_folder

    folder = model_folder(path, "path")[0].resolve()
    dev = key_device(device)
    return ModelKey("vlm", str(folder), key_dtype(dtype, dev), dev)


def vlm_info(path, device="auto", dtype="auto") -> ModelInfo:
    """:func:`vlm_key` and the memory of the folder's weights in that dtype (from the
    safetensors headers; None when it has none)."""
    key = vlm_key(path, device, dtype)
    return ModelInfo(key, estimate_bytes(key.path, key.dtype))


def shared_backend(info: ModelInfo) -> "VLMBackend":
    """The process's :class:`VLMBackend` for ``info.key``, loaded on the first request
    (:func:`~lgvsc.semantic.model_cache.model_cache`)."""
    key = info.key
    return model_cache().get(key, lambda: VLMBackend(key.path, key.device, key.dtype),
                             info.bytes)


class SharedVLM:
    """A lazy handle on the shared backend: building it checks the settings and the
    folder's layout (:func:`check_folder`, no weights read) and computes the key; the
    first :meth:`get` loads (once per process and key).

    ``device`` must be available here (a ``cuda`` device on a machine without CUDA
    raises ValueError now, not at the first use).
    """

    def __init__(self, path, device: str = "auto", dtype: str = "auto"):
        check_settings(device, dtype)
        check_folder(path)
        dev = resolve_device(device)
        self.key = vlm_key(path, str(dev), dtype)
        self._info: ModelInfo | None = None

    @property
    def info(self) -> ModelInfo:
        """The key and the weights' memory (headers read once, on first use)."""
        if self._info is None:
            self._info = ModelInfo(self.key, estimate_bytes(self.key.path, self.key.dtype))
        return self._info

    def get(self) -> "VLMBackend":
        return shared_backend(self.info)


def single_token_ids(tokenizer, forms) -> list[int]:
    """Ids of the surface ``forms`` that encode to exactly one token (sorted, unique)."""
    out = set()
    for w in forms:
        t = tokenizer.encode(w, add_special_tokens=False)
        if len(t) == 1:
            out.add(int(t[0]))
    return sorted(out)


def chatml(user: str) -> str:
    """One ChatML user turn plus the assistant generation prompt (no-template fallback)."""
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def content_parts(user: str) -> list[dict]:
    """``"a <image> b"`` -> chat-template content ``[text a, image, text b]`` (empty texts dropped)."""
    parts = []
    for i, piece in enumerate(user.split(IMAGE)):
        if i:
            parts.append({"type": "image"})
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def to_pil(frame: np.ndarray) -> Image.Image:
    """uint8 [H, W, 3] -> PIL RGB image."""
    if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
            and frame.shape[-1] == 3):
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames must be uint8 [H, W, 3], got {got}")
    return Image.fromarray(frame, "RGB")


#: what AutoProcessor raises (transformers 5.x) for a folder whose files assemble no
#: processor although a tokenizer and an image processor load from them: OSError -- a
#: file a sub-processor needs is missing (EnvironmentError from ``cached_file``);
#: AttributeError -- the tokenizer lacks the special-token names the processor reads
#: (``InternVLProcessor``: ``tokenizer.start_image_token`` ...). Anything else is a real
#: error and propagates.
PROCESSOR_MISSING = (OSError, AttributeError)

#: image-processor kwargs the checkpoint's processor class passes on every call (its
#: class defaults in transformers 5.x: ``InternVLProcessor.images_kwargs``); the
#: fallback passes the same, so both paths tile alike
PROCESSOR_IMAGE_KWARGS = {"internvl": {"crop_to_patches": True}}


def load_processor(folder: str) -> tuple[object | None, str]:
    """(the checkpoint's multimodal processor, "") or (None, why it is not used).

    Not used: AutoProcessor raises one of :data:`PROCESSOR_MISSING`, returns no
    multimodal processor, has no chat template, or its chat template does not render an
    image as the one placeholder the processor expands (e.g. a processor assembled from
    a bare tokenizer whose template knows no images).
    """
    from jinja2 import TemplateError
    from transformers import AutoProcessor
    from transformers.processing_utils import ProcessorMixin

    try:
        proc = AutoProcessor.from_pretrained(folder, local_files_only=True)
    except PROCESSOR_MISSING as e:
        return None, f"AutoProcessor failed: {type(e).__name__}: {_first_line(e)}"
    if not isinstance(proc, ProcessorMixin):
        return None, f"AutoProcessor gave a {type(proc).__name__}, not a multimodal processor"
    if not proc.chat_template:
        return None, f"its {type(proc).__name__} has no chat template"
    token = getattr(proc, "image_token", None)
    probe = [{"role": "user", "content": content_parts(f"x {IMAGE} y")}]
    try:
        text = proc.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    except TemplateError as e:
        return None, f"its chat template rejects image content ({_first_line(e)})"
    if not token or text.count(token) != 1:
        return None, (f"its chat template does not render an image as the processor's "
                      f"image token {token!r}")
    return proc, ""


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:160]


def _say(line: str) -> None:
    """One line to the model cache's log (stderr by default)."""
    log = model_cache().log
    if log is not None:
        log(f"lgvsc: {line}")
    else:
        print(f"lgvsc: {line}", file=sys.stderr, flush=True)


class Generation(NamedTuple):
    """A :meth:`VLMBackend.generate` result: decoded ``text`` (stripped), ``tokens``
    generated, and whether it ``stopped`` at an end-of-turn token (False: cut at
    ``max_new_tokens``)."""

    text: str
    tokens: int
    stopped: bool


class VLMBackend:
    """A loaded VLM with its tokenizer and image preprocessing.

    :param path: local model directory, or a Hugging Face repo id in the local cache.
    :param device: ``"auto"`` (cuda if available, else cpu), ``"cpu"``, ``"cuda[:N]"``.
    :param dtype: ``"auto"`` (bfloat16 on cuda, float32 on cpu), ``"bfloat16"``,
        ``"float16"`` or ``"float32"``.

    Attributes: ``model`` (eval mode), ``arch`` (model_type), ``tokenizer``,
    ``processor`` (None on the fallback path), ``load_path`` (``"processor"`` or
    ``"fallback"``), ``load_note`` (why the fallback), ``yes_ids`` / ``no_ids``.

    Building one loads the weights; the real tier gets its backends through
    :meth:`shared` (one per folder, dtype and device per process).
    """

    def __init__(self, path, device: str = "auto", dtype: str = "auto"):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.folder = locate(path)
        self.arch, cls = model_class(self.folder)
        self.model = cls.from_pretrained(self.folder, dtype=self.dtype, local_files_only=True)
        self.model.to(self.device).eval()
        self._load_preprocessing()
        self._set_token_ids()

    def _load_preprocessing(self) -> None:
        """The processor path, or the fallback (tokenizer + image processor); says which
        and why, one line."""
        from transformers import AutoImageProcessor, AutoTokenizer

        self.processor, self.load_note = load_processor(self.folder)
        self.load_path = "fallback" if self.processor is None else "processor"
        if self.processor is not None:
            self.tokenizer, self.image_processor = self.processor.tokenizer, self.processor.image_processor
            _say(f"vlm {self.folder}: {type(self.processor).__name__} with its chat template")
            return
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.image_processor = AutoImageProcessor.from_pretrained(self.folder, local_files_only=True)
        kw = ", ".join(f"{k}={v}" for k, v in self.image_kwargs.items()) or "its defaults"
        turn = ("the tokenizer's chat template" if getattr(self.tokenizer, "chat_template", None)
                else "a ChatML turn")
        _say(f"vlm {self.folder}: fallback path, {self.load_note}; {turn}, image tokens "
             f"expanded here, {type(self.image_processor).__name__} with {kw}")

    @classmethod
    def shared(cls, path, device: str = "auto", dtype: str = "auto") -> "VLMBackend":
        """The process's backend for (path, device, dtype), loaded on first request."""
        return shared_backend(vlm_info(path, str(resolve_device(device)), dtype))

    @property
    def image_kwargs(self) -> dict:
        """What the fallback passes the image processor (:data:`PROCESSOR_IMAGE_KWARGS`)."""
        return dict(PROCESSOR_IMAGE_KWARGS.get(self.arch, {}))

    # ---- token ids ---------------------------------------------------------------------------
    def _set_token_ids(self) -> None:
        cfg, tok = self.model.config, self.tokenizer
        self.image_token_id = int(cfg.image_token_id)
        if self.arch == "internvl":
            self.start_image = getattr(tok, "start_image_token", None) or "<img>"
            self.end_image = getattr(tok, "end_image_token", None) or "</img>"
        else:
            self.start_image = tok.convert_ids_to_tokens(int(cfg.vision_start_token_id))
            self.end_image = tok.convert_ids_to_tokens(int(cfg.vision_end_token_id))
        self.image_token = tok.convert_ids_to_tokens(self.image_token_id)
        self.end_image_id = int(tok.convert_tokens_to_ids(self.end_image))
        self.yes_ids, self.no_ids = single_token_ids(tok, YES_FORMS), single_token_ids(tok, NO_FORMS)
        if not self.yes_ids or not self.no_ids:
            raise ValueError(f"tokenizer of {self.folder} has no single-token Yes/No form")

    # ---- prompts -----------------------------------------------------------------------------
    def chat(self, user: str) -> str:
        """One user turn (``<image>`` markers allowed) + the assistant generation prompt, as text.

        Processor path: the image markers become the placeholders the processor expands.
        Fallback: the ``<image>`` markers stay; :meth:`encode` expands them.
        """
        if self.processor is not None:
            msgs = [{"role": "user", "content": content_parts(user)}]
            return self.processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        if getattr(self.tokenizer, "chat_template", None):
            msgs = [{"role": "user", "content": user}]
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return chatml(user)

    # ---- encoding ----------------------------------------------------------------------------
    def pixels(self, frame: np.ndarray) -> dict:
        """One preprocessed image, on the device: ``pixel_values`` (InternVL [tiles, 3, h, w];
        Qwen [patches, D]) and, for Qwen, ``image_grid_thw`` int64 [1, 3]."""
        img = to_pil(frame)
        if self.processor is not None:  # exactly the processor's image kwargs
            out = self.processor(text=[self.processor.image_token], images=[img], return_tensors="pt")
        else:  # the kwargs the processor class would pass (InternVL: tiling)
            out = self.image_processor(images=[img], return_tensors="pt", **self.image_kwargs)
        keep = ("pixel_values", "image_grid_thw")
        return {k: self._to_device(out[k]) for k in keep if k in out}

    def image_tokens(self, pix: dict) -> int:
        """Image tokens one image (a :meth:`pixels` result) takes in the prompt."""
        if "image_grid_thw" in pix:
            merge = self.model.config.vision_config.spatial_merge_size
            return int(pix["image_grid_thw"].prod()) // merge**2
        return pix["pixel_values"].shape[0] * int(self.model.config.image_seq_length)

    def encode(self, text: str, frames: list[np.ndarray] = ()) -> dict:
        """Model inputs for one prompt (from :meth:`chat`) with its images, batch 1, on the device.

        Returns ``input_ids`` int64 [1, T], ``attention_mask`` [1, T] and, with images,
        ``pixel_values`` (+ Qwen: ``image_grid_thw`` [n, 3], ``mm_token_type_ids`` [1, T]).
        """
        frames = list(frames)
        if self.processor is not None:
            imgs = [to_pil(f) for f in frames] or None
            out = self.processor(text=[text], images=imgs, return_tensors="pt")
            return {k: self._to_device(v) for k, v in out.items()}
        if not frames:
            return self._tokenize(text)
        per = [self.pixels(f) for f in frames]
        text = self._expand(text, [self.image_tokens(p) for p in per])
        return {**self._tokenize(text), **{k: torch.cat([p[k] for p in per]) for k in per[0]}}

    def _expand(self, text: str, counts: list[int]) -> str:
        pieces = text.split(IMAGE)
        if len(pieces) - 1 != len(counts):
            raise ValueError(f"prompt has {len(pieces) - 1} image markers for {len(counts)} images")
        out = pieces[0]
        for n, piece in zip(counts, pieces[1:]):
            out += self.start_image + self.image_token * n + self.end_image + piece
        return out

    def _tokenize(self, text: str) -> dict:
        t = self.tokenizer([text], return_tensors="pt", add_special_tokens=False)
        out = {"input_ids": t["input_ids"], "attention_mask": t["attention_mask"]}
        if self.arch != "internvl":
            out["mm_token_type_ids"] = (t["input_ids"] == self.image_token_id).long()
        return {k: v.to(self.device) for k, v in out.items()}

    def _to_device(self, v):
        if not torch.is_tensor(v):
            return v
        v = v.to(self.device)
        return v.to(self.dtype) if v.is_floating_point() else v

    # ---- model pieces ------------------------------------------------------------------------
    @torch.inference_mode()
    def image_features(self, pix: list[dict]) -> list[torch.Tensor]:
        """Vision tower + projector, ONE call for all images (:meth:`pixels` results).

        Returns one tensor per image: [image tokens, hidden] in the model dtype.
        """
        inner, pv = self.model.model, torch.cat([p["pixel_values"] for p in pix])
        if self.arch == "internvl":
            feats = inner.get_image_features(pixel_values=pv, return_dict=True).pooler_output
            return list(feats.reshape(-1, feats.shape[-1]).split([self.image_tokens(p) for p in pix]))
        grid = torch.cat([p["image_grid_thw"] for p in pix])
        return list(inner.get_image_features(pv, grid, return_dict=True).pooler_output)

    def embed(self, input_ids: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        """Token embeddings [B, T, hidden] with the image tokens replaced by ``feats``
        (row-major: row 0's images first), exactly as the model's own forward does."""
        emb = self.model.get_input_embeddings()(input_ids)
        if not feats:
            return emb
        mask = (input_ids == self.image_token_id).unsqueeze(-1)
        return emb.masked_scatter(mask, torch.cat(feats).to(emb.dtype))

    def rope_positions(self, input_ids: torch.Tensor, grid_thw: torch.Tensor | None) -> torch.Tensor | None:
        """Qwen M-RoPE position ids int64 [3, 1, T] for one sequence; None for InternVL
        (1-D positions follow from the cache length)."""
        if self.arch == "internvl":
            return None
        tt = (input_ids == self.image_token_id).long()
        pos, _ = self.model.model.get_rope_index(input_ids, mm_token_type_ids=tt, image_grid_thw=grid_thw)
        return pos

    def yes_no(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits [B, V] at the answer position -> (P(Yes) [B], P(No) [B]) float32 on cpu."""
        p = logits.float().softmax(-1)
        return p[:, self.yes_ids].sum(-1).cpu(), p[:, self.no_ids].sum(-1).cpu()

    @torch.inference_mode()
    def generate(self, inputs: dict, max_new_tokens: int, min_new_tokens: int = 0) -> Generation:
        """Greedy generation for a batch-1 ``inputs`` -> :class:`Generation`."""
        pad = self.tokenizer.pad_token_id
        pad = self.tokenizer.eos_token_id if pad is None else pad
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                  do_sample=False, num_beams=1, pad_token_id=pad)
        new = out[0, inputs["input_ids"].shape[1]:]
        n = int(new.shape[0])
        stopped = n < max_new_tokens or (n > 0 and int(new[-1]) in self.eos_ids)
        return Generation(self.tokenizer.decode(new, skip_special_tokens=True).strip(), n, stopped)

    @property
    def eos_ids(self) -> set[int]:
        """Token ids that end a generated turn (generation config and tokenizer)."""
        ids = self.model.generation_config.eos_token_id
        ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
        tok = self.tokenizer.eos_token_id
        return {int(i) for i in ids} | ({int(tok)} if tok is not None else set())
