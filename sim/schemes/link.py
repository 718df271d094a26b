"""Link-level schemes: random blocks through a code, a modem and the channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ...link import theory
from ...link.channels import Channel
from ...link.code import LDPC_MAX_K, LDPCCode, NoCode
from ...link.digital import BlockLink
from ...link.modem import Modem, bits_per_symbol
from . import SCHEMES, DecodingConfig, Scheme, SchemeConfig
from .fields import Modulation, Rate


@dataclass(frozen=True)
class CapacityLimit:
    """A capacity limit drawn as a vertical line on a BLER plot: ``snr_db`` (Es/N0, dB),
    its legend text ``label``, and ``own``: True when it is the limit of the plotted
    channel, False when it is a reference from another channel (the AWGN limit drawn
    on a channel whose own limit is not computed here)."""

    snr_db: float
    label: str
    own: bool


#: legend text of a :class:`CapacityLimit` per :meth:`Channel.capacity_model`
LIMIT_LABELS = {"awgn": "Shannon limit", "rayleigh": "ergodic capacity limit, i.i.d. Rayleigh"}
#: legend text of the AWGN limit drawn as a reference on another channel
AWGN_REFERENCE = "AWGN Shannon limit (reference)"


class LinkScheme(Scheme):
    """A scheme whose unit is a batch of ``k``-bit blocks; see :meth:`block_link`."""

    kind = "link"
    #: legend text of the reference curves returned by :meth:`theory`
    theory_labels = {"ber": "theory", "bler": "theory"}

    def block_link(self) -> BlockLink:
        raise NotImplementedError

    def modulation(self) -> str:
        """The scheme's modulation (a :data:`~lgvsc.link.modem.MODULATIONS` name); plots
        draw the schemes of one modulation in one panel."""
        return self.cfg.modulation

    def theory(self, snr_db: np.ndarray, channel: str) -> dict[str, np.ndarray | None]:
        """Reference ``ber`` / ``bler`` at ``snr_db`` on ``channel`` (None if unknown)."""
        return {"ber": None, "bler": None}

    def shannon_limit_db(self) -> float | None:
        """The AWGN Shannon limit (Es/N0, dB) of the scheme's rate and modulation (the
        summary's ``shannon_limit_db``, whatever the channel), None if it has none."""
        return None

    def capacity_limit(self, channel: Channel) -> CapacityLimit | None:
        """The limit drawn on a BLER plot of ``channel``: that channel's own when
        :meth:`Channel.capacity_model` names one, else the AWGN limit marked as a
        reference; None when the scheme has no limit (default)."""
        return None

    def independent_bit_errors(self, channel: str) -> bool:
        """True when bit errors are independent across the bits of a block on
        ``channel`` (then the BER interval is over bits, else over blocks)."""
        return False


class UncodedConfig(SchemeConfig):
    modulation: Modulation = "qpsk"
    k: int | None = Field(None, gt=0, le=1 << 20, description="bits per block, a multiple of "
                          "the bits per symbol, <= 2^20 (default: 1024 rounded down to one)")
    # max-log hard decisions are minimum-distance symbol decisions, the detector the
    # closed-form BER describes; "app" gives bitwise-MAP decisions (slightly lower BER
    # for the inner bits of 16-QAM and up at low SNR)
    demapping: Literal["app", "maxlog"] = "maxlog"

    @model_validator(mode="after")
    def _whole_symbols(self):
        m = bits_per_symbol(self.modulation)
        if self.k is None:
            self.k = 1024 - 1024 % m
        if self.k % m:
            raise ValueError(f"k must be a multiple of {m} for {self.modulation}, got {self.k}")
        return self


@SCHEMES.register("uncoded")
class Uncoded(LinkScheme):
    """Gray-mapped QAM with hard decisions; a block is ``k`` bits."""

    Config = UncodedConfig
    theory_labels = {"ber": "exact", "bler": "exact"}

    def block_link(self) -> BlockLink:
        c = self.cfg
        modem = Modem(c.modulation, c.demapping, self.ctx.precision, self.ctx.device)
        return BlockLink(NoCode(c.k, modem.m), modem)

    def theory(self, snr_db, channel):
        if channel not in ("awgn", "rayleigh"):
            return {"ber": None, "bler": None}
        ber = theory.ber_uncoded(self.cfg.modulation, snr_db, channel)
        bler = (theory.bler_uncoded_awgn(self.cfg.modulation, snr_db, self.cfg.k)
                if channel == "awgn" else None)  # fading: depends on the coherence length
        return {"ber": ber, "bler": bler}

    def independent_bit_errors(self, channel):
        # hard decisions on independent noise; the two bits of a QPSK symbol sit on
        # orthogonal axes, higher QAM shares axes and fading shares the gain
        return channel == "awgn" and self.cfg.modulation in ("bpsk", "qpsk")


class LDPCConfig(DecodingConfig):
    modulation: Modulation = "qpsk"
    k: int = Field(1024, ge=12, le=LDPC_MAX_K, description="information bits per codeword")
    rate: Rate = Field(0.5, description="code rate, number or 'a/b', in [1/5, 1)")
    demapping: Literal["app", "maxlog"] = "app"


@SCHEMES.register("ldpc5g")
class LDPC5G(LinkScheme):
    """5G NR LDPC (rate-matched) + Gray QAM + BP decoding; a block is one codeword."""

    Config = LDPCConfig
    theory_labels = {"ber": "", "bler": "normal approx., QAM input"}

    def block_link(self) -> BlockLink:
        c = self.cfg
        modem = Modem(c.modulation, c.demapping, self.ctx.precision, self.ctx.device)
        code = LDPCCode(c.k, c.rate, modem.m, c.decoding(), self.ctx.precision, self.ctx.device)
        return BlockLink(code, modem)

    def _n_uses(self) -> int:
        from ...link.code import ldpc_codeword_length

        m = bits_per_symbol(self.cfg.modulation)
        return ldpc_codeword_length(self.cfg.k, self.cfg.rate, m) // m

    def theory(self, snr_db, channel):
        if channel != "awgn":
            return {"ber": None, "bler": None}
        bler = theory.bler_normal_approx(self._n_uses(), self.cfg.k, snr_db, self.cfg.modulation)
        return {"ber": None, "bler": bler}

    def _limit_db(self, channel: str) -> float:
        eff = self.cfg.k / self._n_uses()  # realised bits per channel use
        m = bits_per_symbol(self.cfg.modulation)
        return theory.shannon_limit_db(eff / m, self.cfg.modulation, channel=channel)

    def shannon_limit_db(self):
        return self._limit_db("awgn")

    def capacity_limit(self, channel):
        model = channel.capacity_model()
        if model is None:
            return CapacityLimit(self._limit_db("awgn"), AWGN_REFERENCE, own=False)
        return CapacityLimit(self._limit_db(model), LIMIT_LABELS[model], own=True)
