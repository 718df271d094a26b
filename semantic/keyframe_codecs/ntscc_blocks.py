"""Swin-Transformer building blocks of NTSCC (any input resolution).

Tokens are ``[B, L, C]`` float tensors with ``L = H * W`` in row-major order;
every ``forward`` takes the token grid ``hw = (H, W)``. A stage whose grid is
not a multiple of its window is zero-padded on the bottom/right inside the
block (after ``norm1``) and cropped back, as in the NTSCC reference code.
Attention masks for shifted windows are computed for the padded grid and
cached per (H, W, device). Module and parameter names follow the reference
code (``norm1``, ``attn.qkv``, ``attn.proj``, ``attn.relative_position_bias_table``,
``norm2``, ``mlp.fc1``, ``mlp.fc2``, ``downsample.reduction`` / ``.norm``,
``upsample.increment`` / ``.norm``, ``patch_embed.proj`` / ``.norm``) so that
public checkpoints map by prefix only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MASK_VALUE = -100.0  # added to attention logits across shifted-window regions


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on the last dimension."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def relative_position_index(window: int) -> torch.Tensor:
    """[w*w, w*w] long: index into the (2w-1)^2 relative-bias table."""
    r = torch.arange(window)
    ii, jj = torch.meshgrid(r, r, indexing="ij")
    coords = torch.stack([ii.reshape(-1), jj.reshape(-1)])  # [2, N]
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # [2, N, N], >= 0
    return rel[0] * (2 * window - 1) + rel[1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * nW, w*w, C] (windows row-major per image)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(win: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """[B * nW, w*w, C] -> [B, H, W, C]."""
    c = win.shape[-1]
    x = win.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shift_mask(h: int, w: int, window: int, shift: int, device) -> torch.Tensor:
    """[nW, w*w, w*w] float: 0 within a region, ``MASK_VALUE`` across regions
    of the cyclically shifted (padded) grid ``h x w``."""
    def regions(n):
        idx = torch.arange(n, device=device)
        return (idx >= n - window).long() + (idx >= n - shift).long()

    label = (regions(h)[:, None] * 3 + regions(w)[None, :]).float()
    lw = window_partition(label[None, :, :, None], window).squeeze(-1)  # [nW, N]
    return (lw[:, None, :] != lw[:, :, None]).float() * MASK_VALUE


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a relative position bias.

    :input x: [B * nW, w*w, C]. :input mask: [nW, w*w, w*w] or None.
    """

    def __init__(self, dim: int, window: int, heads: int):
        super().__init__()
        self.heads = heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window),
                             persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bn, n, c = x.shape
        q, k, v = self.qkv(x).view(bn, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        bias = bias.view(n, n, self.heads).permute(2, 0, 1)  # [heads, N, N]
        if mask is None:
            attn_bias = bias.unsqueeze(0)
        else:
            nw = mask.shape[0]
            attn_bias = (bias[None, None] + mask[None, :, None]).expand(bn // nw, -1, -1, -1, -1)
            attn_bias = attn_bias.reshape(bn, self.heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)
        return self.proj(out.transpose(1, 2).reshape(bn, n, c))


class SwinBlock(nn.Module):
    """(Shifted-)window attention + MLP, pre-norm, residual.

    :param resolution: the token grid at construction (``img_size``-based);
        if its short side is <= ``window`` the block uses one window of that
        side and no shift (the reference rule).
    """

    def __init__(self, dim: int, heads: int, window: int, shifted: bool, resolution: tuple,
                 mlp_ratio: float):
        super().__init__()
        side = min(resolution)
        self.window = side if side <= window else window
        self.shift = self.window // 2 if shifted and side > window else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dim)
        self._masks: dict = {}

    def _mask(self, h: int, w: int, device) -> torch.Tensor | None:
        if not self.shift:
            return None
        key = (h, w, str(device))
        if key not in self._masks:
            self._masks[key] = shift_mask(h, w, self.window, self.shift, device)
        return self._masks[key]

    def forward(self, x: torch.Tensor, hw: tuple) -> torch.Tensor:
        h, w = hw
        b, n, c = x.shape
        win, s = self.window, self.shift
        t = F.pad(self.norm1(x).view(b, h, w, c), (0, 0, 0, (-w) % win, 0, (-h) % win))
        hp, wp = t.shape[1:3]
        if s:
            t = torch.roll(t, (-s, -s), (1, 2))
        t = self.attn(window_partition(t, win), self._mask(hp, wp, x.device))
        t = window_reverse(t, win, hp, wp)
        if s:
            t = torch.roll(t, (s, s), (1, 2))
        x = x + t[:, :h, :w].reshape(b, n, c)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """[B, 3, H, W] -> [B, H/2 * W/2, C] (2x2 stride-2 conv + LayerNorm)."""

    def __init__(self, dim: int, in_chans: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=2, stride=2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class PatchMerging(nn.Module):
    """[B, H*W, C] on (H, W) -> [B, H/2*W/2, C_out]: 2x2 neighbours concatenated."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, hw: tuple) -> torch.Tensor:
        h, w = hw
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.reshape(b, -1, 4 * c)))


class PatchReverseMerging(nn.Module):
    """[B, H*W, C] on (H, W) -> [B, 2H*2W, C_out]: pixel shuffle, LayerNorm, Linear."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim // 4)
        self.increment = nn.Linear(dim // 4, out_dim, bias=False)

    def forward(self, x: torch.Tensor, hw: tuple) -> torch.Tensor:
        h, w = hw
        b, _, c = x.shape
        x = F.pixel_shuffle(x.transpose(1, 2).reshape(b, c, h, w), 2)
        return self.increment(self.norm(x.flatten(2).transpose(1, 2)))


class SwinStage(nn.Module):
    """Optional PatchMerging, ``depth`` Swin blocks (odd ones shifted), optional
    PatchReverseMerging. ``resolution`` is the blocks' grid at construction.

    :input x: [B, L, dim]; :input hw: the input grid. :output: (tokens, grid out).
    """

    def __init__(self, dim: int, out_dim: int, depth: int, heads: int, window: int,
                 resolution: tuple, mlp_ratio: float, down: bool = False, up: bool = False):
        super().__init__()
        self.downsample = PatchMerging(dim, out_dim) if down else None
        block_dim = out_dim if down else dim
        self.blocks = nn.ModuleList([
            SwinBlock(block_dim, heads, window, i % 2 == 1, resolution, mlp_ratio)
            for i in range(depth)])
        self.upsample = PatchReverseMerging(dim, out_dim) if up else None

    def forward(self, x: torch.Tensor, hw: tuple) -> tuple[torch.Tensor, tuple]:
        if self.downsample is not None:
            x = self.downsample(x, hw)
            hw = (hw[0] // 2, hw[1] // 2)
        for blk in self.blocks:
            x = blk(x, hw)
        if self.upsample is not None:
            x = self.upsample(x, hw)
            hw = (hw[0] * 2, hw[1] * 2)
        return x, hw
