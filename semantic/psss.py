"""Probability-based semantic similarity score (PSSS), Sec. II-B of the paper.

A multimodal model is asked whether two pieces of information are similar
from the perspective of a *semantic focus*, to answer yes or no; instead of
sampling the answer, the probabilities of the "Yes" and "No" tokens at the
answer position are read:

* ``S_abs = P(Yes)``                      (Eq. 1), in [0, 1)
* ``S_rel = P(No) - P(Yes)``              (Eq. 2), in (-1, 1)

``S_rel`` is a divergence: higher means more different. SKEM inserts a
keyframe when ``S_rel > eta_th`` (0.35 in the paper). ``P(Yes) + P(No)`` (the
probability mass the model puts on a yes/no answer) is reported as a sanity
figure: a small mass means the prompt did not elicit a yes/no answer.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The paper's prompt, with <Info A>, <Info B> and <Semantic Focus>.
PROMPT_TEMPLATE = ("{info_a}, {info_b}. Determine whether they are similar from the "
                   "perspective of {focus}, use yes or no to answer.")

#: Default semantic focus (the paper's examples: the subject, or the action).
DEFAULT_FOCUS = "the main subject and its action"

#: Round-1 prompt of the authors' "paper" mode: describe both images, in a fixed format
#: (a labelled line each) so that the answer splits into the two descriptions round 2
#: compares (:func:`~lgvsc.semantic.scorers.vlm.split_descriptions`).
DESCRIBE_PROMPT = ("Describe Image-1 and Image-2 separately, one sentence each, in exactly "
                   "this format:\nImage-1: <one sentence>\nImage-2: <one sentence>")


def psss_prompt(info_a: str, info_b: str, focus: str = DEFAULT_FOCUS) -> str:
    """The PSSS question for two pieces of information."""
    return PROMPT_TEMPLATE.format(info_a=info_a, info_b=info_b, focus=focus)


@dataclass(frozen=True)
class PSSS:
    """Yes/No probabilities at the answer position (each in [0, 1], sum <= 1)."""

    p_yes: float
    p_no: float

    def __post_init__(self):
        for name in ("p_yes", "p_no"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}")
        if self.p_yes + self.p_no > 1.0 + 1e-6:
            raise ValueError(f"p_yes + p_no must be <= 1, got {self.p_yes + self.p_no}")

    @property
    def s_abs(self) -> float:
        """Eq. (1): P(Yes)."""
        return self.p_yes

    @property
    def s_rel(self) -> float:
        """Eq. (2): P(No) - P(Yes); higher = more different."""
        return self.p_no - self.p_yes

    @property
    def mass(self) -> float:
        """P(Yes) + P(No): how much the model answered yes/no at all."""
        return self.p_yes + self.p_no

    @staticmethod
    def from_s_rel(s_rel: float) -> "PSSS":
        """The PSSS with full yes/no mass that has this ``s_rel`` (for embedded scorers)."""
        if not -1.0 <= s_rel <= 1.0:
            raise ValueError(f"s_rel must be in [-1, 1], got {s_rel}")
        return PSSS(p_yes=(1.0 - s_rel) / 2.0, p_no=(1.0 + s_rel) / 2.0)
