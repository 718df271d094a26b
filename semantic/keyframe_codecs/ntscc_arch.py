"""NTSCC architecture settings (fixed at construction, validated here).

:class:`NTSCCArch` holds every size that shapes the network's weights, so a
checkpoint is described completely by its arch plus its state dict.
``ARCH_PRESETS``:

* ``"paper"`` -- the layout of the public NTSCC_JSAC22 checkpoints
  (``config.py`` of that repository): Swin analysis/synthesis transforms with
  256 channels in every stage, depths (1, 1, 2, 4) / (4, 2, 1, 1), 8 heads,
  window 8; hyperprior with 192 channels; JSCC encoder/decoder with 4 Swin
  blocks of 256 channels, 8 heads, window 16; 16 allowed token lengths
  ``PAPER_RATES``; eta 0.2; no SNR input; no z sent ("NTSCC w/o z").
* ``"small"`` -- a narrower model that trains on one GPU in hours.
* ``"tiny"`` -- a few thousand parameters for tests (64x64 inputs).

Units: ``rate_choices`` are token lengths in **real** channel values (two per
complex channel use); ``eta`` is real values per bit of estimated entropy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

PAPER_RATES = (16, 32, 48, 64, 80, 96, 102, 118, 134, 160, 186, 192, 208, 224, 240, 256)


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _int_tuple(name: str, value) -> tuple:
    try:
        out = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of ints, got {value!r}") from None
    if not out or not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
        raise ValueError(f"{name} must be a non-empty sequence of ints, got {value!r}")
    return out


@dataclass(frozen=True)
class NTSCCArch:
    """Sizes of an NTSCC network.

    :param width: channels of the non-latent Swin stages of g_a / g_s.
    :param latent_channels: C, channels of y (one token = one y position, C values).
    :param hyper_channels: channels of z.
    :param depths_a, depths_s: Swin blocks per stage; len = number of stages n,
        the spatial downsampling is 2**n (16 for 4 stages).
    :param num_heads: attention heads in g_a / g_s (divides width and latent_channels).
    :param window_size: Swin window in g_a / g_s.
    :param mlp_ratio: Swin MLP hidden size / dim.
    :param jscc_depth, jscc_heads, jscc_window: the Swin stage of f_e and f_d.
    :param rate_choices: allowed token lengths in real values, strictly increasing.
    :param eta: default real values per bit (training; the codec bisects eta).
    :param img_size: training crop side; decides where windows are clamped
        (a stage whose resolution is <= its window uses one unshifted window).
    :param snr_adaptive: f_e / f_d take the SNR (FiLM modulation).
    :param use_side_info: z is sent digitally and f_d's output is refined from
        the hyperprior (means, scales), NTSCC's "hyperprior-aided refinement".
    """

    width: int = 256
    latent_channels: int = 256
    hyper_channels: int = 192
    depths_a: tuple = (1, 1, 2, 4)
    depths_s: tuple = (4, 2, 1, 1)
    num_heads: int = 8
    window_size: int = 8
    mlp_ratio: float = 4.0
    jscc_depth: int = 4
    jscc_heads: int = 8
    jscc_window: int = 16
    rate_choices: tuple = PAPER_RATES
    eta: float = 0.2
    img_size: int = 256
    snr_adaptive: bool = False
    use_side_info: bool = False

    def __post_init__(self):
        for name in ("width", "latent_channels", "hyper_channels", "num_heads", "window_size",
                     "jscc_depth", "jscc_heads", "jscc_window", "img_size"):
            _positive_int(name, getattr(self, name))
        for name in ("depths_a", "depths_s", "rate_choices"):
            object.__setattr__(self, name, _int_tuple(name, getattr(self, name)))
        self._check_stages()
        self._check_channels()
        self._check_rates()
        if not self.mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        if not self.eta > 0:
            raise ValueError(f"eta must be > 0, got {self.eta}")

    def _check_stages(self) -> None:
        if len(self.depths_a) != len(self.depths_s) or min(self.depths_a + self.depths_s) < 1:
            raise ValueError(f"depths_a and depths_s must have the same length and entries >= 1, "
                             f"got {self.depths_a} and {self.depths_s}")
        if self.img_size % self.factor:
            raise ValueError(f"img_size must be a multiple of {self.factor}, got {self.img_size}")

    def _check_channels(self) -> None:
        for name in ("width", "latent_channels"):
            v = getattr(self, name)
            if v % self.num_heads or v % 4:
                raise ValueError(f"{name} must be a multiple of 4 and of num_heads="
                                 f"{self.num_heads}, got {v}")
        if self.latent_channels % self.jscc_heads:
            raise ValueError(f"jscc_heads must divide latent_channels={self.latent_channels}, "
                             f"got {self.jscc_heads}")

    def _check_rates(self) -> None:
        r = self.rate_choices
        if r[0] < 0 or r[-1] < 1 or any(b <= a for a, b in zip(r, r[1:])):
            raise ValueError(f"rate_choices must be strictly increasing ints >= 0 with a "
                             f"positive maximum, got {r}")

    @property
    def factor(self) -> int:
        """Spatial downsampling from image to y (16 for 4 stages)."""
        return 2 ** len(self.depths_a)

    @property
    def max_rate(self) -> int:
        return self.rate_choices[-1]

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "NTSCCArch":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown NTSCC arch settings {unknown}; valid: {sorted(known)}")
        return cls(**d)

    def with_(self, **overrides) -> "NTSCCArch":
        """A copy with some settings replaced (validated)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown NTSCC arch settings {unknown}; valid: {sorted(known)}")
        return replace(self, **overrides)


ARCH_PRESETS = {
    "paper": NTSCCArch(),
    "small": NTSCCArch(width=96, latent_channels=128, hyper_channels=96, depths_a=(1, 1, 1, 2),
                       depths_s=(2, 1, 1, 1), num_heads=4, window_size=8, jscc_depth=2,
                       jscc_heads=4, jscc_window=8,
                       rate_choices=(8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128),
                       snr_adaptive=True),
    "tiny": NTSCCArch(width=16, latent_channels=16, hyper_channels=16, depths_a=(1, 1, 1, 1),
                      depths_s=(1, 1, 1, 1), num_heads=2, window_size=4, mlp_ratio=2.0,
                      jscc_depth=1, jscc_heads=2, jscc_window=4,
                      rate_choices=(4, 8, 12, 16, 24, 32), img_size=64, snr_adaptive=True),
}


def make_arch(preset: str | NTSCCArch | dict = "paper", **overrides) -> NTSCCArch:
    """An arch from a preset name (``ARCH_PRESETS``), an arch or a dict, plus overrides."""
    if isinstance(preset, NTSCCArch):
        base = preset
    elif isinstance(preset, dict):
        base = NTSCCArch.from_dict(preset)
    elif preset in ARCH_PRESETS:
        base = ARCH_PRESETS[preset]
    else:
        raise ValueError(f"arch must be one of {sorted(ARCH_PRESETS)}, a dict or an NTSCCArch, "
                         f"got {preset!r}")
    return base.with_(**overrides) if overrides else base
