"""Channel bandwidth ratio, the paper's definition (footnote 1), and budgets."""

from __future__ import annotations

#: a budget is met when the spent channel uses land in [BUDGET_FLOOR, 1] x target
BUDGET_FLOOR = 0.97


class BudgetError(ValueError):
    """A channel-use budget that cannot be met: the message says what does not
    fit and what would (the CLI prints it as one line, exit code 2)."""


def cbr(channel_uses: int, frames: int, height: int, width: int, channels: int = 3) -> float:
    """CBR = complex channel uses / (C x H x W x F)."""
    for name, v in (("frames", frames), ("height", height), ("width", width), ("channels", channels)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if channel_uses < 0:
        raise ValueError(f"channel_uses must be >= 0, got {channel_uses}")
    return channel_uses / (channels * height * width * frames)


def channel_uses_for_cbr(target_cbr: float, frames: int, height: int, width: int,
                         channels: int = 3) -> int:
    """Largest whole number of channel uses within ``target_cbr``."""
    if not target_cbr > 0:
        raise ValueError(f"target_cbr must be > 0, got {target_cbr}")
    return int(target_cbr * channels * height * width * frames)
