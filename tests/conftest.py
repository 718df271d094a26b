import os

import pytest
import yaml

# One torch thread per test process keeps timings stable on the 2-core machines.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def small_link_scenario(name="t-link", **over):
    """A quick link scenario (seconds) used by runner / store / executor tests."""
    sc = {
        "name": name,
        "kind": "link",
        "seed": 11,
        "channel": {"type": "awgn", "snr_db": [2.0, 5.0]},
        "schemes": [
            {"name": "QPSK uncoded", "type": "uncoded", "modulation": "qpsk", "k": 256},
            {"name": "LDPC", "type": "ldpc5g", "k": 128, "rate": 0.5, "modulation": "qpsk",
             "iterations": 10},
        ],
        "monte_carlo": {"batch_blocks": 20, "max_batches": 3, "target_block_errors": 30},
        "executor": {"type": "local", "workers": 1},
    }
    sc.update(over)
    return sc


def slow_link_scenario(name: str, snrs: int = 6) -> dict:
    """A link scenario of 2 x ``snrs`` units of ~0.3-1 s each, so that a run is still
    going when a test kills it or starts a second one."""
    return small_link_scenario(
        name=name, channel={"type": "awgn", "snr_db": list(range(snrs))},
        schemes=[{"name": "LDPC A", "type": "ldpc5g", "k": 512, "rate": 0.5, "modulation": "qpsk"},
                 {"name": "LDPC B", "type": "ldpc5g", "k": 512, "rate": 0.75,
                  "modulation": "qam16"}],
        monte_carlo={"batch_blocks": 40, "max_batches": 3, "target_block_errors": 1000})


@pytest.fixture
def write_yaml(tmp_path):
    def _write(data, name="scenario.yaml"):
        p = tmp_path / name
        p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return p

    return _write


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models: one intra-op thread avoids OpenMP sync overhead on the shared 2-core
    machines (measured: a tiny linear layer 16 ms with 2 threads vs 0.015 ms with 1)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
