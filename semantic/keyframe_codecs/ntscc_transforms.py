"""NTSCC nonlinear transforms: Swin analysis g_a / synthesis g_s, conv hyperprior h_a / h_s.

Images are float [B, 3, H, W] in [0, 1] with H, W multiples of ``arch.factor``
(16 for 4 stages); the latent y is [B, C, H/16, W/16]; z is [B, N, h/4, w/4]
for y of [.., h, w] with h, w multiples of 4 (callers pad y).

Window clamping (a stage whose grid is <= its window uses one unshifted
window) is decided on the token grid at ``arch.img_size``. The reference code
tests g_a's stages on twice their grid; both give the same layout for the
paper arch (window 8 at 256x256), which is what public checkpoints need.
"""

from __future__ import annotations

import torch
from torch import nn

from .ntscc_arch import NTSCCArch
from .ntscc_blocks import PatchEmbed, SwinStage


def _dims_a(arch: NTSCCArch) -> list[int]:
    n = len(arch.depths_a)
    return [arch.width] * (n - 1) + [arch.latent_channels]


def _dims_s(arch: NTSCCArch) -> list[int]:
    n = len(arch.depths_s)
    return [arch.latent_channels] + [arch.width] * (n - 1)


class AnalysisTransform(nn.Module):
    """g_a: [B, 3, H, W] -> y [B, C, H/f, W/f] (patch embed /2, then n-1 merges)."""

    def __init__(self, arch: NTSCCArch):
        super().__init__()
        dims = _dims_a(arch)
        self.patch_embed = PatchEmbed(dims[0])
        side = arch.img_size // 2
        self.layers = nn.ModuleList()
        for i, depth in enumerate(arch.depths_a):
            res = (side >> i, side >> i)
            self.layers.append(SwinStage(dims[max(i - 1, 0)], dims[i], depth, arch.num_heads,
                                         arch.window_size, res, arch.mlp_ratio, down=i > 0))
        self.norm = nn.LayerNorm(dims[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        t, hw = self.patch_embed(x), (h // 2, w // 2)
        for layer in self.layers:
            t, hw = layer(t, hw)
        return self.norm(t).transpose(1, 2).reshape(b, -1, *hw)


class SynthesisTransform(nn.Module):
    """g_s: y [B, C, h, w] -> [B, 3, h*f, w*f] (unclamped; ~[0, 1])."""

    def __init__(self, arch: NTSCCArch):
        super().__init__()
        dims = _dims_s(arch)
        side = arch.img_size // arch.factor
        self.layers = nn.ModuleList()
        for i, depth in enumerate(arch.depths_s):
            out = dims[i + 1] if i + 1 < len(dims) else dims[-1]
            self.layers.append(SwinStage(dims[i], out, depth, arch.num_heads, arch.window_size,
                                         (side << i, side << i), arch.mlp_ratio, up=True))
        self.outconv = nn.Conv2d(dims[-1], 3, kernel_size=3, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        b, _, h, w = y.shape
        t, hw = y.flatten(2).transpose(1, 2), (h, w)
        for layer in self.layers:
            t, hw = layer(t, hw)
        return self.outconv(t.transpose(1, 2).reshape(b, -1, *hw))


def hyper_analysis(arch: NTSCCArch) -> nn.Sequential:
    """h_a: y [B, C, h, w] -> z [B, N, h/4, w/4]."""
    c, n = arch.latent_channels, arch.hyper_channels
    return nn.Sequential(
        nn.Conv2d(c, n, 3, stride=1, padding=1), nn.LeakyReLU(inplace=True),
        nn.Conv2d(n, n, 5, stride=2, padding=2), nn.LeakyReLU(inplace=True),
        nn.Conv2d(n, n, 5, stride=2, padding=2))


def hyper_synthesis(arch: NTSCCArch) -> nn.Sequential:
    """h_s: z_hat [B, N, h/4, w/4] -> [B, 2C, h, w] = (scales, means) along channels."""
    c, n = arch.latent_channels, arch.hyper_channels
    mid = c * 3 // 2
    return nn.Sequential(
        nn.ConvTranspose2d(n, c, 5, stride=2, padding=2, output_padding=1), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(c, mid, 5, stride=2, padding=2, output_padding=1), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, 2 * c, 3, stride=1, padding=1))
