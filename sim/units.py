"""Units of work and their execution (runs inside whichever worker gets them).

A unit is one (scheme, SNR, video, trial) cell of the sweep. Its result is a
flat dict -- the row the results store keeps.

A process builds each scheme object once (:data:`SCHEME_BUILDS` counts them)
and its models load once into the process's model cache; :func:`retire`, told
which schemes the units still to come in this process belong to, drops the
other schemes' objects and releases every model no such unit needs (a model
shared by two schemes stays until both are done). Every executor calls it:
in-process after the last unit of a scheme, pool workers and Ray tasks and
actors before each unit (:func:`run_kept`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..link.cbr import BUDGET_FLOOR, BudgetError, cbr
from ..link.channels import make_channel, snr_db_to_no
from ..semantic.model_cache import model_cache
from . import __version__
from .errors import UserError
from .media import ROW_KEY, MediaTap, request
from .metrics import frame_scores, paired_chunks, resolve_metrics
from .model_plan import metric_models, scheme_models
from .scenario import Scenario, validate
from .schemes import SCHEMES
from .schemes.transmission import rechunk, received_chunks
from .seeding import RunContext, unit_seed
from .video import load_video


@dataclass(frozen=True)
class Unit:
    scheme: str
    snr_db: float
    video: str = ""
    trial: int = 0

    @property
    def unit_id(self) -> str:
        return f"{self.scheme}|{self.snr_db!r}|{self.video}|{self.trial}"


def plan_units(sc: Scenario) -> list[Unit]:
    """Every unit of the sweep: schemes x SNRs (x videos x trials)."""
    if sc.kind == "link":
        return [Unit(s["name"], float(snr)) for s in sc.schemes for snr in sc.channel.snr_db]
    return [Unit(s["name"], float(snr), v.label(), t) for s in sc.schemes
            for snr in sc.channel.snr_db for v in sc.videos
            for t in range(sc.monte_carlo.trials)]


@lru_cache(maxsize=8)
def _scenario(blob: str) -> Scenario:
    return validate(json.loads(blob))


def fingerprint(sc: Scenario, scheme: str, video: str = "", files: dict | None = None) -> str:
    """Hash of what a unit of ``scheme`` on ``video`` depends on
    (:meth:`~lgvsc.sim.scenario.Scenario.unit_parameters`) and, for a video read from
    a file, the file's content (:func:`file_digests`; ``files`` gives them as a run
    recorded them, else the files are read now). Builtin and synthetic sources have
    no file part, so their fingerprints do not depend on this machine's files."""
    params = sc.unit_parameters(scheme, video)
    if video:
        params.update(video_files(sc, video) if files is None else files.get(video, {}))
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=256)
def _fingerprint(blob: str, scheme: str, video: str) -> str:
    return fingerprint(_scenario(blob), scheme, video)


def unit_fingerprints(sc: Scenario, units: list[Unit], files: dict | None = None
                      ) -> dict[str, str]:
    """{unit_id: fingerprint} for ``units`` (``files``: as in :func:`fingerprint`)."""
    memo = {}
    for u in units:
        if (u.scheme, u.video) not in memo:
            memo[(u.scheme, u.video)] = fingerprint(sc, u.scheme, u.video, files)
    return {u.unit_id: memo[(u.scheme, u.video)] for u in units}


#: the files a video entry reads, as the key its digest has in a unit's parameters
FILE_FIELDS = {"video_file": "source", "captions_file": "captions"}


def _entry_path(sc: Scenario, value: str | None) -> Path | None:
    """A file path of a video entry, resolved as :func:`~lgvsc.sim.video.load_video`
    does (relative to the scenario's folder); None for builtin / synthetic sources."""
    if not value or value.partition(":")[0] in ("builtin", "synthetic"):
        return None
    p = Path(value)
    return p if p.is_absolute() else Path(sc.base_dir or ".") / p


def video_files(sc: Scenario, label: str) -> dict[str, str]:
    """{"video_file": digest, "captions_file": digest} of the files video ``label``
    reads (only the ones it has)."""
    spec = sc.video(label)
    out = {}
    for key, field in FILE_FIELDS.items():
        path = _entry_path(sc, getattr(spec, field))
        if path is not None:
            out[key] = file_digest(path)
    return out


