"""Executors run units and yield their results as they finish.

``local``: in this process for one worker, else a process pool (spawned
workers, one torch thread each) whose workers end with their parent, even
when it is killed (SIGKILL): on Linux the kernel signals them
(``PR_SET_PDEATHSIG``), elsewhere a thread watches the parent's pid. Once
the parent and its workers are gone, the multiprocessing resource tracker
(its pipe closed) ends too. ``ray``: joins the cluster at ``address``
or starts a local Ray with ``workers`` CPUs (:mod:`~lgvsc.sim.ray_actors`:
GPU schemes in long-lived actors, the others as tasks). All call the same
:func:`~lgvsc.sim.units.execute_unit`, so results do not depend on the executor.

Units come in the order they are given (the runner groups them scheme by
scheme); every process releases a scheme's objects and models once no unit it
may still run needs them (:func:`~lgvsc.sim.units.retire`): in-process after
the last unit of a scheme, pool workers before each unit.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterable, Iterator

from ..link.registry import Registry
from .errors import UserError
from .model_plan import keep_sets
from .units import Unit, execute_unit, retire, run_kept

EXECUTORS: Registry[type["Executor"]] = Registry("executor")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Executor:
    def __init__(self, workers: int = 1, address: str | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers, self.address = workers, address

    def run(self, blob: str, units: Iterable[Unit]) -> Iterator[dict]:
        raise NotImplementedError


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    def run(self, blob, units):
        units = list(units)
        keeps = keep_sets(units)
        if self.workers == 1:
            try:
                for i, u in enumerate(units):
                    yield execute_unit(blob, u)
                    if i + 1 < len(units) and keeps[i + 1] is not keeps[i]:
                        retire(blob, keeps[i + 1])  # the last unit of a scheme is done
            finally:  # at the end, and when interrupted: nothing of this run stays loaded
                retire(blob, ())
            return
        with spawn_pool(self.workers) as pool:
            # workers take units in submission order: a unit's keep set covers every
            # unit its worker may take after it
            yield from pool_rows(pool, blob, units, keeps)


@contextmanager
def spawn_pool(workers: int):
    """A process pool of ``workers`` spawned workers that end with this process."""
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        yield pool


def pool_rows(pool, blob: str, units: list[Unit], keeps: list) -> Iterator[dict]:
    """``run_kept(blob, unit, keep, 1)`` for each unit and its keep set on ``pool``, in
    submission order; yields the rows as they finish and cancels what has not started
    when the caller stops early."""
    pending = {pool.submit(run_kept, blob, u, k, 1) for u, k in zip(units, keeps)}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
    finally:
        for f in pending:
            f.cancel()


def _die_with_parent(parent: int) -> None:
    """Pool worker initializer: end this worker when ``parent`` dies, however it dies.

    The kernel's death signal goes with the thread that started the worker: the
    pool starts all its workers from the thread that iterates :meth:`LocalExecutor.run`.
    """
    if not _set_death_signal(signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _set_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, period_s: float = 0.5) -> None:
    """Poll the parent's pid; exit at once when this process has been orphaned."""
    while os.getppid() == parent:
        time.sleep(period_s)
    os._exit(1)


@EXECUTORS.register("ray", packages=("ray",))
class RayExecutor(Executor):
    """Units of schemes with ``num_gpus`` > 0 (:func:`~lgvsc.sim.model_plan.scheme_resources`)
    run in long-lived GPU actors that keep their models loaded; the others as tasks.
    :attr:`actor_stats` holds each actor's :meth:`~lgvsc.sim.ray_actors.UnitActor.stats`
    after a run."""

    def __init__(self, workers: int = 1, address: str | None = None):
        super().__init__(workers, address)
        self.actor_stats: list[dict] = []

    def init_kwargs(self) -> dict:
        """``ray.init`` arguments: join ``address``, else a local Ray with ``workers`` CPUs."""
        kw = dict(address=self.address) if self.address else dict(num_cpus=self.workers)
        return dict(include_dashboard=False, log_to_driver=False, configure_logging=False, **kw)

    def run(self, blob, units):
        try:
            import ray
        except ImportError:
            raise UserError("executor 'ray' needs Ray: pip install 'lgvsc[ray]'") from None
        from .ray_actors import run_on_ray

        started = not ray.is_initialized()
        if started:
            ray.init(**self.init_kwargs())
        try:
            self.actor_stats = []
            yield from run_on_ray(ray, blob, list(units), self.actor_stats)
        finally:
            if started:
                ray.shutdown()


def make_executor(type: str, workers: int = 1, address: str | None = None) -> Executor:
    return EXECUTORS.get(type)(workers=workers, address=address)
