"""Saved frames and videos of a video run: what the receiver saw (``save:``).

A unit of a scheme in ``save.schemes`` and a trial in ``save.trials`` keeps, while
its received frames stream past the metrics (:class:`MediaTap`), the frames
``save.frames`` as PNG and, at the SNRs of ``save.videos``, the whole received
clip as an H.264 mp4. The worker hands the files back with the unit's row (under
:data:`ROW_KEY`, so any executor works); the runner writes them and drops them
from the row: media never enter the store. The original clip's frames (and its
mp4) are written once per video by :func:`write_originals`.

Layout, relative to the results folder (``<v>``, ``<s>``: :func:`slug` of the
video label and the scheme name; ``<snr>`` as ``%g``)::

    media/<v>/original/f00061.png              the original frame 61
    media/<v>/original/original.mp4
    media/<v>/<s>/<snr>dB_t<trial>_f00061.png  frame 61 as received
    media/<v>/<s>/<snr>dB_t<trial>.mp4
    media/index.json                            every file that exists, described

Units are seeded, so a missing file is made again by running its unit again
(:func:`regenerate`, ``lgvsc media RESULTS``): PNG and x264 (one thread, a fresh
process) encodes are deterministic, so the new file is byte-identical to the old one, and
the re-run unit's metrics are checked against the stored ones.

Videos: x264 CRF 18 (visually lossless), preset medium, 4:2:0 (BT.601 limited
range, said in the stream's VUI), one thread, the clip's frame rate, encoded in
a child process (:mod:`lgvsc.sim.mp4`); a frame with an odd height or width is
padded by repeating its last row / column (4:2:0 needs even sizes).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .outputs import atomic_write, safe_dir

MEDIA_DIR = "media"
INDEX_FILE = "media/index.json"
#: the key of a unit's row that carries its media files {relative path: bytes}
ROW_KEY = "media"


def slug(text: str) -> str:
    """A file-name-safe form of a scheme name or video label: letters, digits and
    ``. + - _`` kept, anything else (spaces, slashes) becomes ``_``."""
    s = re.sub(r"[^A-Za-z0-9.+_-]", "_", text).strip(".")
    return s or "_"


def _snr(snr_db: float) -> str:
    return f"{float(snr_db):g}dB"


def frame_path(video: str, scheme: str, snr_db: float, trial: int, frame: int) -> str:
    return f"{MEDIA_DIR}/{slug(video)}/{slug(scheme)}/{_snr(snr_db)}_t{trial}_f{frame:05d}.png"


def video_path(video: str, scheme: str, snr_db: float, trial: int) -> str:
    return f"{MEDIA_DIR}/{slug(video)}/{slug(scheme)}/{_snr(snr_db)}_t{trial}.mp4"


def original_frame_path(video: str, frame: int) -> str:
    return f"{MEDIA_DIR}/{slug(video)}/original/f{frame:05d}.png"


def original_video_path(video: str) -> str:
    return f"{MEDIA_DIR}/{slug(video)}/original/original.mp4"


# -- what a unit saves ----------------------------------------------------------
def resolve_frame(choice, count: int) -> int:
    """Index of a ``save.frames`` entry (an int, negative from the end, or "middle")
    in a clip of ``count`` frames; ``ValueError`` when it is outside the clip."""
    i = count // 2 if choice == "middle" else int(choice)
    j = i + count if i < 0 else i
    if not 0 <= j < count:
        raise ValueError(f"frame {choice} is outside the clip's {count} frames")
    return j


def figure_snrs(sc) -> list[float]:
    """The Fig. 1 rows: ``save.figure.snr_db``, else the sweep's lowest, middle and
    highest SNR (fewer when the sweep has fewer)."""
    if sc.save.figure.snr_db:
        return [float(x) for x in sc.save.figure.snr_db]
    sweep = sorted({float(x) for x in sc.channel.snr_db})
    return sorted({sweep[0], sweep[len(sweep) // 2], sweep[-1]})


def saved_schemes(sc) -> list[str]:
    """Names of the schemes whose units save media, in the scenario's order."""
    names = [e["name"] for e in sc.schemes]
    return [n for n in names if sc.save.schemes is None or n in sc.save.schemes]


