"""Tiny random real-tier models built in code: VLMs, diffusers video pipelines, CLIP,
VGG16 and NTSCC (for ``lgvsc doctor --gpu`` and the tests; nothing is downloaded).

VLMs (:func:`build_vlm`): a randomly initialised InternVL / Qwen2-VL / Qwen2.5-VL
checkpoint saved with ``save_pretrained``, so it loads the way a real local
checkpoint does; the tokenizer is a byte-level BPE trained from scratch
(``tokenizers``) on the project's prompts, with ChatML special tokens and a Jinja
chat template. ``layout="processor"`` saves the full multimodal processor;
``layout="tokenizer"`` only the tokenizer (a template that renders images as a
literal ``<image>``) and the image processor, so
:class:`~lgvsc.semantic.vlm_backend.VLMBackend` takes its fallback. Default sizes
run a forward in milliseconds on a CPU: text hidden 64, 2 layers; InternVL 56 px
tiles with 14 px patches (4 tokens per image); Qwen images of at most 112 x 112
pixels. Generation never emits special tokens other than end-of-turn.

Pipelines (:func:`build_pipeline`): ``LTXConditionPipeline``,
``WanImageToVideoPipeline`` (first+last frame), ``WanVACEPipeline``, or
``ltx-dynamic`` (an LTX-Video 0.9.1-style ``LTXPipeline`` whose scheduler shifts
dynamically). Real in kind, tiny in size: LTX VAE 8x spatial / 8x temporal
(frames 8k+1; 32 px multiples), Wan VAE 8x spatial / 4x temporal (frames 4k+1;
16 px multiples), one transformer layer of width 24-32.

Weights come from ``torch.random.fork_rng`` seeded with ``seed`` (the caller's
global RNG state is untouched). The same builders as ``tests/vlm_models.py`` and
``tests/wm_pipelines.py``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..semantic.psss import DEFAULT_FOCUS, DESCRIBE_PROMPT, psss_prompt

VLM_ARCHS = ("internvl", "qwen2_vl", "qwen2_5_vl")
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


def _random_model(cls, cfg, seed: int, tok, never_stop: bool = False):
    """Random weights (seeded, caller's RNG untouched); generation never emits special
    tokens other than end-of-turn, so decoded texts have the length generated, as with
    a trained model (``never_stop``: neither end-of-turn nor whitespace-only tokens, so
    every answer has ``max_new_tokens`` tokens of visible text, never an empty one)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg).eval()
    special = set(tok.all_special_ids) | {i for i, t in tok.added_tokens_decoder.items()
                                          if t.special}  # <|im_start|> too
    if never_stop:
        blank = {i for i in range(len(tok)) if not tok.decode([i]).strip()}
        suppress = special | blank
    else:
        suppress = special - {tok.eos_token_id}
    model.generation_config.suppress_tokens = sorted(suppress)
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
                   max_patches=1, never_stop=False) -> Path:
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
    model = _random_model(InternVLForConditionalGeneration, cfg, seed, tok, never_stop)
    proc = InternVLProcessor(image_processor=ip, tokenizer=tok,
                             video_processor=InternVLVideoProcessor(size=size), image_seq_length=seq,
                             chat_template=chat_template("<IMG_CONTEXT>"))
    return _save(folder, model, tok, ip, proc, layout)


def build_qwen(folder, arch="qwen2_vl", layout="processor", seed=0, max_pixels=112 * 112,
               hidden=64, layers=2, never_stop=False) -> Path:
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
    model = _random_model(Model, cfg, seed, tok, never_stop)
    pix = dict(min_pixels=56 * 56, max_pixels=max_pixels)
    ip = Qwen2VLImageProcessor(**pix)
    proc = Proc(image_processor=ip, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(**pix),
                chat_template=chat_template("<|vision_start|><|image_pad|><|vision_end|>"))
    return _save(folder, model, tok, ip, proc, layout)