def file_digests(sc: Scenario) -> dict[str, dict[str, str]]:
    """{video label: :func:`video_files`} for the videos of ``sc`` that read files."""
    out = {v.label(): video_files(sc, v.label()) for v in sc.videos}
    return {k: v for k, v in out.items() if v}


_DIGESTS: dict[tuple, str] = {}


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """``<size in bytes>:<sha256 hex>`` of the file's content, read in ``chunk``-byte
    pieces and memoised by (resolved path, size, mtime in ns). A file that cannot be
    read gives ``missing`` / ``unreadable (<reason>)`` (preflight reports it)."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h, size = hashlib.sha256(), 0
        try:
            with open(path, "rb") as f:
                while block := f.read(chunk):
                    h.update(block)
                    size += len(block)
        except OSError as e:
            return f"unreadable ({e.strerror})"
        _DIGESTS[key] = f"{size}:{h.hexdigest()}"
    return _DIGESTS[key]


#: this process's scheme objects {(scenario blob, scheme name): scheme} and link blocks
_SCHEMES: dict[tuple[str, str], object] = {}
_LINKS: dict[tuple[str, str], object] = {}
#: scheme objects built in this process, by scheme name; units run, by scheme name
SCHEME_BUILDS: Counter = Counter()
UNITS_RUN: Counter = Counter()
#: models a scheme was seen to load that its ``models()`` did not list
_UNDECLARED: dict[tuple[str, str], set] = {}
#: the keep set each process last retired with (a pool worker retires when it changes)
_LAST_KEEP: list = [None]
#: most scheme objects a process keeps when nothing retires them (direct execute_unit calls)
MAX_SCHEMES = 64


def _scheme(blob: str, scheme_name: str):
    """The scheme object, built once per process (schemes cache their encodes) and
    kept until :func:`retire` drops it."""
    key = (blob, scheme_name)
    if key not in _SCHEMES:
        if len(_SCHEMES) >= MAX_SCHEMES:  # the oldest goes (rebuilt if asked again)
            oldest = next(iter(_SCHEMES))
            del _SCHEMES[oldest]
            _LINKS.pop(oldest, None)
        sc = _scenario(blob)
        entry = next(s for s in sc.schemes if s["name"] == scheme_name)
        cls = SCHEMES.get(entry["type"])
        _SCHEMES[key] = cls(cls.Config.model_validate(entry), RunContext(sc.device, sc.precision))
        SCHEME_BUILDS[scheme_name] += 1
    return _SCHEMES[key]


def _block_link(blob: str, scheme_name: str):
    key = (blob, scheme_name)
    if key not in _LINKS:
        _LINKS[key] = _scheme(blob, scheme_name).block_link()
    return _LINKS[key]


@lru_cache(maxsize=64)
def _declared(blob: str, scheme_name: str) -> frozenset:
    """Model keys scheme ``scheme_name`` declares (:meth:`Scheme.models`)."""
    return frozenset(i.key for i in scheme_models(_scenario(blob), scheme_name))


@lru_cache(maxsize=8)
def _metric_keys(blob: str) -> frozenset:
    return frozenset(i.key for i in metric_models(_scenario(blob)))


def _needs(blob: str, scheme_name: str) -> set:
    """Models a unit of ``scheme_name`` needs: declared, and seen loading."""
    return set(_declared(blob, scheme_name)) | _UNDECLARED.get((blob, scheme_name), set())


def retire(blob: str, keep) -> list:
    """Drop the scheme objects of ``blob``'s schemes not in ``keep`` (the schemes of
    the units this process may still run) and release the models none of ``keep``
    (nor the metrics, while units remain) needs; returns the released keys. Models
    this scenario does not know are left alone."""
    sc = _scenario(blob)
    keep = set(keep)
    for key in [k for k in _SCHEMES if k[0] == blob and k[1] not in keep]:
        del _SCHEMES[key]
        _LINKS.pop(key, None)
    names = [s["name"] for s in sc.schemes]
    known = set(_metric_keys(blob)).union(*(_needs(blob, n) for n in names))
    needed = (set(_metric_keys(blob)) if keep else set()).union(
        *(_needs(blob, n) for n in keep))
    cache = model_cache()
    return cache.release([k for k in cache.loaded() if k in known and k not in needed])


def run_kept(blob: str, unit: "Unit", keep, threads: int | None = None) -> dict:
    """:func:`execute_unit` in a worker that takes units in order: first
    :func:`retire` what no unit from this one on (schemes ``keep``) needs."""
    if keep != _LAST_KEEP[0]:
        retire(blob, keep)
        _LAST_KEEP[0] = keep
    return execute_unit(blob, unit, threads)


def _note_loads(blob: str, scheme_name: str, before: set) -> None:
    """Remember (and say once) the models a unit loaded that its scheme did not declare:
    they were not in the start-of-run estimate and are released with the scheme."""
    new = set(model_cache().loaded()) - before - _needs(blob, scheme_name) - _metric_keys(blob)
    if new:
        _UNDECLARED.setdefault((blob, scheme_name), set()).update(new)
        for k in new:
            print(f"lgvsc: warning: scheme {scheme_name!r} loaded {k.label()}, which its "
                  "models() does not list (not in the memory estimate)", file=sys.stderr)


@lru_cache(maxsize=16)
def _video(blob: str, label: str):
    sc = _scenario(blob)
    return load_video(sc.video(label), sc.base_dir or ".", sc.seed)


@lru_cache(maxsize=8)
def _metrics(blob: str):
    """Metrics that can run here, built once per process (deep ones load weights once)."""
    sc = _scenario(blob)
    return resolve_metrics(sc.metrics, sc.device)[0]


def _context(sc: Scenario, unit: Unit):
    seed = unit_seed(sc.seed, unit.scheme, unit.snr_db, unit.video, unit.trial)
    gen = RunContext(sc.device, sc.precision).generator(seed)
    return seed, gen, make_channel(sc.channel.type, **sc.channel.params())


def run_link_unit(blob: str, unit: Unit) -> dict:
    """Batches of random blocks until the target block errors or the max batches
    (like Sionna's ``sim_ber``, without skipping SNRs: units are independent)."""
    sc = _scenario(blob)
    mc = sc.monte_carlo
    link = _block_link(blob, unit.scheme)
    seed, gen, channel = _context(sc, unit)
    no = snr_db_to_no(unit.snr_db)
    counts = dict(bits=0, bit_errors=0, blocks=0, block_errors=0, raw_bits=0,
                  raw_bit_errors=0, channel_uses=0, batches=0)
    iters = 0  # decoder iterations summed over blocks (None: no iterative decoder)
    sq = 0  # sum over blocks of (bit errors in the block)^2: the BER interval's cluster term
    stop = "max_batches"
    t0 = time.perf_counter()
    while counts["batches"] < mc.max_batches:
        u = torch.randint(0, 2, (mc.batch_blocks, link.k), generator=gen,
                          device=sc.device).to(torch.float32)
        res = link(u, channel, no, gen)
        wrong = res.u_hat != u
        counts["bits"] += u.numel()
        per_block = wrong.sum(dim=1).to(torch.int64)
        counts["bit_errors"] += int(per_block.sum())
        sq += int(per_block.square().sum())
        counts["blocks"] += u.shape[0]
        counts["block_errors"] += int(wrong.any(dim=1).sum())
        counts["raw_bits"] += res.coded_bits
        counts["raw_bit_errors"] += res.raw_bit_errors
        counts["channel_uses"] += res.channel_uses
        counts["batches"] += 1
        iters = None if res.iterations is None or iters is None else iters + int(res.iterations.sum())
        if mc.target_block_errors and counts["block_errors"] >= mc.target_block_errors:
            stop = "target_block_errors"
            break
    return dict(asdict(unit), unit_id=unit.unit_id, seed=seed, stop_reason=stop,
                wall_s=time.perf_counter() - t0, failed=0,
                extra=dict(bit_errors_sq=sq, block_bits=link.k,
                           iterations_mean=None if iters is None else iters / counts["blocks"]),
                **counts)


#: uint8 bytes of the reference (and of the received) frames scored in one metric call
METRIC_CHUNK_BYTES = 8 << 20


def metric_chunk_frames(height: int, width: int) -> int:
    """Frames per metric call: :data:`METRIC_CHUNK_BYTES` of uint8 frames (a short clip
    is scored in one call, as the whole-clip implementation did: batched metrics such
    as MS-SSIM round the same), at least one."""
    return max(1, METRIC_CHUNK_BYTES // (3 * height * width))


def run_video_unit(blob: str, unit: Unit) -> dict:
    """One trial: send the clip, score it against the original chunk by chunk as the
    receiver emits it (per-frame values kept in ``extra.frame_metrics``), account the
    CBR. Neither clip is held whole (:mod:`lgvsc.sim.video`). The frames and video the
    scenario's ``save`` asks of this unit travel with the row under
    :data:`~lgvsc.sim.media.ROW_KEY` (:class:`~lgvsc.sim.media.MediaTap`)."""
    sc = _scenario(blob)
    video = _video(blob, unit.video)
    scheme = _scheme(blob, unit.scheme)
    seed, gen, channel = _context(sc, unit)
    metrics = _metrics(blob)
    t0 = time.perf_counter()
    try:
        tx = scheme.transmit(video, channel, unit.snr_db, gen)
        f, h, w = video.shape
        if tuple(tx.frames.shape) != (f, h, w, 3):
            raise RuntimeError(f"scheme {unit.scheme!r} returned {tx.frames.shape[0]} frames "
                               f"of {tuple(tx.frames.shape[1:])}, expected {(f, h, w, 3)}")
        size = metric_chunk_frames(h, w)
        want = request(sc, unit, f, tx.keyframes)
        tap = MediaTap(want, unit, (f, h, w), video.fps) if want else None
        received = received_chunks(tx.frames)
        per_frame = frame_scores(metrics, paired_chunks(
            video.chunks(size), rechunk(tap.tap(received) if tap else received, size)))
    except BudgetError as e:
        raise UserError(f"scheme {unit.scheme!r}, video {unit.video!r}: {e}") from None
    except RuntimeError as e:
        raise RuntimeError(f"scheme {unit.scheme!r}, video {unit.video!r}: {e}") from None
    _check_budget(unit, scheme.target_uses(video), tx.channel_uses)
    scores = {n: float(np.mean(v)) for n, v in per_frame.items()}
    scores["cbr"] = cbr(tx.channel_uses, f, h, w)
    media = {ROW_KEY: tap.files()} if tap else {}
    return dict(asdict(unit), **media, unit_id=unit.unit_id, seed=seed, stop_reason="trial",
                wall_s=time.perf_counter() - t0, channel_uses=tx.channel_uses, batches=1,
                metrics=scores, failed=int(tx.failed), failure=tx.failure_text() or None,
                **tx.counts,
                extra=dict(tx.extra, payload_bits=tx.payload_bits, frames=f, height=h,
                           width=w, failed_parts=list(tx.failures),
                           iterations_mean=tx.iterations_mean,
                           frame_metrics={n: [float(f"{x:.6g}") for x in v.tolist()]
                                          for n, v in per_frame.items()}))


def _check_budget(unit: Unit, target: int | None, spent: int) -> None:
    """A scheme with a budget spends [BUDGET_FLOOR, 1] x it; anything else is a bug in
    the scheme, refused rather than stored as a point at the wrong CBR."""
    if target is not None and not BUDGET_FLOOR * target <= spent <= target:
        raise RuntimeError(f"scheme {unit.scheme!r} spent {spent} channel uses on "
                           f"{unit.video!r} for a budget of {target} "
                           f"({spent / target:.3f} x, outside [{BUDGET_FLOOR}, 1])")


def execute_unit(blob: str, unit: Unit, threads: int | None = None) -> dict:
    """Entry point for every executor. ``blob`` is the scenario as JSON."""
    if threads:
        torch.set_num_threads(threads)
    run_unit = run_video_unit if _scenario(blob).kind == "video" else run_link_unit
    before = set(model_cache().loaded())
    row = run_unit(blob, unit)
    _note_loads(blob, unit.scheme, before)
    UNITS_RUN[unit.scheme] += 1
    row["params"] = _fingerprint(blob, unit.scheme, unit.video)
    row["version"] = __version__
    return row
