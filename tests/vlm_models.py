"""Tiny random vision-language checkpoints for tests and benchmarks (not a test file).

:func:`build` writes a randomly initialised InternVL / Qwen2-VL / Qwen2.5-VL
checkpoint into a directory with ``save_pretrained``, so it loads the way a
real local checkpoint does. Nothing is downloaded: the tokenizer is a
byte-level BPE trained from scratch (``tokenizers``) on the project's prompts,
with ChatML special tokens and a Jinja chat template.

``layout="processor"`` saves the full multimodal processor (image + video
processor, tokenizer, chat template), so ``AutoProcessor`` and
``apply_chat_template`` are exercised. ``layout="tokenizer"`` saves only the
tokenizer (with a chat template that renders images as a literal ``<image>``)
and the image processor, no processor config: ``AutoProcessor`` may still
assemble a processor from them, but its template does not produce the image
placeholder, so :class:`~lgvsc.semantic.vlm_backend.VLMBackend` takes its
fallback (tokenizer template, hand-expanded image tokens). The weights come
from ``torch.random.fork_rng`` seeded with ``seed``: deterministic, and the
caller's global RNG state is left untouched. Generation never emits special
tokens other than end-of-turn (``suppress_tokens``), like a trained model.

Default sizes run a forward in milliseconds on a CPU: text hidden 64, 2
layers; InternVL 56 px tiles with 14 px patches (4 tokens per image); Qwen
images of at most 112 x 112 pixels (at most 16 tokens per image).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lgvsc.semantic.psss import DEFAULT_FOCUS, DESCRIBE_PROMPT, psss_prompt

ARCHS = ("internvl", "qwen2_vl", "qwen2_5_vl")
LAYOUTS = ("processor", "tokenizer")

CORPUS = [
    psss_prompt("Image-1: a man rides a bike", "Image-2: a man rides a bike", DEFAULT_FOCUS),
    psss_prompt("A dog runs on the grass", "A cat sits on a red sofa", "the action"),
    DESCRIBE_PROMPT,
    "Image-1: a cyclist rides along a road. Image-2: the cyclist turns left near a tree.",
    "Yes No yes no YES NO Yes. No. yes, no, the a of image frame keyframe video segment",
    "Describe this video segment in one sentence. Frame1: Frame2: Frame3: Frame4:",
    "user assistant system You are a helpful assistant. Picture 1: Picture 2:",
]

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
          "{% if message['content'] is string %}{{ message['content'] }}"
          "{% else %}{% for c in message['content'] %}"
          "{% if c['type'] == 'image' %}{{ IMAGE }}{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
          "{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def chat_template(image_placeholder: str) -> str:
    """A ChatML Jinja template that renders an image content part as ``image_placeholder``."""
    return CHATML.replace("{{ IMAGE }}", "{{ '" + image_placeholder + "' }}")


def tokenizer(special: list[str], vocab_size: int = 600, **named):
    """Byte-level BPE trained on :data:`CORPUS`, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", **named)


def text_config(tok, hidden: int, layers: int, heads: int = 4, **extra) -> dict:
    """A Qwen2-style language model config (GQA, 2 kv heads)."""
    return dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                num_key_value_heads=2, intermediate_size=2 * hidden, vocab_size=len(tok),
                bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                max_position_embeddings=4096, **extra)


