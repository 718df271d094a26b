"""Scorers: how semantically different a candidate frame is from a keyframe.

Every scorer returns :class:`~lgvsc.semantic.psss.PSSS` values (``s_rel`` in
(-1, 1), higher = more different) and counts its cost: model forward passes
and token-steps (tokens processed plus tokens generated), so modes can be
compared. Registered by name in :data:`SCORERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...link.registry import Registry
from ..psss import DEFAULT_FOCUS, PSSS

SCORERS: Registry[type["Scorer"]] = Registry("scorer", check_weights=True)


@dataclass
class Cost:
    forward_passes: int = 0
    token_steps: int = 0  # tokens processed (prefill) + tokens generated
    pairs: int = 0  # (keyframe, candidate) pairs scored
    split_failures: int = 0  # vlm paper mode: round-1 answers with no two descriptions
    truncated: int = 0  # vlm paper mode: round-1 answers cut at max_new_tokens

    def as_dict(self) -> dict:
        return dict(forward_passes=self.forward_passes, token_steps=self.token_steps,
                    pairs=self.pairs, split_failures=self.split_failures,
                    truncated=self.truncated)


class Scorer:
    """Base class; implement :meth:`score_batch`.

    :meth:`score` -- ``key`` uint8 [H, W, 3] and ``candidates`` a list of
    uint8 [H, W, 3] frames -> one :class:`PSSS` per candidate, each comparing
    the candidate with ``key`` from the perspective of ``focus``.
    """

    def __init__(self):
        self.cost = Cost()

    @classmethod
    def model_info(cls, **params) -> list:
        """The models an instance built with ``params`` loads, as
        :class:`~lgvsc.semantic.model_cache.ModelInfo`, computed without loading
        anything. Default: none (a scorer without weights)."""
        return []

    def score_batch(self, key: np.ndarray, candidates: list[np.ndarray], focus: str) -> list[PSSS]:
        raise NotImplementedError

    def score(self, key: np.ndarray, candidates: list[np.ndarray],
              focus: str = DEFAULT_FOCUS) -> list[PSSS]:
        if not candidates:
            return []
        out = self.score_batch(key, list(candidates), focus)
        self.cost.pairs += len(candidates)
        return out

    def reset_cost(self) -> None:
        self.cost = Cost()


def make_scorer(type: str, **params) -> Scorer:
    """Build a registered scorer; unknown names list the valid ones."""
    return SCORERS.get(type)(**params)


from . import classical, vlm  # noqa: E402,F401  (register "classical", "vlm")
