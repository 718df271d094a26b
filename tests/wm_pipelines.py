"""Tiny random diffusers video pipelines for tests (not a test file).

:func:`build` writes a randomly initialised ``LTXConditionPipeline``,
``WanImageToVideoPipeline`` (first+last frame) or ``WanVACEPipeline`` (or, as
``ltx-dynamic``, an LTX-Video 0.9.1-style ``LTXPipeline`` whose scheduler shifts
dynamically) into a directory with ``save_pretrained``, so it loads through ``from_pretrained`` the
way a real local checkpoint does. Nothing is downloaded: the tokenizer is a
byte-level BPE trained from scratch on a few captions. Weights come from
``torch.random.fork_rng`` seeded with ``seed`` (the caller's RNG is untouched).

Shapes are real in kind, tiny in size: LTX VAE 8x spatial / 8x temporal
(frames 8k+1, like LTX-Video; 32 px multiples), Wan VAE 8x spatial / 4x temporal
(frames 4k+1; 16 px multiples), one or two transformer layers of width 24-32.
A 9-frame generation at 32x32 (LTX) or 16x32 (Wan) with 2 steps takes well under
a second on one CPU core.
"""

from __future__ import annotations

from pathlib import Path

import torch

KINDS = ("ltx", "wan-flf2v", "wan-vace")
CORPUS = ["a person walks along a road. motion score: 3.2",
          "a dog runs on the grass. motion score: 12.0",
          "a red car drives past a tree, the camera pans left"] * 20


def tokenizer():
    """A byte-level BPE (``<pad>``, ``</s>``, ``<unk>``) as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
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

    tok = tokenizer()
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

    tok = tokenizer()
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

    tok = tokenizer()
    transformer = WanVACETransformer3DModel(in_channels=16, num_layers=1, vace_layers=[0],
                                            vace_in_channels=96, **WAN_DIMS)
    return WanVACEPipeline(tokenizer=tok, text_encoder=_t5("UMT5EncoderModel", len(tok)),
                           vae=_wan_vae(), scheduler=_wan_scheduler(), transformer=transformer)


BUILDERS = {"ltx": ltx, "wan-flf2v": wan_flf2v, "wan-vace": wan_vace, "ltx-dynamic": ltx_dynamic}


def build(kind: str, path, seed: int = 0) -> Path:
    """Save a tiny random ``kind`` pipeline (one of :data:`KINDS`, or ``ltx-dynamic``)
    into ``path``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = BUILDERS[kind]()
    path = Path(path)
    pipe.save_pretrained(str(path))
    return path
