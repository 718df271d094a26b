"""Field types shared by scheme configs."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from ...link.code import LDPC_MAX_RATE, LDPC_MIN_RATE
from ...link.modem import MODULATIONS

Modulation = Literal[tuple(MODULATIONS)]  # type: ignore[valid-type]

#: largest channel bandwidth ratio a ``*_cbr`` field takes (channel uses per pixel
#: value): analog schemes use at most 0.5 (two values per complex use), a digital
#: codec at QP 0 over rate-1/5 BPSK ~20; 100 leaves room and refuses typos like 1e308
MAX_CBR = 100.0


def parse_rate(v):
    """Accept a number or a fraction string such as ``"2/3"``."""
    if isinstance(v, bool):
        raise ValueError(f"rate must be a number or a fraction like '2/3', got {v!r}")
    if isinstance(v, str):
        try:
            return float(Fraction(v.strip()))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise ValueError(f"rate must be a number or a fraction like '2/3', got {v!r}") from None
    return v


#: an LDPC code rate in [1/5, 0.95], given as a number or "a/b"
Rate = Annotated[float, BeforeValidator(parse_rate), Field(ge=LDPC_MIN_RATE, le=LDPC_MAX_RATE)]
