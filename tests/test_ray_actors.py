"""Ray: GPU units in long-lived actors that keep their models, CPU units as tasks, and
the same rows as the local executor (issue 12, point 1).

This machine has no GPU: Ray is started with ``num_gpus=1`` (a GPU resource, no
device), so schemes asking for ``num_gpus`` go to actors; the scenario's device
stays ``cpu``. Ray workers register the test scheme ``fake-models`` at start
(``worker_process_setup_hook``). One Ray for the module (~10 s to start).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray

from lgvsc.sim.errors import UserError
from lgvsc.sim.executors import LocalExecutor, RayExecutor
from lgvsc.sim.scenario import validate
from lgvsc.sim.units import plan_units
from test_model_loading import fake, fake_key, scenario  # noqa: F401  (fixture)

TIMING = {"wall_s"}
EXTRA_TIMING = {"transmit_s"}


@pytest.fixture(scope="module")
def cluster():
    tests = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"},
                          "worker_process_setup_hook": "test_model_loading.register_fake"})
    yield
    ray.shutdown()


def _rows(executor, sc):
    blob = sc.model_dump_json()
    out = {}
    for r in executor.run(blob, plan_units(sc)):
        extra = {k: v for k, v in r["extra"].items() if k not in EXTRA_TIMING}
        out[r["unit_id"]] = {**{k: v for k, v in r.items() if k not in TIMING}, "extra": extra}
    return out


GPU = {"num_gpus": 1}
SCHEMES = [
    {"name": "SoftCast", "type": "softcast", "target_cbr": 2e-2, "gop": 4, "resources": GPU},
    {"name": "Models", "type": "fake-models", "models": [["vlm", "cpu", 0.5]],
     "resources": GPU},
    {"name": "CPU", "type": "fake-models", "models": [["small", "cpu", 0.1]]},
]


def test_gpu_units_share_one_actor_and_rows_equal_local(cluster, fake):
    sc = validate(scenario(SCHEMES))
    local = _rows(LocalExecutor(1), sc)
    ex = RayExecutor(2)
    remote = _rows(ex, sc)
    assert remote == local and len(local) == 12
    (actor,) = ex.actor_stats  # one GPU, num_gpus 1: one actor for both GPU schemes
    assert actor["units"] == {"SoftCast": 4, "Models": 4}  # never the CPU scheme's
    assert actor["builds"] == {"SoftCast": 1, "Models": 1}  # one scheme build per actor
    assert actor["loads"] == {fake_key("vlm").label(): 1}  # loaded once for 4 units
    assert actor["loaded"] == []  # released once no unit needed it
    assert actor["pid"] != os.getpid()


def test_fractional_gpus_give_one_actor_per_fraction(cluster, fake):
    half = [{**SCHEMES[1], "resources": {"num_gpus": 0.5}}]
    sc = validate(scenario(half, monte_carlo={"trials": 4}))
    ex = RayExecutor(2)
    assert len(_rows(ex, sc)) == 8
    assert len(ex.actor_stats) == 2
    for actor in ex.actor_stats:  # each actor loads its own copy, once
        assert set(actor["loads"].values()) <= {1}
        assert sum(actor["units"].values()) >= 1


def test_more_gpus_than_the_cluster_has_is_one_line(cluster, fake):
    sc = validate(scenario([{**SCHEMES[1], "resources": {"num_gpus": 2}}]))
    with pytest.raises(UserError, match=r"ask for 2 GPU per unit .* the Ray cluster has 1 GPUs"):
        list(RayExecutor(2).run(sc.model_dump_json(), plan_units(sc)))


def test_actors_leave_cpus_for_the_cpu_tasks(cluster, fake):
    greedy = {**SCHEMES[1], "resources": {"num_gpus": 1, "num_cpus": 2}}
    sc = validate(scenario([greedy, SCHEMES[2]]))
    with pytest.raises(UserError, match=r"need 2 CPUs per GPU actor .* tasks 1, but the Ray "
                                        r"cluster has 2 CPUs"):
        list(RayExecutor(2).run(sc.model_dump_json(), plan_units(sc)))
