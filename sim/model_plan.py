"""What a run will load, where, and how much memory it takes -- before anything loads.

The models of a scheme come from :meth:`~lgvsc.sim.schemes.Scheme.models` (its
components' ``model_info``), those of the deep metrics from
:func:`~lgvsc.sim.metrics_deep.deep_model_info`; both give
:class:`~lgvsc.semantic.model_cache.ModelInfo` (a :class:`ModelKey` and the
estimated bytes of its weights) without loading a weight.

The runner prints :func:`loading_lines` at the start of a run, orders the
pending units with :func:`order_units` (scheme by scheme, schemes sharing a
model next to each other), and every executor keeps a model loaded exactly
while a unit still to come needs it (:func:`keep_sets`,
:func:`~lgvsc.sim.units.retire`). :func:`scheme_resources` says what a unit
takes on Ray.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from .errors import UserError
from .metrics import resolve_metrics
from .metrics_deep import deep_model_info
from .scenario import Scenario
from .schemes import SCHEMES, Resources


def scheme_config(sc: Scenario, name: str):
    """The validated config of the scheme called ``name``."""
    entry = next(s for s in sc.schemes if s["name"] == name)
    return SCHEMES.get(entry["type"]).Config.model_validate(entry)


def scheme_models(sc: Scenario, name: str) -> list:
    """The :class:`ModelInfo` of scheme ``name``, each key once."""
    cfg = scheme_config(sc, name)
    try:
        infos = SCHEMES.get(cfg.type).models(cfg)
    except ValueError as e:
        raise UserError(f"schemes[{name}]: {e}") from None
    out, seen = [], set()
    for info in infos:
        if info.key not in seen:
            seen.add(info.key)
            out.append(info)
    return out


def metric_models(sc: Scenario) -> list:
    """The :class:`ModelInfo` of the deep metrics that run here (none for a link run)."""
    if sc.kind != "video":
        return []
    out = []
    for metric in resolve_metrics(sc.metrics, sc.device)[0].values():
        out += [i for i in deep_model_info(metric) if i.key not in {o.key for o in out}]
    return out


def scheme_resources(sc: Scenario, name: str) -> Resources:
    """Ray resources of one unit of ``name``: its ``resources:`` entry, else one GPU
    when one of its models lives on CUDA, else one CPU."""
    cfg = scheme_config(sc, name)
    if cfg.resources is not None:
        return cfg.resources
    on_gpu = any(i.key.device.startswith("cuda") for i in scheme_models(sc, name))
    return Resources(num_gpus=1.0 if on_gpu else 0.0)


def scheme_order(units: Iterable) -> list[str]:
    """Scheme names in the order their first unit appears."""
    return list(dict.fromkeys(u.scheme for u in units))


def order_units(sc: Scenario, units: list) -> list:
    """``units`` grouped scheme by scheme (each scheme's units in their planned order):
    after each scheme comes the remaining one sharing most models with it (ties: the
    scenario's order), so a shared model stays loaded once instead of twice."""
    by_scheme: dict[str, list] = defaultdict(list)
    for u in units:
        by_scheme[u.scheme].append(u)
    keys = {n: {i.key for i in scheme_models(sc, n)} for n in by_scheme}
    left, order = list(by_scheme), []
    while left:
        last = keys[order[-1]] if order else set()
        best = max(left, key=lambda n: (len(keys[n] & last), -left.index(n)))
        order.append(best)
        left.remove(best)
    return [u for n in order for u in by_scheme[n]]


def keep_sets(units: list) -> list[frozenset]:
    """For each position i, the scheme names of ``units[i:]``: what a process about to
    run unit i (in this order) may still need. Equal sets are one object."""
    out, cur = [], frozenset()
    for u in reversed(units):
        if u.scheme not in cur:
            cur = cur | {u.scheme}
        out.append(cur)
    return out[::-1]


# -- the report printed at the start of a run -----------------------------------------
def _gib(n: int) -> str:
    return f"~{n / 2**30:.1f} GiB"


def _resident_peaks(order: list[str], keys: dict[str, set], always: set, sizes: dict
                    ) -> dict[str, tuple[int, int]]:
    """{device: (bytes, models of unknown size)} at the worst moment of a run that goes
    scheme by scheme in ``order``, each model loaded from its first scheme's units to
    its last's (``always``: needed by every unit)."""
    last = {k: i for i, n in enumerate(order) for k in keys[n]}
    first = {}
    for i, n in enumerate(order):
        for k in keys[n]:
            first.setdefault(k, i)
    peaks: dict[str, tuple[int, int]] = {}
    for i in range(len(order)):
        resident = set(always) | {k for k in last if first[k] <= i <= last[k]}
        for dev in {k.device for k in resident}:
            on = [k for k in resident if k.device == dev]
            b = sum(sizes[k] or 0 for k in on)
            unknown = sum(sizes[k] is None for k in on)
            if (b, unknown) > peaks.get(dev, (0, 0)):
                peaks[dev] = (b, unknown)
    return peaks


def loading_lines(sc: Scenario, units: list, pool_workers: int = 1) -> list[str]:
    """One line per model the pending ``units`` (in run order) will load -- key,
    device, estimated weights, the schemes (or metrics) using it -- then one per
    device with the total and the most held at once; a warning when
    ``pool_workers`` > 1 processes (the local pool) would each hold a copy of the
    CUDA models. Empty when nothing loads."""
    order = scheme_order(units)
    infos = {n: scheme_models(sc, n) for n in order}
    metrics = metric_models(sc) if units else []
    users: dict = defaultdict(list)
    sizes = {}
    for n in order:
        for i in infos[n]:
            users[i.key].append(f"scheme {n!r}")
            sizes[i.key] = i.bytes
    for i in metrics:
        users[i.key].append("metrics")
        sizes[i.key] = i.bytes
    if not users:
        return []
    lines = []
    for n in order:
        lines += [f"will load {i.line()} for {', '.join(users.pop(i.key))}"
                  for i in infos[n] if i.key in users]
    lines += [f"will load {i.line()} for metrics" for i in metrics if i.key in users]
    peaks = _resident_peaks(order, {n: {i.key for i in infos[n]} for n in order},
                            {i.key for i in metrics}, sizes)
    for dev, (b, unknown) in sorted(peaks.items()):
        total = [k for k in sizes if k.device == dev]
        extra = f" (+{unknown} of unknown size)" if unknown else ""
        lines.append(f"on {dev}: {len(total)} models, {_gib(sum(sizes[k] or 0 for k in total))} "
                     f"of weights in all, at most {_gib(b)}{extra} loaded at once "
                     "(each model released after the last unit that needs it)")
    gpu = sum(b for d, (b, _) in peaks.items() if d.startswith("cuda"))
    if pool_workers > 1 and gpu:
        n = pool_workers
        lines.append(f"warning: {n} worker processes each load their own copy of the "
                     f"CUDA models: up to {n} x {_gib(gpu)} = {_gib(n * gpu)} of "
                     "weights on the GPU; use workers: 1 (one copy, units one after the other) "
                     "or executor: ray (one long-lived actor per GPU)")
    return lines
