"""Writing into a results folder: atomically, only inside it, one run at a time.

* :func:`atomic_write` -- every file lgvsc writes into a results folder is written
  to a hidden temp file created exclusively in the target's folder (``.lgvsc-tmp-*``),
  flushed and fsynced, then renamed onto the target (``os.replace``). A reader, or
  a writer killed at any moment (even ``kill -9``), sees the old file or the new
  one, never part of one. A target that is a symbolic link is replaced as a link,
  never written through. Temp files a killed writer leaves are removed by
  :func:`clean_temps` on the next write of the folder.
* :func:`folder_lock` -- an exclusive ``flock`` on ``<folder>/.lock`` (the holder's
  pid written in it), released by the kernel when the holder exits, however it exits.
* :func:`make_folder`, :func:`safe_dir`, :func:`refuse_links` -- the folder and its
  subfolders are created in place, never followed through a symbolic link.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from .errors import UserError

TMP_PREFIX = ".lgvsc-tmp-"
LOCK_NAME = ".lock"
#: {real path of a folder: [lock fd, depth]} -- the locks this process holds
_HELD: dict[str, list[int]] = {}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kw) -> Iterator[IO]:
    """Open a temp file next to ``path`` for writing; on a clean exit it is fsynced
    and renamed onto ``path`` (on an exception it is removed, ``path`` untouched)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would give
        with os.fdopen(fd, mode, **open_kw) as f:
            fd = -1  # owned by f now
            yield f
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


def _replace(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, lgvsc writes a file here: remove it") from None
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def clean_temps(folder: str | Path) -> int:
    """Remove the temp files (``.lgvsc-tmp-*``) killed writers left in ``folder``
    (files and links only, never followed); returns how many. Call it holding the lock."""
    folder, n = Path(folder), 0
    if folder.is_symlink() or not folder.is_dir():
        return 0
    for entry in os.scandir(folder):
        if entry.name.startswith(TMP_PREFIX) and not entry.is_dir(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            n += 1
    return n


def _link_error(path: Path) -> UserError:
    return UserError(f"{path} is a symbolic link; lgvsc writes only inside the results "
                     "folder: remove it")


def refuse_links(folder: Path, names) -> None:
    """One-line error if any of ``folder/<name>`` is a symbolic link."""
    for name in names:
        if (folder / name).is_symlink():
            raise _link_error(folder / name)


def safe_dir(path: Path, unlink_link: bool = False) -> Path:
    """``path`` as a real folder inside its parent, created if missing. A symbolic link
    there is refused (or, with ``unlink_link``, removed as a link, never followed)."""
    if path.is_symlink():
        if not unlink_link:
            raise _link_error(path)
        path.unlink()
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a folder; lgvsc writes a folder here")
    path.mkdir(exist_ok=True)
    return path


def remove_tree(path: Path) -> None:
    """Remove the folder ``path`` (a link there: the link only)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def make_folder(out: Path) -> Path:
    """Create the results folder ``out`` (and its parents); one-line error naming the
    path and the reason when it is not a folder or cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder (--out takes a results folder)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the results folder ({_why(out, e)})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"{out}: cannot write into this folder (permission denied)")
    return out


def _why(out: Path, e: OSError) -> str:
    """The reason a folder cannot be created, naming an ancestor that is a file."""
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file"
            break
    return e.strerror or str(e)


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold the exclusive lock of results folder ``out`` (reentrant in one process);
    refused at once, naming the holder's pid, when another process holds it."""
    key = os.path.realpath(out)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    fd = _acquire(out)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        os.close(fd)  # releases the lock


def _acquire(out: Path) -> int:
    path = out / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _link_error(path) from None
        raise UserError(f"{path}: cannot open the lock file ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        raise UserError(f"{out}: in use by another lgvsc run (pid {pid}); wait for it to "
                        "finish or use --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int, tries: int = 20) -> str:
    """The pid the holder wrote into the lock file ('unknown' if it has not yet)."""
    for _ in range(tries):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.025)
    return "unknown"
