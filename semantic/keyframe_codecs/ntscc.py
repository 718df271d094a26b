"""NTSCC keyframe codec (Dai et al., "Nonlinear transform source-channel coding
for semantic communications", IEEE JSAC 2022), registered as ``"ntscc"``.

The image is padded (replicate) to a multiple of 16, mapped to a latent y by a
Swin analysis transform, and y's hyperprior gives each token (one y position,
C values) an entropy estimate ``bits_k``. Token k gets ``rate_choices[i]`` real
channel values, the first choice >= ``eta * bits_k``; the JSCC encoder f_e maps
every token to its values, which travel through the analog pipe (two reals per
complex use, power normalised per image). The length indexes (and z, if the
arch sends it) are side information for the digital pipe.

Channel uses per image (what ``budget_uses`` bounds, side info included)::

    analog.symbols_for(n_values)            # ceil(n/2) + the 32-bit power scale
    + ceil(digital.channel_uses(S) / B)     # S = side bits of the whole batch

``encode`` fixes the side bits first (they do not depend on eta), then picks
each image's eta by bisection so the analog part fits what is left. The batch
total ``sum(analog) + digital.channel_uses(S)`` is then <= ``B * budget_uses``.

Checkpoints: :meth:`NTSCC.from_checkpoint` reads our training checkpoints and
the public NTSCC_JSAC22 state dicts (key mapping in
:mod:`.ntscc_checkpoint`). The public models take no SNR input and send no z
("NTSCC w/o z"): side info is the 4-bit length index per token only.
Needs CompressAI (``pip install --no-deps compressai``), imported lazily.

Budget floor (:meth:`NTSCC.min_uses`): every token at its shortest length
plus the length indexes, e.g. 720 tokens x 16 values = 5,792 analog uses and
2,880 index bits = 4,356 digital uses (QPSK, rate 1/3) at 320x576 with the ``"paper"`` arch.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...link.analog import AnalogPipe
from ...link.cbr import BudgetError
from ...link.digital import DigitalPipe
from ...link.registry import bound_params
from ..model_cache import ModelInfo, ModelKey, estimate_bytes, model_cache
from ..model_files import check_torch_file
from . import KEYFRAME_CODECS, Encoded, KeyframeCodec
from .ntscc_arch import NTSCCArch, make_arch
from .ntscc_budget import choose_eta
from .ntscc_checkpoint import check_checkpoint, load_model
from .ntscc_jscc import length_mask, rate_indexes
from .ntscc_model import NTSCCModel
from .ntscc_sideinfo import Z_LENGTH_BITS, index_bits, pack_image, unpack_image


@KEYFRAME_CODECS.register("ntscc", weights="a trained checkpoint (checkpoint:)",
                           packages=("compressai",))
class NTSCC(KeyframeCodec):
    """NTSCC keyframe codec.

    :param checkpoint: path of a checkpoint (ours or public); None builds a
        randomly initialised model (tests, training from scratch).
    :param arch: preset name / dict / NTSCCArch (base for public checkpoints
        and for ``checkpoint=None``); ``**arch_overrides`` replace settings.
    :param analog, digital: the pipes (defaults as in :class:`KeyframeCodec`).
    :param device: torch device for the network.
    :param default_snr_db: SNR fed to an SNR-adaptive model when ``snr_db`` is None.
    :param seed: initial weights when ``checkpoint`` is None.
    :param max_eta: cap on eta (real values per bit); with a generous budget the
        codec then behaves like NTSCC at a fixed eta (the paper's 0.2).

    Building a codec loads nothing (the arch settings are validated); the first
    :meth:`encode` / :meth:`decode` loads the checkpoint through the process's
    model cache, so schemes naming the same file share one copy.
    :meth:`from_checkpoint` loads at once.
    """

    #: keys a spec may give through ``**arch_overrides``; the pipes are objects, not spec values
    spec_extra_keys = tuple(f.name for f in fields(NTSCCArch))
    spec_hidden_keys = ("analog", "digital")

    def __init__(self, checkpoint: str | None = None, arch: str | dict | NTSCCArch = "paper",
                 analog: AnalogPipe | None = None, digital: DigitalPipe | None = None,
                 device: str = "cpu", default_snr_db: float = 10.0, seed: int = 0,
                 max_eta: float | None = None, **arch_overrides):
        super().__init__(analog, digital)
        if not math.isfinite(float(default_snr_db)):
            raise ValueError(f"default_snr_db must be finite, got {default_snr_db}")
        if max_eta is not None and not max_eta > 0:
            raise ValueError(f"max_eta must be > 0 or None, got {max_eta}")
        self.max_eta = max_eta
        self.device = _device(device)
        self.default_snr_db = float(default_snr_db)
        base = make_arch(arch, **arch_overrides)  # validates the settings now
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._arch_spec, self._overrides, self._seed = arch, dict(arch_overrides), int(seed)
        self._arch = base if checkpoint is None else None  # a checkpoint may carry its own
        self._model: NTSCCModel | None = None  # random weights only (checkpoints: the cache)
        self._cached: ModelInfo | None = None  # the checkpoint's cache key, once resolved

    @property
    def model(self) -> NTSCCModel:
        """The network, built or loaded on first use: a checkpoint through the
        process's :func:`~lgvsc.semantic.model_cache.model_cache`, asked on every use
        (codecs on the same file, arch and device share one copy, and a released
        copy is not kept alive here); random weights are built once per codec."""
        if self.checkpoint is None:
            if self._model is None:
                gen = torch.Generator().manual_seed(self._seed)
                self._model = _ready(NTSCCModel(self._arch, gen), self.device)
            return self._model
        if self._cached is None:
            self._cached = self._info(self.checkpoint, self._arch_spec, self._overrides,
                                      self.device)
        model = model_cache().get(self._cached.key, self._load, self._cached.bytes)
        self._arch = model.arch
        return model

    def _load(self) -> NTSCCModel:
        model, _ = load_model(self.checkpoint, self._arch_spec, **self._overrides)
        return _ready(model, self.device)

    @staticmethod
    def _info(checkpoint, arch, overrides: dict, device: torch.device) -> ModelInfo:
        path = Path(str(checkpoint)).expanduser().resolve()
        base = arch.to_dict() if isinstance(arch, NTSCCArch) else arch
        text = base if isinstance(base, str) else json.dumps(base, sort_keys=True)
        text += "".join(f" {k}={list(v) if isinstance(v, tuple) else v}"
                        for k, v in sorted(overrides.items()))
        key = ModelKey("ntscc", str(path), "float32", str(device), (("arch", text),))
        return ModelInfo(key, estimate_bytes(path, "float32"))

    @classmethod
    def model_info(cls, **params) -> list[ModelInfo]:
        """The checkpoint this spec loads (none for random weights), keyed as
        :attr:`model` keys it; nothing is read but the file's size."""
        names = {k for k in bound_params(cls, {})} | {"checkpoint"}
        p = bound_params(cls, {k: v for k, v in params.items() if k in names})
        if p["checkpoint"] is None:
            return []
        overrides = {k: v for k, v in params.items() if k not in names}
        return [cls._info(p["checkpoint"], p["arch"], overrides, _device(p["device"]))]

    @classmethod
    def check_weights(cls, **params) -> None:
        """The spec's settings, the arch (preset + overrides) and the checkpoint file,
        without loading weights: ``checkpoint`` exists, is a file and has a torch
        header (zip ``PK\\x03\\x04`` or pickle ``0x80``); a zip file is mapped, not read
        (``torch.load(mmap=True)``), and its format, rate choices and -- when
        CompressAI is installed -- key names and shapes are checked against the arch.
        ``checkpoint: None`` (random weights) passes. ValueError naming the key."""
        from ..model_files import check_finite, check_int

        names = {k for k in bound_params(cls, {})} | {"checkpoint"}
        overrides = {k: v for k, v in params.items() if k not in names}
        p = bound_params(cls, {k: v for k, v in params.items() if k in names})
        check_finite("default_snr_db", p["default_snr_db"])
        if p["max_eta"] is not None and not (isinstance(p["max_eta"], (int, float))
                                             and p["max_eta"] > 0):
            raise ValueError(f"max_eta: must be > 0 or None, got {p['max_eta']!r}")
        check_int("seed", p["seed"], 0)
        try:
            torch.device(p["device"])
        except (RuntimeError, TypeError):
            raise ValueError(f"device: must be a torch device string, got "
                             f"{p['device']!r}") from None
        make_arch(p["arch"], **overrides)
        if p["checkpoint"] is None:
            return
        path, kind = check_torch_file(p["checkpoint"], "checkpoint", "torch checkpoint")
        if kind == "zip":
            try:
                have_compressai = importlib.util.find_spec("compressai") is not None
                check_checkpoint(path, p["arch"], have_compressai, **overrides)
            except ValueError as e:
                raise ValueError(f"checkpoint: {e}") from None

    @classmethod
    def from_checkpoint(cls, path: str, *, analog: AnalogPipe | None = None,
                        digital: DigitalPipe | None = None, device: str = "cpu",
                        default_snr_db: float = 10.0, max_eta: float | None = None,
                        **arch) -> "NTSCC":
        """Codec from a checkpoint file; ``arch``: a base ``arch=`` and/or overrides.

        :raises ValueError: unreadable file, or keys / shapes / rate choices that do
            not match the arch (the message names the file and the first keys).
        """
        codec = cls(checkpoint=path, analog=analog, digital=digital, device=device,
                    default_snr_db=default_snr_db, max_eta=max_eta, **arch)
        codec.model  # noqa: B018  (loads now: a bad file is refused here)
        return codec

    @property
    def arch(self) -> NTSCCArch:
        """The network's arch, known without loading the weights: the spec's for random
        weights and public state dicts, the one stored in our checkpoints (read from
        the mapped zip file). A legacy pickle file cannot be mapped: the spec's arch
        stands until the first use loads it (public checkpoints are read with the
        spec's arch anyway; ours are zip files)."""
        if self._arch is None:
            _, kind = check_torch_file(self.checkpoint, "checkpoint", "torch checkpoint")
            self._arch = (check_checkpoint(self.checkpoint, self._arch_spec, False,
                                           **self._overrides)
                          if kind == "zip" else make_arch(self._arch_spec, **self._overrides))
        return self._arch

    def min_uses(self, height: int, width: int, batch: int = 1) -> int:
        """The shortest code of one image: every token at ``rate_choices[0]`` real
        values (plus the analog power scale) and its share of the batch's length
        indexes (``index_bits`` per token) on the digital pipe -- what
        :meth:`encode` needs at eta = 0. With ``use_side_info`` the z string's
        32-bit length is counted but not its bytes (they depend on the image), so
        the floor is then a lower bound. At 320x576 the ``"paper"`` arch needs
        ~10,150 channel uses per image (720 tokens)."""
        a = self.arch
        tokens = math.ceil(height / a.factor) * math.ceil(width / a.factor)
        side = tokens * index_bits(len(a.rate_choices)) + (Z_LENGTH_BITS if a.use_side_info
                                                           else 0)
        share = math.ceil(self.digital.channel_uses(batch * side) / batch)
        return self.analog.symbols_for(a.rate_choices[0] * tokens) + share

    def _snr(self, snr_db: float | None) -> float | None:
        if not self.arch.snr_adaptive:
            return None
        return self.default_snr_db if snr_db is None else float(snr_db)

    # -- transmitter -------------------------------------------------------------
    def encode(self, images: np.ndarray, budget_uses: int, snr_db: float | None) -> Encoded:
        """:input images: uint8 [B, H, W, 3]. :input budget_uses: complex channel
        uses per image, side info included. :output: Encoded with one float32
        [n_i] tensor of analog values per image and the batch's side bits."""
        _check_images(images)
        if isinstance(budget_uses, bool) or int(budget_uses) != budget_uses or budget_uses < 1:
            raise ValueError(f"budget_uses must be a positive int, got {budget_uses!r}")
        b, h, w, _ = images.shape
        with torch.inference_mode():
            lat = self._analyse(self._to_tensor(images))
            idx, etas, fits = self._allocate(lat, int(budget_uses))
            s, mask = self.model.f_e(lat["y"], lat["py"], idx, self._snr(snr_db))
        symbols = [s[i][mask[i]].float().cpu() for i in range(b)]
        side = torch.cat(lat["side"]) if lat["side"] else torch.zeros(0, dtype=torch.uint8)
        state = {"image_hw": (h, w), "batch": b, "latent_hw": tuple(lat["y"].shape[2:]),
                 "tx": {"eta": etas, "analog_values": [int(v.numel()) for v in symbols],
                        "analog_budget_uses": fits}}
        return Encoded(symbols, side, state)

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 [B, H, W, 3] -> float [B, 3, H', W'] in [0, 1], replicate-padded to the factor."""
        x = torch.from_numpy(np.array(images, copy=True)).to(self.device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        f = self.arch.factor
        return F.pad(x, (0, (-x.shape[3]) % f, 0, (-x.shape[2]) % f), mode="replicate")

    def _analyse(self, x: torch.Tensor) -> dict:
        """y, its hyperprior, bits per token and the side bits of every image."""
        m = self.model
        y = m.g_a(x)
        z = m.hyper_analyse(y)
        z_hat = torch.round(z - m.medians()) + m.medians()
        scales, means = m.hyper_params(z_hat, y.shape[2:])
        py, tbits = m.token_bits(y, scales, means)
        strings = m.entropy_bottleneck.compress(z) if self.arch.use_side_info else None
        return {"y": y, "py": py, "bits": tbits.cpu(), "strings": strings, "side": []}

    def _allocate(self, lat: dict, budget: int) -> tuple[torch.Tensor, list, int]:
        """Length indexes [B, L] meeting the budget; fills ``lat["side"]`` (bits per image).
        Returns (indexes, eta per image, analog uses allowed per image)."""
        rates = self.model.f_e.rate_choices.cpu()
        share = self._side_share(lat, rates.numel())
        allowed = budget - share

        def fits(n: int) -> bool:
            return self.analog.symbols_for(n) <= allowed

        etas, idx = [], []
        for i, tbits in enumerate(lat["bits"]):
            try:
                eta = choose_eta(tbits, rates, fits)
            except ValueError:
                raise BudgetError(self._budget_message(budget, tbits, rates, share)) from None
            etas.append(eta if self.max_eta is None else min(eta, self.max_eta))
            idx.append(rate_indexes(tbits[None], etas[-1], rates)[0])
            lat["side"][i] = pack_image(idx[i], rates.numel(), self._z_string(lat, i))
        return torch.stack(idx).to(self.device), etas, allowed

    def _side_share(self, lat: dict, num_rates: int) -> int:
        """Digital channel uses of the batch's side bits, per image (rounded up).
        The side bits' size does not depend on eta, so size them with any indexes."""
        tokens = lat["bits"].shape[1]
        lat["side"] = [pack_image(torch.zeros(tokens), num_rates, self._z_string(lat, i))
                       for i in range(lat["bits"].shape[0])]
        total = sum(bits.numel() for bits in lat["side"])
        return math.ceil(self.digital.channel_uses(total) / len(lat["side"]))

    @staticmethod
    def _z_string(lat: dict, i: int) -> bytes | None:
        return None if lat["strings"] is None else lat["strings"][i]

    def _budget_message(self, budget: int, tbits: torch.Tensor, rates: torch.Tensor,
                        share: int) -> str:
        need = self.analog.symbols_for(int(rates[0]) * tbits.numel()) + share
        return (f"budget_uses={budget} is too small for NTSCC at this image size: the shortest "
                f"token lengths need {need} channel uses per image ({share} for side info)")

    # -- receiver ---------------------------------------------------------------
    def decode(self, received: list, side_bits: torch.Tensor, state: dict,
               snr_db: float | None) -> np.ndarray:
        """:input received: one AnalogResult per image (``x_hat`` = received values).
        :input side_bits: the digital pipe's output bits. :output: uint8 [B, H, W, 3]."""
        b, (h, w), hw = state["batch"], state["image_hw"], tuple(state["latent_hw"])
        if len(received) != b:
            raise ValueError(f"received must hold {b} results, got {len(received)}")
        idx, strings = self._parse_side(side_bits, b, hw)
        with torch.inference_mode():
            s = self._scatter(received, idx)
            y_hat = self.model.f_d(s, idx, hw, self._snr(snr_db))
            y_hat = self._refine(y_hat, strings, hw)
            x = self.model.g_s(y_hat).clamp(0, 1)[:, :, :h, :w]
        return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _parse_side(self, bits: torch.Tensor, b: int, hw: tuple):
        rates, tokens, pos = len(self.arch.rate_choices), hw[0] * hw[1], 0
        idx, strings = [], []
        for _ in range(b):
            i, z, pos = unpack_image(bits, pos, tokens, rates, self.arch.use_side_info)
            idx.append(i)
            strings.append(z)
        return torch.stack(idx).to(self.device), strings

    def _scatter(self, received: list, idx: torch.Tensor) -> torch.Tensor:
        """Received values -> [B, L, max_rate], each token's values in its first slots.
        A count that disagrees with the (possibly corrupted) indexes is cut or zero-filled."""
        mask = length_mask(idx, self.model.f_e.rate_choices)
        s = torch.zeros(mask.shape, device=self.device)
        for i, r in enumerate(received):
            need = int(mask[i].sum())
            v = r.x_hat.reshape(-1).to(self.device, torch.float32)[:need]
            s[i][mask[i]] = F.pad(v, (0, need - v.numel()))
        return s

    def _refine(self, y_hat: torch.Tensor, strings: list, hw: tuple) -> torch.Tensor:
        if not self.arch.use_side_info:
            return y_hat
        zhw = (math.ceil(hw[0] / 4), math.ceil(hw[1] / 4))
        z_hat = torch.cat([self._decompress_z(s, zhw) for s in strings])
        scales, means = self.model.hyper_params(z_hat, hw)
        return self.model.refine(y_hat, scales, means)

    def _decompress_z(self, string: bytes, zhw: tuple) -> torch.Tensor:
        eb = self.model.entropy_bottleneck
        try:
            return eb.decompress([string], zhw).to(self.device)
        except Exception:  # corrupted side info: fall back to the medians
            return self.model.medians().expand(1, -1, *zhw).clone()


def _device(device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be a torch device string, got {device!r}") from e


def _ready(model: NTSCCModel, device: torch.device) -> NTSCCModel:
    """``model`` on ``device`` in eval mode, its entropy coder's tables built."""
    model = model.to(device).eval()
    if model.arch.use_side_info:
        model.entropy_bottleneck.update(force=True)
    return model


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[-1] != 3 \
            or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [B, H, W, 3], got "
                         f"{getattr(images, 'dtype', type(images))} {getattr(images, 'shape', '')}")
