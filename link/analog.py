"""The analog pipe: real tensors (e.g. JSCC latents) as complex channel symbols.

x (any shape, real) -> consecutive pairs become one complex symbol -> scaled to
unit average power -> channel -> perfect-CSI equalisation -> rescaled -> x_hat
(same shape). The power scale is side information: it is sent as a float32
(32 bits) and charged at ``side_bits_per_use`` bits per complex channel use
(default 1, i.e. rate-1/2 QPSK), assumed delivered intact like any control
field; the receiver uses exactly the float32 value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .channels import Channel

SCALE_BITS = 32


@dataclass
class AnalogResult:
    """``x_hat`` (shape of the input, float32), ``symbols`` complex uses for the
    data, ``side_info_bits`` / ``side_info_uses`` for the power scale;
    ``channel_uses`` is their sum; ``tx_power`` the measured mean |s|^2 sent;
    ``noise_var`` (shape of the input) the error variance of each output value
    given the channel: for ZF the variance of the additive noise
    ``scale^2 no / (2 |h|^2)``, for MMSE the LMMSE error variance
    ``scale^2 no / (2 (|h|^2 + no))`` of a unit-power Gaussian input."""

    x_hat: torch.Tensor
    symbols: int
    side_info_bits: int
    side_info_uses: int
    tx_power: float
    noise_var: torch.Tensor | None = None

    @property
    def channel_uses(self) -> int:
        return self.symbols + self.side_info_uses


class AnalogPipe:
    """Real tensor -> complex symbols -> channel -> equalised real tensor.

    :param equalizer: ``"mmse"`` -- ``conj(h) y / (|h|^2 + no)``, the LMMSE
        estimate for a unit-power input (on AWGN a shrink by ``1/(1+no)``);
        ``"zf"`` -- ``y / h``, unbiased, noise ``no/|h|^2``.
    :param side_bits_per_use: Bits per channel use charged for the power scale.
    """

    def __init__(self, equalizer: str = "mmse", side_bits_per_use: float = 1.0):
        if equalizer not in ("mmse", "zf"):
            raise ValueError(f"equalizer must be 'mmse' or 'zf', got {equalizer!r}")
        if not side_bits_per_use > 0:
            raise ValueError(f"side_bits_per_use must be > 0, got {side_bits_per_use}")
        self.equalizer = equalizer
        self.side_bits_per_use = side_bits_per_use

    def symbols_for(self, num_values: int) -> int:
        """Channel uses for ``num_values`` reals, side info included."""
        if num_values == 0:
            return 0
        return math.ceil(num_values / 2) + math.ceil(SCALE_BITS / self.side_bits_per_use)

    def __call__(self, x: torch.Tensor, channel: Channel, no: float,
                 generator: torch.Generator) -> AnalogResult:
        """:input x: real tensor, any shape. :input no: complex noise variance."""
        if torch.is_complex(x):
            raise TypeError("x must be real; the pipe pairs values into complex symbols")
        shape, num = x.shape, x.numel()
        if num == 0:
            return AnalogResult(torch.zeros(shape), 0, 0, 0, 0.0, torch.zeros(shape))
        flat = x.detach().reshape(-1).to(torch.float32)
        if num % 2:
            flat = torch.cat([flat, flat.new_zeros(1)])
        z = torch.complex(flat[0::2], flat[1::2])
        power = float(z.abs().square().mean())
        scale = torch.tensor(math.sqrt(power), dtype=torch.float32)  # the side info
        s = z / scale if power > 0 else z
        y, h = channel(s, no, generator)
        g = h.abs().square().expand(y.shape).clamp_min(1e-12)
        if self.equalizer == "zf":
            s_hat, var = y / h, no / g
        else:
            s_hat, var = h.conj() * y / (g + no), no / (g + no)
        z_hat = s_hat * scale if power > 0 else torch.zeros_like(s_hat)
        out = torch.stack([z_hat.real, z_hat.imag], dim=-1).reshape(-1)[:num].reshape(shape)
        var = (var * scale.square() / 2).repeat_interleave(2)[:num].reshape(shape)
        side_uses = math.ceil(SCALE_BITS / self.side_bits_per_use)
        return AnalogResult(out, z.numel(), SCALE_BITS, side_uses,
                            float(s.abs().square().mean()), var)

    def advance(self, num_values: int, channel: Channel, no: float,
                generator: torch.Generator) -> None:
        """Draw from ``generator`` exactly what a call on ``num_values`` values draws
        (the channel on that many zero symbols: fading gains, then noise, whatever
        the values), sending nothing: a caller that must use the generator's later
        numbers first can clone its state, advance it, and make the call later
        with the clone."""
        if num_values == 0:
            return
        channel(torch.zeros(math.ceil(num_values / 2), dtype=torch.complex64), no, generator)
