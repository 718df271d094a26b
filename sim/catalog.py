"""``lgvsc list``: every registry, and what of it runs on this machine."""

from __future__ import annotations

from ..link.channels import CHANNELS
from ..link.modem import MODULATIONS
from ..link.registry import Registry


def _registries() -> list[Registry]:
    from ..semantic.adapters import ADAPTERS
    from ..semantic.captioners import CAPTIONERS
    from ..semantic.keyframe_codecs import KEYFRAME_CODECS
    from ..semantic.scorers import SCORERS
    from ..semantic.selectors import SELECTORS
    from ..semantic.side_info import SIDE_INFO
    from ..semantic.world_models import WORLD_MODELS
    from .executors import EXECUTORS
    from .schemes import SCHEMES

    return [CHANNELS, SCHEMES, EXECUTORS, SELECTORS, SCORERS, CAPTIONERS, SIDE_INFO,
            KEYFRAME_CODECS, WORLD_MODELS, ADAPTERS]


def _entry(reg: Registry, name: str) -> str:
    req = reg.requirements(name)
    missing = req.missing_packages()
    if missing:
        return f"{name} (not usable here: {', '.join(missing)} not installed)"
    if req.weights:
        return f"{name} (real tier: needs {req.weights})"
    return name


def catalog() -> str:
    """One line per registry: its names, each marked with what it needs."""
    from .metrics import METRICS, resolve_metrics

    lines = [f"{reg.family}: {', '.join(_entry(reg, n) for n in reg.names())}"
             for reg in _registries()]
    _, missing = resolve_metrics(METRICS.names())
    lines.append("metric: " + ", ".join(
        n if n not in missing else f"{n} (unavailable here: {missing[n]})" for n in METRICS.names()))
    lines.append(f"modulation: {', '.join(MODULATIONS)}")
    lines.append("Names without a note run here with no weights (the embedded tier).")
    return "\n".join(lines)
