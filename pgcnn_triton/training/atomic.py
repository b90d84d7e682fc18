"""Atomic file writes for every run artefact (checkpoints, metrics.csv, JSON), and cleanup of what a
killed write leaves behind.

A write goes to a uniquely named temporary file in the target's directory (``.<name>.<pid>.<random>.tmp``),
is flushed and fsynced, renamed onto the target, and the directory is fsynced so the rename itself
survives a power cut. Readers therefore see the old file or the new one, never a mix; two writers never
share a temporary file. Every artefact gets the same mode (``0o666`` less the umask, 0644 usually).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from pathlib import Path

#: The names :func:`write_atomic` gives its temporary files (also the fixed ``.<name>.tmp`` of
#: pgcnn_triton versions before unique names).
TEMP_NAME = re.compile(r"^\..+\.tmp$")


def _open_temp(path: Path) -> tuple[int, Path]:
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            # like any new file: 0o666 less the umask (mkstemp would make 0600, unlike the other artefacts)
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:  # some filesystems cannot fsync a directory; the rename is still atomic
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; create missing parent directories.

    On any failure (a full disk, a crash, Ctrl-C) ``path`` keeps its previous content and the temporary
    file is removed; an ``OSError`` is re-raised naming ``path``.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temp(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None:
            raise OSError(error.errno, f"{path} was not written ({error.strerror}); "
                                       "its previous version, if any, is unchanged") from error
        raise
    _fsync_directory(path.parent)
    return path


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete the temporary files that a killed :func:`write_atomic` left in ``directory`` (not recursive).

    Call it only while no other process writes to ``directory`` (the run's lock is held). Returns the
    removed paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for entry in directory.iterdir():
        if TEMP_NAME.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
