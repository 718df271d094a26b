"""The NTSCC network (Dai et al., JSAC 2022): NTC hyperprior + variable-length JSCC.

x -> g_a -> y -> h_a -> z -> z_hat -> h_s -> (scales, means) -> p(y) per element
(GaussianConditional) -> bits per token -> length indexes (eta) -> f_e -> channel
-> f_d -> [hyperprior refinement] -> g_s -> x_hat.

Images: float [B, 3, H, W] in [0, 1], H and W multiples of ``arch.factor``
(the codec pads). y: [B, C, H/16, W/16]; y is replicate-padded to a multiple
of 4 for the hyperprior and h_s's output cropped back. Rates: bits per pixel
= bits / (B * H * W); CBR = complex channel uses / (3 * H * W).
Submodule names: ``g_a, g_s, h_a, h_s, entropy_bottleneck, gaussian_conditional,
f_e, f_d`` and ``hyper_refine`` (only with ``arch.use_side_info``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .ntscc_arch import NTSCCArch
from .ntscc_awgn import awgn_masked
from .ntscc_blocks import Mlp, WindowAttention
from .ntscc_entropy import (bits, compressai_entropy_models, ste_round, uniform_noise,
                            y_likelihood, z_likelihood)
from .ntscc_jscc import (JSCCDecoder, JSCCEncoder, RateAdaptionDecoder, RateAdaptionEncoder,
                         SNRModulation, init_rate_adaption, rate_indexes)
from .ntscc_transforms import (AnalysisTransform, SynthesisTransform, hyper_analysis,
                               hyper_synthesis)

HYPER_FACTOR = 4  # h_a downsamples y by 4


class NTSCCModel(nn.Module):
    """NTSCC network. Weights are initialised from ``generator`` (default seed 0);
    construction leaves the global RNG state unchanged.

    :param arch: an :class:`~.ntscc_arch.NTSCCArch`.
    :param generator: CPU ``torch.Generator`` for the initial weights.
    """

    def __init__(self, arch: NTSCCArch, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(arch, NTSCCArch):
            raise ValueError(f"arch must be an NTSCCArch, got {type(arch).__name__}")
        EntropyBottleneck, GaussianConditional = compressai_entropy_models()
        self.arch = arch
        with torch.random.fork_rng(devices=[]):  # module constructors draw; undo it
            self.g_a, self.g_s = AnalysisTransform(arch), SynthesisTransform(arch)
            self.h_a, self.h_s = hyper_analysis(arch), hyper_synthesis(arch)
            self.entropy_bottleneck = EntropyBottleneck(arch.hyper_channels)
            self.gaussian_conditional = GaussianConditional(None)
            self.f_e, self.f_d = JSCCEncoder(arch), JSCCDecoder(arch)
            c = arch.latent_channels
            self.hyper_refine = Mlp(3 * c, 6 * c, c) if arch.use_side_info else None
        self.reset_parameters(generator or torch.Generator().manual_seed(0))

    # -- initialisation ------------------------------------------------------
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Re-draw every parameter from ``generator`` (Swin / PyTorch conventions)."""
        done: set[int] = set()
        for m in self.modules():
            done |= _init_module(m, generator)
        for m in self.modules():
            if isinstance(m, SNRModulation):  # start as identity
                nn.init.zeros_(m.net.fc2.weight)
                nn.init.zeros_(m.net.fc2.bias)
        missed = [n for n, p in self.named_parameters() if id(p) not in done]
        if missed:
            raise RuntimeError(f"NTSCC init missed parameters {missed[:5]}")

    # -- pieces --------------------------------------------------------------
    def medians(self) -> torch.Tensor:
        """[1, N, 1, 1] EntropyBottleneck medians (z is coded as round(z - m) + m);
        detached: only the aux loss trains the quantiles."""
        return self.entropy_bottleneck.quantiles[:, 0, 1].detach().reshape(1, -1, 1, 1)

    def hyper_analyse(self, y: torch.Tensor) -> torch.Tensor:
        """y [B, C, h, w] -> z [B, N, ceil(h/4), ceil(w/4)]."""
        h, w = y.shape[2:]
        yp = F.pad(y, (0, (-w) % HYPER_FACTOR, 0, (-h) % HYPER_FACTOR), mode="replicate")
        return self.h_a(yp)

    def hyper_params(self, z_hat: torch.Tensor, hw: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """z_hat -> (scales, means), each [B, C, h, w] for y of size ``hw``."""
        params = self.h_s(z_hat)[:, :, :hw[0], :hw[1]]
        scales, means = params.chunk(2, dim=1)
        return scales, means

    def token_bits(self, y: torch.Tensor, scales: torch.Tensor,
                   means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p(y) [B, C, h, w], estimated bits per token [B, h*w]) -- no gradient."""
        with torch.no_grad():
            py = y_likelihood(self.gaussian_conditional, y, scales, means)
        return py, bits(py).sum(1).flatten(1)

    def refine(self, y_hat: torch.Tensor, scales: torch.Tensor,
               means: torch.Tensor) -> torch.Tensor:
        """Hyperprior-aided refinement of f_d's output (identity without side info)."""
        if self.hyper_refine is None:
            return y_hat
        b, c, h, w = y_hat.shape
        t = torch.cat([y_hat, means, scales], dim=1).flatten(2).transpose(1, 2)
        return y_hat + self.hyper_refine(t).transpose(1, 2).reshape(b, c, h, w)

    # -- training forward ------------------------------------------------------
    def forward(self, x: torch.Tensor, snr_db: float | None, eta: float,
                generator: torch.Generator) -> dict:
        """Training pass.

        :input x: [B, 3, H, W] float in [0, 1], H, W multiples of ``arch.factor``.
        :input snr_db: AWGN SNR (dB) for the differentiable channel; None = noiseless.
        :input eta: real values per bit for the length choice.
        :input generator: source of the quantisation and channel noise.
        :output: dict with ``x_hat`` (NTSCC), ``x_ntc`` (quantised-y path), scalar
            tensors ``mse`` / ``mse_ntc`` (on [0, 1]), ``bpp_y`` / ``bpp_z`` /
            ``bpp`` (bits per pixel) and float ``cbr`` (complex uses / (3 H W)).
        """
        b, _, h, w = x.shape
        y = self.g_a(x)
        z = self.hyper_analyse(y)
        z_hat = ste_round(z - self.medians()) + self.medians()
        scales, means = self.hyper_params(z_hat, y.shape[2:])
        lik_y = y_likelihood(self.gaussian_conditional, y + uniform_noise(y, generator),
                             scales, means)
        lik_z = z_likelihood(self.entropy_bottleneck, z + uniform_noise(z, generator))
        py, tbits = self.token_bits(y, scales, means)
        idx = rate_indexes(tbits, eta, self.f_e.rate_choices)
        s, mask = self.f_e(y, py, idx, snr_db)
        s_hat = awgn_masked(s, mask, snr_db, generator)
        y_jscc = self.refine(self.f_d(s_hat, idx, tuple(y.shape[2:]), snr_db), scales, means)
        x_hat = self.g_s(y_jscc)
        x_ntc = self.g_s(ste_round(y - means) + means)
        pixels = b * h * w
        bpp_y = bits(lik_y).sum() / pixels
        bpp_z = bits(lik_z).sum() / pixels
        return dict(x_hat=x_hat, x_ntc=x_ntc, mse=F.mse_loss(x_hat, x),
                    mse_ntc=F.mse_loss(x_ntc, x), bpp_y=bpp_y, bpp_z=bpp_z, bpp=bpp_y + bpp_z,
                    cbr=float(mask.sum()) / 2 / (3 * pixels))

    def aux_loss(self) -> torch.Tensor:
        """EntropyBottleneck quantile loss (optimise ``aux_parameters`` with it)."""
        return self.entropy_bottleneck.loss()

    def aux_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n.endswith(".quantiles")]

    def main_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.endswith(".quantiles")]


def _init_module(m: nn.Module, g: torch.Generator) -> set[int]:
    """Initialise the parameters owned directly by ``m``; return their ids."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02, generator=g)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=g)
        bound = 1 / math.sqrt(m.weight[0].numel())
        nn.init.uniform_(m.bias, -bound, bound, generator=g)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, WindowAttention):
        nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02, generator=g)
    elif isinstance(m, (JSCCEncoder, JSCCDecoder)):
        nn.init.trunc_normal_(m.rate_token, std=0.02, generator=g)
    elif isinstance(m, (RateAdaptionEncoder, RateAdaptionDecoder)):
        init_rate_adaption(m, g)
    elif type(m).__name__ == "EntropyBottleneck":  # the rest is set deterministically
        for bias in m.biases:
            nn.init.uniform_(bias, -0.5, 0.5, generator=g)
        return {id(p) for p in m.parameters()}
    else:
        return set()
    return {id(p) for p in m.parameters(recurse=False)}