def _random_model(cls, cfg, seed: int, tok):
    """Random weights (seeded, caller's RNG untouched); generation never emits special
    tokens other than end-of-turn, so decoded texts have the length generated, as with
    a trained model."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg).eval()
    special = tok.convert_tokens_to_ids(tok.all_special_tokens)
    model.generation_config.suppress_tokens = sorted(set(special) - {tok.eos_token_id})
    return model


def _save(folder, model, tok, image_processor, processor, layout: str) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if layout == "processor":
        processor.save_pretrained(folder)
    else:
        tok.chat_template = chat_template("<image>")  # markers kept; the backend expands them
        tok.save_pretrained(folder)
        image_processor.save_pretrained(folder)
    return folder


def build_internvl(folder, layout="processor", seed=0, image_size=56, patch_size=14,
                   hidden=64, layers=2, vision_hidden=32, vision_layers=1,
                   max_patches=1) -> Path:
    """InternVL (Qwen2 LLM + InternViT); ``(image_size / patch_size)^2 / 4`` tokens per tile.

    ``max_patches``: the image processor's tile limit (1: one tile per image; real
    checkpoints have 12, with which the processor tiles a 320x576 frame of 448-px tiles
    into 2 + a thumbnail)."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor
    from transformers.models.got_ocr2.image_processing_got_ocr2 import GotOcr2ImageProcessor
    from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
    tok = tokenizer(special, extra_special_tokens={
        "start_image_token": "<img>", "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"})
    seq = (image_size // patch_size) ** 2 // 4
    size = {"height": image_size, "width": image_size}
    ip = GotOcr2ImageProcessor(size=size, crop_to_patches=False, max_patches=max_patches)
    vision = dict(hidden_size=vision_hidden, num_hidden_layers=vision_layers, num_attention_heads=2,
                  intermediate_size=2 * vision_hidden, image_size=image_size, patch_size=patch_size)
    text = dict(model_type="qwen2", **text_config(tok, hidden, layers))
    cfg = InternVLConfig(vision_config=vision, text_config=text, image_seq_length=seq,
                         image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"))
    model = _random_model(InternVLForConditionalGeneration, cfg, seed, tok)
    proc = InternVLProcessor(image_processor=ip, tokenizer=tok,
                             video_processor=InternVLVideoProcessor(size=size), image_seq_length=seq,
                             chat_template=chat_template("<IMG_CONTEXT>"))
    return _save(folder, model, tok, ip, proc, layout)


def build_qwen(folder, arch="qwen2_vl", layout="processor", seed=0, max_pixels=112 * 112,
               hidden=64, layers=2) -> Path:
    """Qwen2-VL or Qwen2.5-VL; an image of at most ``max_pixels`` takes ``pixels / 28^2`` tokens."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor)
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>"]
    tok = tokenizer(special, extra_special_tokens={"image_token": "<|image_pad|>",
                                                   "video_token": "<|video_pad|>"})
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    head_half = hidden // 4 // 2  # mrope_section must sum to head_dim / 2
    rope = {"rope_type": "default", "rope_theta": 1e6,
            "mrope_section": [head_half - 2 * (head_half * 3 // 8), head_half * 3 // 8, head_half * 3 // 8]}
    if arch == "qwen2_vl":
        Cfg, Model, Proc = Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
        vision = dict(depth=1, embed_dim=32, hidden_size=hidden, num_heads=2, mlp_ratio=2)
    elif arch == "qwen2_5_vl":
        Cfg, Model, Proc = Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
        vision = dict(depth=2, hidden_size=32, out_hidden_size=hidden, intermediate_size=64, num_heads=2,
                      fullatt_block_indexes=[1], window_size=56)
    else:
        raise ValueError(f"arch must be qwen2_vl or qwen2_5_vl, got {arch!r}")
    cfg = Cfg(text_config=text_config(tok, hidden, layers, rope_parameters=rope), vision_config=vision,
              image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
              vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    model = _random_model(Model, cfg, seed, tok)
    pix = dict(min_pixels=56 * 56, max_pixels=max_pixels)
    ip = Qwen2VLImageProcessor(**pix)
    proc = Proc(image_processor=ip, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(**pix),
                chat_template=chat_template("<|vision_start|><|image_pad|><|vision_end|>"))
    return _save(folder, model, tok, ip, proc, layout)


def build(arch: str, folder, layout: str = "processor", **kw) -> Path:
    """Build the tiny ``arch`` checkpoint into ``folder``; returns the folder."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if arch == "internvl":
        return build_internvl(folder, layout=layout, **kw)
    return build_qwen(folder, arch=arch, layout=layout, **kw)
