"""Tiny random diffusers video pipelines for tests (not a test file): the builders of
:mod:`lgvsc.sim.tiny_models` (``make gpu-check`` uses them too) under the names the tests use.

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

from lgvsc.sim.tiny_models import BUILDERS, PIPELINE_KINDS as KINDS, WM_CORPUS as CORPUS  # noqa: F401
from lgvsc.sim.tiny_models import _t5, ltx, ltx_dynamic, wan_flf2v, wan_vace  # noqa: F401
from lgvsc.sim.tiny_models import build_pipeline as build, wm_tokenizer as tokenizer  # noqa: F401
