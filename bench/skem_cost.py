"""VLM cost of SKEM per minute of video: the authors' two-round "paper" mode vs
the one-prompt "direct" mode, with and without classical candidate pruning.

Runs SKEM (threshold 0.35) on one clip (default: builtin bikes, first 64
frames at 128x224) with a tiny random VLM whose TOKEN COUNTS are those of a
real checkpoint: InternVL at 256 image tokens per frame (one 448-px tile of
InternVL2/3; here 64-px tiles with 2-px patches give the same 256 tokens),
round-1 descriptions forced to ``--new-tokens`` tokens (min = max new tokens),
a BPE tokenizer trained on the project's prompts. It prints VLM forward passes
and token-steps (tokens processed + generated) per minute of video, scaled by
the clip's duration (frames / fps), and the paper / direct ratios.

Rows: ``paper`` (two rounds per pair, as the authors' code), ``direct``
(cached keyframe prefix, frame features computed once), ``direct+prune``
(the classical scorer pre-screens candidates; the VLM only scores those it
flags with S_rel > ``--prefilter-threshold``) and the same with SKEM
batches of ``--batch`` candidates (fewer forwards; candidates after a hit
are scored and counted, then discarded).

Random weights make random decisions, so by default (``--decisions
classical``) every VLM answer is replaced by the classical scorer's answer for
the same pair after the VLM has run and been counted: all rows then take the
same keyframe decisions and the costs compare like for like. ``--decisions
model`` keeps the tiny model's own answers. The classical scorer's speed
(frames per second) is printed too.

    python bench/skem_cost.py [--source builtin:bikes] [--frames 64] [--size 128 224]
        [--arch internvl|qwen2_vl|qwen2_5_vl] [--new-tokens 48] [--batch 8]
        [--prefilter-threshold 0.0] [--decisions classical|model] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from vlm_models import build  # noqa: E402  (tests/vlm_models.py: tiny checkpoints)

from lgvsc.semantic.scorers import Scorer, make_scorer  # noqa: E402
from lgvsc.semantic.scorers.vlm import VLMScorer, split_descriptions  # noqa: E402
from lgvsc.sim.video import VideoSpec, load_video  # noqa: E402


class CostedOracle(Scorer):
    """Runs ``vlm`` on every pair (its cost is the cost) but answers with ``oracle``."""

    def __init__(self, vlm: VLMScorer, oracle: Scorer):
        super().__init__()
        self.vlm, self.oracle = vlm, oracle
        self.cost = vlm.cost  # pairs are counted once, by this wrapper's score()

    def score_batch(self, key, candidates, focus):
        self.vlm.score_batch(key, candidates, focus)
        return self.oracle.score_batch(key, candidates, focus)


def real_shape_model(arch: str, folder: Path, tokens_per_frame: int) -> Path:
    """Tiny weights, real token counts (InternVL: ``tokens_per_frame`` per 1-tile frame;
    Qwen: the real dynamic resolution, 40 tokens for a 128x224 frame)."""
    from transformers import GenerationConfig

    if arch == "internvl":
        side = math.isqrt(tokens_per_frame)
        if side * side != tokens_per_frame:
            raise SystemExit(f"--tokens-per-frame must be a square, got {tokens_per_frame}")
        build(arch, folder, image_size=4 * side, patch_size=2)
    else:
        build(arch, folder, max_pixels=28 * 28 * 1280)
    # greedy decoding of random weights repeats one token: forbid repeats and non-ASCII
    # pieces, so the descriptions re-tokenize in round 2 to about their generated length
    gen = GenerationConfig.from_pretrained(folder)
    gen.no_repeat_ngram_size = 1
    gen.suppress_tokens = sorted(set(gen.suppress_tokens or []) | set(unprintable_ids(folder)))
    gen.save_pretrained(folder)
    return folder


def unprintable_ids(folder: Path) -> list[int]:
    """Token ids that decode to anything but printable ASCII (end of turn excepted)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    text = [tok.decode([i]) for i in range(len(tok))]
    return [i for i, t in enumerate(text) if not (t.isascii() and t.isprintable()) and i != tok.eos_token_id]


