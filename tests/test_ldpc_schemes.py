"""The LDPC decoder is a setting of every scheme that sends bits, and its iterations
are recorded per unit."""

import numpy as np
import pytest
from pydantic import ValidationError

from conftest import small_link_scenario
from lgvsc.link.channels import AWGN
from lgvsc.sim.scenario import validate
from lgvsc.sim.schemes import SCHEMES
from lgvsc.sim.seeding import RunContext
from lgvsc.sim.units import Unit, execute_unit

# one valid config per scheme type that sends bits over 5G LDPC
BASE = {
    "ldpc5g": {},
    "codec-ldpc": {"codec": "h264", "preset": "paper-table1"},
    "softcast": {"target_cbr": 6e-4},
    "lgvsc": {"preset": "skim-sfa", "target_cbr": 1.4e-3},
    "text-only": {},
}


@pytest.mark.parametrize("kind", BASE)
@pytest.mark.parametrize("decoder", ["auto", "fast", "sionna"])
def test_every_bit_scheme_takes_a_decoder(kind, decoder):
    cfg = SCHEMES.get(kind).Config(name="s", type=kind, decoder=decoder, **BASE[kind])
    d = cfg.decoding()
    assert d.resolved("cpu").decoder == ("sionna" if decoder == "sionna" else "fast")


@pytest.mark.parametrize("kind", BASE)
@pytest.mark.parametrize("over,field", [
    ({"decoder": "sionna", "schedule": "layered"}, "schedule"),
    ({"cn_update": "minsum"}, "cn_update"),  # auto: fast on a CPU has no plain min-sum
    ({"decoder": "fast", "cn_update": "offset-minsum"}, "cn_update"),
    ({"decoder": "viterbi"}, "decoder"),
    ({"alpha": 0.0}, "alpha"),
    ({"early_stop": "yes"}, "early_stop"),
])
def test_bad_decoder_settings_are_refused_naming_the_field(kind, over, field):
    with pytest.raises(ValidationError, match=field):
        SCHEMES.get(kind).Config(name="s", type=kind, **BASE[kind], **over)


def _link_row(**decoder):
    sc = validate(small_link_scenario(schemes=[
        {"name": "L", "type": "ldpc5g", "k": 256, "rate": 0.5, "modulation": "qpsk",
         "iterations": 12, **decoder}], channel={"type": "awgn", "snr_db": [6.0]}))
    return execute_unit(sc.model_dump_json(), Unit("L", 6.0))


def test_link_units_record_mean_iterations():
    fast, sionna = _link_row(decoder="fast"), _link_row(decoder="sionna")
    assert fast["block_errors"] == sionna["block_errors"] == 0
    assert 1 <= fast["extra"]["iterations_mean"] < 12  # early stop at high SNR
    assert sionna["extra"]["iterations_mean"] == 12  # Sionna runs every iteration
    uncoded = execute_unit(validate(small_link_scenario()).model_dump_json(),
                           Unit("QPSK uncoded", 2.0))
    assert uncoded["extra"]["iterations_mean"] is None


def test_video_schemes_record_mean_iterations(tmp_path):
    from lgvsc.sim.schemes.codec_ldpc import CodecLDPCConfig, CodecLDPC
    from lgvsc.sim.video import VideoSpec, load_video
    import torch

    clip = load_video(VideoSpec(source="synthetic:pan", frames=8, size=(64, 64)), seed=3)
    scheme = CodecLDPC(CodecLDPCConfig(name="c", type="codec-ldpc", codec="h264", qp=30,
                                       rate=0.5, modulation="qpsk", iterations=9),
                       RunContext())
    tx = scheme.transmit(clip, AWGN(), 8.0, torch.Generator().manual_seed(0))
    np.asarray(tx.frames)  # the receiver decodes (and accounts) as it is read
    assert tx.decoded_blocks == tx.counts["blocks"] > 0
    assert 1 <= tx.iterations_mean < 9
