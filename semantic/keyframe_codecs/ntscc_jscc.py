"""NTSCC's entropy-guided variable-length JSCC encoder f_e and decoder f_d.

A token is one spatial position of y (C values). Its estimated entropy
``bits_k = sum_c -log2 p(y_kc)`` sets its length: ``k_idx = first i with
rate_choices[i] >= eta * bits_k`` (clamped to the last choice), and the token
gets ``rate_choices[k_idx]`` real channel values. f_e: add a refinement of
(1 - p, y), add the rate token of k_idx, Swin stage, LayerNorm, optional SNR
FiLM, then a per-choice linear map C -> max_rate masked to the allotted length.
f_d mirrors it. Shapes: y [B, C, h, w]; tokens L = h*w; symbols [B, L, max_rate].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .ntscc_arch import NTSCCArch
from .ntscc_blocks import Mlp, SwinStage

SNR_REF_DB = 10.0  # the SNR embedding sees snr_db / SNR_REF_DB


def rate_indexes(token_bits: torch.Tensor, eta, rate_choices: torch.Tensor) -> torch.Tensor:
    """Length index per token.

    :input token_bits: [B, L] float, estimated bits per token.
    :input eta: float or [B] tensor, real values per bit.
    :input rate_choices: [R] long, increasing. :output: [B, L] long in [0, R).
    """
    eta = torch.as_tensor(eta, dtype=token_bits.dtype, device=token_bits.device)
    want = token_bits * (eta.reshape(-1, 1) if eta.ndim else eta)
    idx = torch.searchsorted(rate_choices.to(want.dtype), want.contiguous())
    return idx.clamp(0, rate_choices.numel() - 1)


def length_mask(idx: torch.Tensor, rate_choices: torch.Tensor) -> torch.Tensor:
    """[B, L] indexes -> [B, L, max_rate] bool, True on each token's first lengths."""
    lengths = rate_choices[idx]
    return torch.arange(int(rate_choices[-1]), device=idx.device) < lengths[..., None]


class SNRModulation(nn.Module):
    """FiLM by the SNR: ``x * (1 + gamma(snr)) + beta(snr)``; starts as identity.

    :input x: [B, L, C]. :input snr_db: float (dB).
    """

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.net = Mlp(1, hidden, 2 * dim)

    def forward(self, x: torch.Tensor, snr_db: float) -> torch.Tensor:
        s = torch.full((1, 1), float(snr_db) / SNR_REF_DB, dtype=x.dtype, device=x.device)
        gamma, beta = self.net(s).chunk(2, dim=-1)
        return x * (1 + gamma) + beta


class RateAdaptionEncoder(nn.Module):
    """Per-choice linear C -> max_rate, masked. weight [R, C, max_rate], bias [R, max_rate]."""

    def __init__(self, dim: int, num_rates: int, max_rate: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_rates, dim, max_rate))
        self.bias = nn.Parameter(torch.zeros(num_rates, max_rate))

    def forward(self, x: torch.Tensor, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """:input x: [B, L, C]; idx [B, L]; mask [B, L, max_rate]. :output: [B, L, max_rate]."""
        every = torch.einsum("blc,rcn->blrn", x, self.weight)
        pick = idx[..., None, None].expand(-1, -1, 1, every.shape[-1])
        s = every.gather(2, pick).squeeze(2) + self.bias[idx]
        return s * mask


class RateAdaptionDecoder(nn.Module):
    """Per-choice linear max_rate -> C. weight [R, max_rate, C], bias [R, C]."""

    def __init__(self, dim: int, num_rates: int, max_rate: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_rates, max_rate, dim))
        self.bias = nn.Parameter(torch.zeros(num_rates, dim))

    def forward(self, s: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """:input s: [B, L, max_rate] (zeros past each length); idx [B, L]. :output: [B, L, C]."""
        every = torch.einsum("bln,rnc->blrc", s, self.weight)
        pick = idx[..., None, None].expand(-1, -1, 1, every.shape[-1])
        return every.gather(2, pick).squeeze(2) + self.bias[idx]


class _JSCCBase(nn.Module):
    def __init__(self, arch: NTSCCArch):
        super().__init__()
        c, side = arch.latent_channels, arch.img_size // arch.factor
        self.layers = nn.ModuleList([SwinStage(c, c, arch.jscc_depth, arch.jscc_heads,
                                               arch.jscc_window, (side, side), arch.mlp_ratio)])
        self.rate_token = nn.Parameter(torch.zeros(len(arch.rate_choices), c))
        self.snr_mod = SNRModulation(c) if arch.snr_adaptive else None
        self.register_buffer("rate_choices", torch.tensor(arch.rate_choices), persistent=False)

    def _swin(self, x: torch.Tensor, hw: tuple) -> torch.Tensor:
        for layer in self.layers:
            x, _ = layer(x, hw)
        return x

    def _modulate(self, x: torch.Tensor, snr_db: float | None) -> torch.Tensor:
        if self.snr_mod is None:
            return x
        if snr_db is None:
            raise ValueError("snr_db is required by an SNR-adaptive NTSCC model")
        return self.snr_mod(x, snr_db)


class JSCCEncoder(_JSCCBase):
    """f_e: (y, p(y), length indexes, SNR) -> masked channel values."""

    def __init__(self, arch: NTSCCArch):
        super().__init__(arch)
        c = arch.latent_channels
        self.refine = Mlp(2 * c, 8 * c, c)
        self.norm = nn.LayerNorm(c)
        self.rate_adaption = RateAdaptionEncoder(c, len(arch.rate_choices), arch.max_rate)

    def forward(self, y: torch.Tensor, py: torch.Tensor, idx: torch.Tensor,
                snr_db: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        """:input y, py: [B, C, h, w] (py: likelihoods, no gradient needed);
        :input idx: [B, h*w] long. :output: (s [B, L, max_rate], mask [B, L, max_rate] bool)."""
        h, w = y.shape[2:]
        x = y.flatten(2).transpose(1, 2)
        p = py.flatten(2).transpose(1, 2)
        x = x + self.refine(torch.cat([1 - p, x], dim=-1)) + self.rate_token[idx]
        x = self._modulate(self.norm(self._swin(x, (h, w))), snr_db)
        mask = length_mask(idx, self.rate_choices)
        return self.rate_adaption(x, idx, mask), mask


class JSCCDecoder(_JSCCBase):
    """f_d: (received values, length indexes, SNR) -> y_hat [B, C, h, w]."""

    def __init__(self, arch: NTSCCArch):
        super().__init__(arch)
        self.rate_adaption = RateAdaptionDecoder(arch.latent_channels, len(arch.rate_choices),
                                                 arch.max_rate)

    def forward(self, s: torch.Tensor, idx: torch.Tensor, hw: tuple,
                snr_db: float | None) -> torch.Tensor:
        """:input s: [B, L, max_rate]; idx [B, L]; hw = (h, w). :output: [B, C, h, w]."""
        x = self.rate_adaption(s, idx) + self.rate_token[idx]
        x = self._swin(self._modulate(x, snr_db), hw)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)


def init_rate_adaption(m: nn.Module, generator: torch.Generator) -> None:
    """Kaiming-normal weights, uniform biases (fan-in bound), from ``generator``."""
    fan_in = m.weight.shape[1]
    nn.init.kaiming_normal_(m.weight, a=math.sqrt(5), generator=generator)
    bound = 1 / math.sqrt(fan_in)
    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