class HalvingScorer(VLMScorer):
    """Random weights write no "Image-2:" label or line break: when the authors' split
    fails, the words are halved, as two one-sentence descriptions would be."""

    @staticmethod
    def splitter(text: str) -> tuple[str, str]:
        parts = split_descriptions(text)
        words = text.split()
        if parts is None and len(words) >= 2:
            return " ".join(words[:len(words) // 2]), " ".join(words[len(words) // 2:])
        return parts


def skem_run(selectors, frames, scorer, batch, prefilter_threshold):
    """One SKEM pass -> (Selection, wall seconds)."""
    pre = make_scorer("classical") if prefilter_threshold is not None else None
    skem = selectors.SKEM(scorer, threshold=0.35, batch=batch, prefilter=pre,
                          prefilter_threshold=prefilter_threshold)
    t = time.perf_counter()
    sel = skem.select(frames)
    return sel, time.perf_counter() - t


def classical_fps(frames: np.ndarray) -> float:
    """Frames per second of the classical scorer (each frame scored against frame 0)."""
    sc = make_scorer("classical")
    t = time.perf_counter()
    sc.score(frames[0], list(frames[1:]))
    return (len(frames) - 1) / (time.perf_counter() - t)


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="builtin:bikes")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--size", type=int, nargs=2, default=[128, 224], metavar=("H", "W"))
    ap.add_argument("--arch", default="internvl", choices=["internvl", "qwen2_vl", "qwen2_5_vl"])
    ap.add_argument("--tokens-per-frame", type=int, default=256, help="InternVL image tokens per frame")
    ap.add_argument("--new-tokens", type=int, default=48, help="round-1 description length (paper mode)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prefilter-threshold", type=float, nargs="+", default=[0.0, 0.2],
                    help="classical S_rel above which the VLM is asked (one row each)")
    ap.add_argument("--decisions", default="classical", choices=["classical", "model"])
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args()


def rows(a) -> list[tuple[str, str, int, float | None]]:
    """(name, mode, SKEM batch, prefilter threshold) of every run."""
    out = [("paper", "paper", 1, None), ("direct", "direct", 1, None)]
    for t in a.prefilter_threshold:
        out += [(f"direct+prune>{t:g}", "direct", 1, t),
                (f"direct+prune>{t:g} b{a.batch}", "direct", a.batch, t)]
    return out


def run(a, folder, frames, minutes) -> dict:
    """Every row's SKEM run; prints one line each; returns name -> Cost."""
    from lgvsc.semantic import selectors  # the SKEM selector

    results = {}
    for name, mode, batch, pthr in rows(a):
        vlm = HalvingScorer(folder, mode=mode, batch=batch, max_new_tokens=a.new_tokens,
                            min_new_tokens=a.new_tokens if mode == "paper" else 0)
        scorer = vlm if a.decisions == "model" else CostedOracle(vlm, make_scorer("classical"))
        sel, wall = skem_run(selectors, frames, scorer, batch, pthr)
        c = results[name] = vlm.cost
        print(f"{name:>22}: keyframes {sel.keyframes}  pairs {c.pairs:3d}  "
              f"forwards/min {c.forward_passes / minutes:9.0f}  "
              f"token-steps/min {c.token_steps / minutes:11.0f}  "
              f"tokens/pair {c.token_steps / max(c.pairs, 1):6.0f}  wall {wall:5.1f} s")
    return results


def ratio(a: int, b: int) -> str:
    return f"x{a / b:.1f}" if b else "inf (the VLM was never asked)"


def main():
    from transformers.utils import logging as hf_logging

    a = parse()
    torch.set_num_threads(a.threads)
    hf_logging.disable_progress_bar()
    video = load_video(VideoSpec(source=a.source, frames=a.frames, size=tuple(a.size)))
    frames, minutes = video.frames, len(video.frames) / video.fps / 60.0
    folder = real_shape_model(a.arch, Path(tempfile.mkdtemp(prefix="skem-cost-")), a.tokens_per_frame)
    print(f"{a.source}: {len(frames)} frames {frames.shape[1]}x{frames.shape[2]} @ {video.fps:g} fps "
          f"= {60 * minutes:.2f} s; tiny {a.arch} with real token counts; decisions: {a.decisions}")
    print(f"classical scorer: {classical_fps(frames):.0f} frames/s")
    results = run(a, folder, frames, minutes)
    paper = results.pop("paper")
    for name, c in results.items():
        print(f"paper / {name}: token-steps {ratio(paper.token_steps, c.token_steps)}, "
              f"forward passes {ratio(paper.forward_passes, c.forward_passes)}")


if __name__ == "__main__":
    main()
