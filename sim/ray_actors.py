"""Ray execution: GPU units in long-lived actors that keep their models, CPU units as tasks.

A scheme's units take :func:`~lgvsc.sim.model_plan.scheme_resources` each
(``resources: {num_gpus, num_cpus}`` in its entry, else one GPU when its models
are on CUDA). Units with ``num_gpus`` > 0 go to a pool of :class:`UnitActor` s,
one per ``num_gpus`` of the cluster's GPUs (one per GPU for ``num_gpus: 1``),
each a process with its own model cache: a model loads once per actor, however
many units it runs, and a scheme object is built once per actor. The driver
hands units out in the planned order (scheme by scheme) to whichever actor is
free and, with each unit, the schemes of the units still to hand out, so the
actor releases (:func:`~lgvsc.sim.units.retire`) every model no later unit
needs; an actor with nothing left to do releases everything. The other units
run as Ray tasks (:func:`~lgvsc.sim.units.run_kept`). Every unit runs
:func:`~lgvsc.sim.units.execute_unit`, so rows equal the local executor's.
"""

from __future__ import annotations

import math
import os
from collections import deque

from .errors import UserError
from .model_plan import keep_sets, scheme_order, scheme_resources
from .units import _scenario, run_kept


class UnitActor:
    """One long-lived worker process (a Ray actor) for GPU units."""

    def __init__(self, threads: int = 1):
        import torch

        torch.set_num_threads(threads)

    def run(self, blob: str, unit, keep) -> dict:
        """The unit's row, after releasing what no unit from this one on needs."""
        return run_kept(blob, unit, keep)

    def retire(self, blob: str, keep) -> list[str]:
        """Release what the schemes ``keep`` do not need; the released models' labels."""
        from .units import retire

        return [k.label() for k in retire(blob, keep)]

    def stats(self) -> dict:
        """What this process did: units run and scheme objects built (by scheme), model
        loads (by key label) and the models loaded now."""
        from ..semantic.model_cache import model_cache
        from .units import SCHEME_BUILDS, UNITS_RUN

        cache = model_cache()
        return dict(pid=os.getpid(), units=dict(UNITS_RUN), builds=dict(SCHEME_BUILDS),
                    loads={k.label(): n for k, n in cache.load_counts.items()},
                    loaded=[k.label() for k in cache.loaded()])


def _result(ray, ref) -> dict:
    """A unit's row; a user error inside a task or actor comes back as itself (one
    line), not as Ray's wrapper with the remote traceback."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, UserError):
            raise UserError(str(e.cause)) from None
        raise


def _actor_count(ray, names: list[str], num_gpus: float, num_cpus: float, units: int,
                 task_cpus: float) -> int:
    """How many actors of ``num_gpus`` GPUs and ``num_cpus`` CPUs the cluster holds (at
    most one per unit), leaving ``task_cpus`` CPUs for the CPU units' tasks (an actor
    holds its CPUs for its whole life: without that room the tasks would wait forever)."""
    have = ray.cluster_resources()
    gpus, cpus = float(have.get("GPU", 0.0)), float(have.get("CPU", 0.0))
    shown = ", ".join(map(repr, names))
    if gpus < num_gpus:
        raise UserError(f"schemes {shown} ask for {num_gpus:g} GPU per unit "
                        f"(resources.num_gpus) but the Ray cluster has {gpus:g} GPUs; "
                        "set resources: {num_gpus: 0} to run them on CPUs")
    by_cpu = math.floor((cpus - task_cpus) / num_cpus + 1e-9)
    if by_cpu < 1:
        raise UserError(f"schemes {shown} need {num_cpus:g} CPUs per GPU actor "
                        f"(resources.num_cpus) and the CPU schemes' tasks {task_cpus:g}, but "
                        f"the Ray cluster has {cpus:g} CPUs; raise executor.workers (a local "
                        "Ray's CPUs) or lower resources.num_cpus")
    return max(1, min(units, by_cpu, math.floor(gpus / num_gpus + 1e-9)))


def run_on_ray(ray, blob: str, units: list, stats: list | None = None):
    """Run ``units`` (in this order) on the initialised Ray; yield rows as they finish.
    ``stats``: when a list, each actor's :meth:`UnitActor.stats` is appended to it
    before the actors end."""
    sc = _scenario(blob)
    res = {n: scheme_resources(sc, n) for n in scheme_order(units)}
    gpu = [u for u in units if res[u.scheme].num_gpus > 0]
    cpu = [u for u in units if res[u.scheme].num_gpus == 0]
    refs: dict = {}  # object ref -> the actor running it (None: a task)
    task = ray.remote(run_kept)
    for u, keep in zip(cpu, keep_sets(cpu)):
        c = res[u.scheme].num_cpus
        refs[task.options(num_cpus=c).remote(blob, u, keep, max(1, int(c)))] = None
    actors, queue = [], deque(zip(gpu, keep_sets(gpu)))
    if gpu:
        names = [n for n in res if res[n].num_gpus > 0]
        g = max(res[n].num_gpus for n in names)
        c = max(res[n].num_cpus for n in names)
        cls = ray.remote(num_gpus=g, num_cpus=c)(UnitActor)
        task_cpus = max((res[u.scheme].num_cpus for u in cpu), default=0.0)
        n = _actor_count(ray, names, g, c, len(gpu), task_cpus)
        actors = [cls.remote(max(1, int(c))) for _ in range(n)]
    idle = list(actors)
    try:
        while refs or queue:
            while idle and queue:
                actor = idle.pop()
                unit, keep = queue.popleft()
                refs[actor.run.remote(blob, unit, keep)] = actor
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                actor = refs.pop(ref)
                row = _result(ray, ref)
                if actor is not None:
                    idle.append(actor)
                    if not queue:  # nothing left for it: release everything now
                        actor.retire.remote(blob, frozenset())
                yield row
        if stats is not None:
            stats += ray.get([a.stats.remote() for a in actors])
    finally:
        for ref, actor in refs.items():
            if actor is None:  # a task; an actor's units end with it
                ray.cancel(ref)
        for a in actors:
            ray.kill(a)