def build_vlm(arch: str, folder, layout: str = "processor", **kw) -> Path:
    """Build the tiny ``arch`` checkpoint into ``folder``; returns the folder."""
    if arch not in VLM_ARCHS:
        raise ValueError(f"arch must be one of {', '.join(VLM_ARCHS)}, got {arch!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if arch == "internvl":
        return build_internvl(folder, layout=layout, **kw)
    return build_qwen(folder, arch=arch, layout=layout, **kw)




PIPELINE_KINDS = ("ltx", "wan-flf2v", "wan-vace")
WM_CORPUS = ["a person walks along a road. motion score: 3.2",
          "a dog runs on the grass. motion score: 12.0",
          "a red car drives past a tree, the camera pans left"] * 20


def wm_tokenizer():
    """A byte-level BPE (``<pad>``, ``</s>``, ``<unk>``) as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(WM_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>")


def _t5(cls_name: str, vocab: int):
    import transformers

    config = getattr(transformers, cls_name.replace("EncoderModel", "Config"))(
        vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0)
    return getattr(transformers, cls_name)(config)


def ltx():
    """Tiny ``LTXConditionPipeline`` (VAE 8x spatial, 8x temporal)."""
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler,
                           LTXConditionPipeline, LTXVideoTransformer3DModel)

    tok = wm_tokenizer()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
        attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=32)
    scale = (True, True, True, False)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8,) * 4,
        decoder_block_out_channels=(8,) * 4, layers_per_block=(1,) * 5,
        decoder_layers_per_block=(1,) * 5, spatio_temporal_scaling=scale,
        decoder_spatio_temporal_scaling=scale, decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False,
        patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False)
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    return LTXConditionPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                                text_encoder=_t5("T5EncoderModel", len(tok)), tokenizer=tok,
                                transformer=transformer)


#: LTX-Video 0.9.0 / 0.9.1's scheduler_config.json (dynamic shifting: needs ``mu``)
LTX_091_SCHEDULER = dict(base_image_seq_len=1024, base_shift=0.95, max_image_seq_len=4096,
                         max_shift=2.05, num_train_timesteps=1000, shift=1.0, shift_terminal=0.1,
                         use_dynamic_shifting=True)


def ltx_dynamic():
    """Tiny ``LTXPipeline`` in the LTX-Video 0.9.1 layout: model_index ``LTXPipeline``,
    a ``FlowMatchEulerDiscreteScheduler`` with ``use_dynamic_shifting=True``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTXPipeline

    parts = ltx().components
    parts["scheduler"] = FlowMatchEulerDiscreteScheduler(**LTX_091_SCHEDULER)
    return LTXPipeline(**parts)


def _wan_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])  # 8x spatial, 4x temporal


def _wan_scheduler():
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                   flow_shift=3.0)


#: tiny Wan transformer sizes shared by FLF2V and VACE
WAN_DIMS = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", rope_max_seq_len=32)


def wan_flf2v():
    """Tiny ``WanImageToVideoPipeline`` with a CLIP image encoder (first + last frame)."""
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    tok = wm_tokenizer()
    clip_size, clip_patch = 32, 4
    n_clip = (clip_size // clip_patch) ** 2 + 1
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        image_size=clip_size, patch_size=clip_patch))
    processor = CLIPImageProcessor(size={"shortest_edge": clip_size},
                                   crop_size={"height": clip_size, "width": clip_size})
    transformer = WanTransformer3DModel(
        in_channels=16 + 16 + 4, num_layers=1, image_dim=16, pos_embed_seq_len=2 * n_clip,
        added_kv_proj_dim=24, **WAN_DIMS)
    return WanImageToVideoPipeline(
        tokenizer=tok, text_encoder=_t5("UMT5EncoderModel", len(tok)), vae=_wan_vae(),
        scheduler=_wan_scheduler(), image_processor=processor, image_encoder=image_encoder,
        transformer=transformer)


def wan_vace():
    """Tiny ``WanVACEPipeline`` (VACE context: 2 x 16 latent + 64 mask channels)."""
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    tok = wm_tokenizer()
    transformer = WanVACETransformer3DModel(in_channels=16, num_layers=1, vace_layers=[0],
                                            vace_in_channels=96, **WAN_DIMS)
    return WanVACEPipeline(tokenizer=tok, text_encoder=_t5("UMT5EncoderModel", len(tok)),
                           vae=_wan_vae(), scheduler=_wan_scheduler(), transformer=transformer)


BUILDERS = {"ltx": ltx, "wan-flf2v": wan_flf2v, "wan-vace": wan_vace, "ltx-dynamic": ltx_dynamic}


def build_pipeline(kind: str, path, seed: int = 0) -> Path:
    """Save a tiny random ``kind`` pipeline (one of :data:`PIPELINE_KINDS`, or ``ltx-dynamic``)
    into ``path``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = BUILDERS[kind]()
    path = Path(path)
    pipe.save_pretrained(str(path))
    return path


# -- metrics' networks and NTSCC ---------------------------------------------------------
def build_clip(folder, seed: int = 0) -> Path:
    """A tiny random ``CLIPModel`` + image processor (32 px images) in ``folder``
    (what ``LGVSC_CLIP`` names)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    cfg = CLIPConfig(text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2),
                     vision_config=dict(hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2,
                                        image_size=32, patch_size=8),
                     projection_dim=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(cfg)
    folder = Path(folder)
    model.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def build_vgg16(path, seed: int = 0) -> Path:
    """A torchvision ``vgg16`` state dict with random ``features.*`` weights (the part
    LPIPS and DISTS use; what ``LGVSC_VGG16`` names), ~59 MB."""
    from torchvision.models import vgg16

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        feats = vgg16(weights=None).features.state_dict()
    path = Path(path)
    torch.save({f"features.{k}": v for k, v in feats.items()}, path)
    return path


def build_ntscc(path, arch: str = "tiny", seed: int = 0) -> Path:
    """A random NTSCC checkpoint of preset ``arch`` (``tiny``: 64x64 images) at ``path``."""
    from ..semantic.keyframe_codecs.ntscc_arch import make_arch
    from ..semantic.keyframe_codecs.ntscc_checkpoint import save_checkpoint
    from ..semantic.keyframe_codecs.ntscc_model import NTSCCModel

    model = NTSCCModel(make_arch(arch), torch.Generator().manual_seed(seed))
    path = Path(path)
    save_checkpoint(path, model)
    return path