@dataclass(frozen=True)
class MediaRequest:
    """What one unit saves: ``frames`` (indices, sorted) and whether the ``video``."""

    frames: tuple[int, ...]
    video: bool

    def paths(self, unit) -> list[str]:
        out = [frame_path(unit.video, unit.scheme, unit.snr_db, unit.trial, i)
               for i in self.frames]
        if self.video:
            out.append(video_path(unit.video, unit.scheme, unit.snr_db, unit.trial))
        return out


def request(sc, unit, count: int, keyframes=None) -> MediaRequest | None:
    """The media unit ``unit`` (of a clip of ``count`` frames) saves, None when its
    scheme or trial saves nothing. ``keyframes``: the indices the scheme sent as
    keyframes (None: it has none), for a ``keyframes`` entry of ``save.frames``."""
    save = sc.save
    if unit.scheme not in saved_schemes(sc) or unit.trial not in save.trials:
        return None
    frames = set()
    for choice in list(save.frames) + [save.figure.frame]:
        if choice == "keyframes":
            frames.update(int(k) for k in keyframes or ())
        else:
            frames.add(resolve_frame(choice, count))
    videos = save.videos
    video = videos if isinstance(videos, bool) else float(unit.snr_db) in {float(v) for v in videos}
    return MediaRequest(tuple(sorted(frames)), bool(video))


def stored_request(sc, unit, row: dict) -> MediaRequest | None:
    """:func:`request` of a stored unit (its row: the frame count and keyframes)."""
    extra = row.get("extra") or {}
    return request(sc, unit, int(extra["frames"]), extra.get("keyframes"))


# -- encoding ---------------------------------------------------------------------
def png_bytes(frame: np.ndarray) -> bytes:
    """PNG of a uint8 RGB frame ``[H, W, 3]`` (OpenCV, deterministic)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]))
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return buf.tobytes()


def read_png(path: str | Path) -> np.ndarray:
    """A PNG file as uint8 RGB ``[H, W, 3]``."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img[..., ::-1].copy()


def _even(frames: np.ndarray) -> np.ndarray:
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


