"""CompressAI entropy models for NTSCC, imported lazily.

``compressai`` is imported only when an NTSCC model is built, so importing
``lgvsc.semantic`` never needs it. The likelihood helpers take already
noised/quantised inputs: training draws its uniform noise from a passed
``torch.Generator`` instead of CompressAI's global-RNG ``quantize("noise")``.
Likelihoods are per element, lower-bounded like CompressAI's (1e-9).
"""

from __future__ import annotations

import torch

INSTALL_HINT = (
    "NTSCC needs CompressAI's entropy models: pip install --no-deps compressai "
    "(--no-deps because compressai 1.2.x pins numpy<2 in its metadata, yet "
    "EntropyBottleneck / GaussianConditional work with numpy 2)")


def compressai_entropy_models():
    """(EntropyBottleneck, GaussianConditional) classes; ImportError with the install hint."""
    try:
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return EntropyBottleneck, GaussianConditional


def uniform_noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """U(-0.5, 0.5) noise shaped like ``x`` (on x's device) from ``generator``."""
    u = torch.rand(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return u.to(x.device) - 0.5


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through (identity) gradient."""
    return x + (torch.round(x) - x).detach()


def z_likelihood(eb, z: torch.Tensor) -> torch.Tensor:
    """EntropyBottleneck likelihood of ``z`` [B, N, h, w] (noised or quantised) -> same shape."""
    b, n = z.shape[:2]
    v = z.transpose(0, 1).reshape(n, 1, -1)
    out = eb._likelihood(v)
    lik = out[0] if isinstance(out, tuple) else out
    if eb.use_likelihood_bound:
        lik = eb.likelihood_lower_bound(lik)
    return lik.reshape(n, b, *z.shape[2:]).transpose(0, 1)


def y_likelihood(gc, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """GaussianConditional likelihood of ``y`` [B, C, h, w] given (scales, means), same shape."""
    lik = gc._likelihood(y, scales, means)
    if gc.use_likelihood_bound:
        lik = gc.likelihood_lower_bound(lik)
    return lik


def bits(likelihood: torch.Tensor) -> torch.Tensor:
    """-log2(likelihood), elementwise, >= 0."""
    return (-torch.log2(likelihood)).clamp_min(0)