class Mp4Writer:
    """An H.264 mp4 made from uint8 RGB chunks ``[n, H, W, 3]`` (:meth:`add`),
    returned by :meth:`close` as bytes: the frames go to a child process
    (:mod:`lgvsc.sim.mp4`, PyAV + x264, one thread) as they come, so neither the
    clip nor the encoder's state is held here, and every encode of the same frames
    gives the same bytes. Odd sizes are padded to even (:func:`_even`)."""

    #: seconds :meth:`close` waits for the encoder after the last frame
    TIMEOUT_S = 600

    def __init__(self, height: int, width: int, fps: float):
        import subprocess
        import sys
        import tempfile

        rate = Fraction(float(fps)).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._err, self._outfile = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "lgvsc.sim.mp4", str(height + height % 2),
             str(width + width % 2), str(rate.numerator), str(rate.denominator)],
            stdin=subprocess.PIPE, stdout=self._outfile, stderr=self._err)

    def add(self, chunk: np.ndarray) -> None:
        try:
            self._child.stdin.write(np.ascontiguousarray(_even(np.asarray(chunk))).tobytes())
        except BrokenPipeError:
            self._fail()

    def _fail(self):
        self._child.wait(timeout=self.TIMEOUT_S)
        self._err.seek(0)
        tail = self._err.read().decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"the mp4 encoder exited with {self._child.returncode}: "
                           + " | ".join(tail))

    def close(self) -> bytes:
        import subprocess

        try:
            self._child.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self._child.wait(timeout=self.TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._child.kill()
            raise RuntimeError(f"the mp4 encoder took more than {self.TIMEOUT_S} s") from None
        if rc:
            self._fail()
        out = self._outfile
        out.seek(0)
        return out.read()


class MediaTap:
    """Keeps what ``req`` asks for while a unit's received chunks pass through
    :meth:`tap` (chunks in display order); :meth:`files` gives them as
    {relative path: bytes}. Working set: the encoder and the chosen PNGs."""

    def __init__(self, req: MediaRequest, unit, shape: tuple[int, int, int], fps: float):
        self.req, self.unit = req, unit
        self._want = set(req.frames)
        self._files: dict[str, bytes] = {}
        self._mp4 = Mp4Writer(shape[1], shape[2], fps) if req.video else None
        self._seen = 0

    def tap(self, chunks):
        u = self.unit
        for chunk in chunks:
            for k in range(len(chunk)):
                i = self._seen + k
                if i in self._want:
                    self._files[frame_path(u.video, u.scheme, u.snr_db, u.trial, i)] = \
                        png_bytes(chunk[k])
            if self._mp4 is not None:
                self._mp4.add(chunk)
            self._seen += len(chunk)
            yield chunk

    def files(self) -> dict[str, bytes]:
        u = self.unit
        if self._mp4 is not None:
            self._files[video_path(u.video, u.scheme, u.snr_db, u.trial)] = self._mp4.close()
            self._mp4 = None
        return dict(self._files)


def write_files(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Write media ``files`` {relative path: bytes} under results folder ``out``,
    each atomically; only paths under ``media/`` are accepted."""
    paths = []
    for rel, data in files.items():
        if not rel.startswith(MEDIA_DIR + "/") or ".." in Path(rel).parts:
            raise ValueError(f"media path {rel!r} is not under {MEDIA_DIR}/")
        p = out / rel
        safe_dir(out / MEDIA_DIR)
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(p, "wb") as f:
            f.write(data)
        paths.append(p)
    return paths


# -- originals, index, regeneration --------------------------------------------------
def original_request(sc, label: str, count: int, rows: list[dict]) -> MediaRequest:
    """The original frames of video ``label`` that its saved units show (their
    frames, keyframes included) and whether any unit saves its video."""
    from .units import Unit

    frames, video = set(), False
    for row in rows:
        if row["video"] != label:
            continue
        req = stored_request(sc, Unit(row["scheme"], row["snr_db"], label, row["trial"]), row)
        if req:
            frames.update(req.frames)
            video = video or req.video
    if not rows:  # nothing stored yet: what the fixed choices ask for
        frames = {resolve_frame(c, count) for c in list(sc.save.frames) + [sc.save.figure.frame]
                  if c != "keyframes"}
    return MediaRequest(tuple(sorted(frames)), video)


def write_originals(out: Path, sc, rows: list[dict]) -> list[Path]:
    """Write the original frames and videos that are asked for and missing."""
    from .video import load_video

    written = []
    for spec in sc.videos:
        label = spec.label()
        mine = [r for r in rows if r["video"] == label]
        if not mine:
            continue
        count = int((mine[0].get("extra") or {})["frames"])
        req = original_request(sc, label, count, mine)
        want = {original_frame_path(label, i): i for i in req.frames}
        need_video = req.video and not (out / original_video_path(label)).exists()
        missing = {p: i for p, i in want.items() if not (out / p).exists()}
        if not missing and not need_video:
            continue
        clip = load_video(spec, sc.base_dir or ".", sc.seed)
        files = {p: png_bytes(clip.frames[i]) for p, i in missing.items()}
        if need_video:
            f, h, w = clip.shape
            mp4 = Mp4Writer(h, w, clip.fps)
            for chunk in clip.chunks():
                mp4.add(chunk)
            files[original_video_path(label)] = mp4.close()
        written += write_files(out, files)
    return written


def _unit_items(sc, row: dict, req: MediaRequest) -> list[dict]:
    base = dict(video=row["video"], scheme=row["scheme"], snr_db=float(row["snr_db"]),
                trial=int(row["trial"]), failed=bool(row.get("failed")),
                failure=row.get("failure") or None)
    items = [dict(base, kind="frame", frame=i,
                  path=frame_path(row["video"], row["scheme"], row["snr_db"], row["trial"], i))
             for i in req.frames]
    if req.video:
        items.append(dict(base, kind="video", frame=None,
                          path=video_path(row["video"], row["scheme"], row["snr_db"],
                                          row["trial"])))
    return items


def media_items(sc, rows: list[dict]) -> list[dict]:
    """Every media file the stored ``rows`` ask for (originals first), described as
    in ``media/index.json``; whether each exists is not checked here."""
    from .units import Unit

    items = []
    for spec in sc.videos:
        label = spec.label()
        mine = [r for r in rows if r["video"] == label]
        if not mine:
            continue
        count = int((mine[0].get("extra") or {})["frames"])
        req = original_request(sc, label, count, mine)
        orig = dict(video=label, scheme=None, snr_db=None, trial=None, failed=False,
                    failure=None)
        items += [dict(orig, kind="frame", frame=i, path=original_frame_path(label, i))
                  for i in req.frames]
        if req.video:
            items.append(dict(orig, kind="video", frame=None, path=original_video_path(label)))
        for row in mine:
            req = stored_request(sc, Unit(row["scheme"], row["snr_db"], label, row["trial"]), row)
            if req:
                items += _unit_items(sc, row, req)
    return items


def write_index(out: Path, sc, rows: list[dict]) -> Path:
    """``media/index.json``: the media files of ``rows`` that exist."""
    items = [i for i in media_items(sc, rows) if (out / i["path"]).is_file()]
    path = safe_dir(out / MEDIA_DIR) / Path(INDEX_FILE).name
    with atomic_write(path) as f:
        f.write(json.dumps({"version": 1, "items": items}, indent=1) + "\n")
    return path


def missing_units(out: Path, sc, rows: list[dict]) -> list[dict]:
    """The stored rows whose unit's media files are not all there."""
    from .units import Unit

    out_rows = []
    for row in rows:
        unit = Unit(row["scheme"], float(row["snr_db"]), row["video"], int(row["trial"]))
        req = stored_request(sc, unit, row)
        if req and not all((out / p).is_file() for p in req.paths(unit)):
            out_rows.append(row)
    return out_rows


def _same_result(old: dict, new: dict) -> str | None:
    """None when a re-run unit matches its stored row (failure and every metric, to
    float tolerance), else what differs."""
    if bool(old.get("failed")) != bool(new.get("failed")):
        return f"failed {bool(old.get('failed'))} stored, {bool(new.get('failed'))} now"
    for k, v in (old.get("metrics") or {}).items():
        w = (new.get("metrics") or {}).get(k)
        if v is None or w is None:
            if v != w:
                return f"{k} {v} stored, {w} now"
        elif not np.isclose(v, w, rtol=1e-6, atol=1e-9):
            return f"{k} {v:.6g} stored, {w:.6g} now"
    return None


def regenerate(out: Path, sc, rows: list[dict], progress: bool = True) -> list[Path]:
    """Make the missing media of the stored ``rows`` by running their units again
    in this process (seeded: the same frames), after checking that each re-run gives
    the stored result (else ``RuntimeError``: the code or the machine changed since,
    and the media would not show the stored numbers); then the originals."""
    import sys

    from tqdm import tqdm

    from .units import Unit, execute_unit

    todo = missing_units(out, sc, rows)
    blob = sc.model_dump_json()
    written = []
    for row in tqdm(todo, desc="media", unit="unit", file=sys.stderr,
                    disable=not progress or not todo):
        unit = Unit(row["scheme"], float(row["snr_db"]), row["video"], int(row["trial"]))
        new = execute_unit(blob, unit)
        diff = _same_result(row, new)
        if diff:
            raise RuntimeError(f"unit {unit.unit_id} re-ran to another result ({diff}): the "
                               "code or machine changed since it was stored, so its media "
                               "would not show the stored numbers; `lgvsc run --fresh` "
                               "recomputes the sweep")
        written += write_files(out, new.get(ROW_KEY) or {})
    return written + write_originals(out, sc, rows)
