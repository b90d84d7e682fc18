"""Who may write a run directory: one trainer at a time (a lock file), and never over a run unasked.

:class:`RunDirectory` is held for a run's whole lifetime by the process that writes (rank 0). On entry it
creates the directory, takes an exclusive ``fcntl`` lock on ``OUT_DIR/.lock`` (a second trainer on the same
directory is refused at once, not queued) and refuses a directory that already holds a run unless the
run is resumed or ``overwrite`` was asked for; then it removes the temporary files a killed write left
there. On exit it releases the lock and removes the directories
it created if the run wrote nothing into them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path

from .atomic import remove_stale_temps

#: What makes a directory "hold a run": any of the files a training run writes.
RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "summary.json")
#: Everything :meth:`RunDirectory.clear` removes for ``--overwrite`` (the run's own files, nothing else).
OWN_FILES = RUN_FILES + ("curves.png", "learned_equivariance.png")
LOCK = ".lock"


def existing_run_message(path: Path, found: list[str], wording: str = "cli") -> str:
    """Why a plain run refuses ``path`` and the way out: ``--resume`` only where there is a ``last.pt``.
    ``wording="python"`` names the :class:`~pgcnn_triton.training.Trainer` arguments instead of the flags."""
    if wording == "python":
        if "last.pt" in found:
            return (f"out_dir {path} already holds a run ({', '.join(found)}): pass Trainer(..., resume=True) to "
                    f"continue it, overwrite=True to replace it, or choose another out_dir")
        return (f"out_dir {path} holds {', '.join(found)} but no last.pt, so it cannot be continued: pass "
                f"Trainer(..., overwrite=True) to start it again (replacing {', '.join(found)}), or choose another "
                "out_dir")
    if "last.pt" in found:
        return (f"--out-dir {path} already holds a run ({', '.join(found)}): pass --resume to continue it, "
                f"--overwrite to replace it, or choose another --out-dir")
    return (f"--out-dir {path} holds {', '.join(found)} but no last.pt (the run stopped before its first full "
            f"checkpoint, or last.pt was removed), so it cannot be continued: pass --overwrite to start it again (replacing "
            f"{', '.join(found)}), or choose another --out-dir")


class RunDirectoryBusyError(OSError):
    """Another process holds the lock of the run directory."""


def existing_run_files(directory: str | Path) -> list[str]:
    """The names of :data:`RUN_FILES` present in ``directory`` (``[]``: no run there)."""
    directory = Path(directory)
    return [name for name in RUN_FILES if (directory / name).exists()]


class RunDirectory:
    """Context manager owning ``path`` for one run (see the module docstring).

    Args:
        path: the run directory (``--out-dir``).
        resume: the run continues from a checkpoint, so an existing run is expected, not refused.
        overwrite: an existing run may be replaced (:meth:`clear` removes its files when training starts).
        wording: ``"cli"`` (messages name ``--out-dir`` / ``--resume`` / ``--overwrite``) or ``"python"``
            (they name the :class:`~pgcnn_triton.training.Trainer` arguments).
    """

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False, wording: str = "cli"):
        if resume and overwrite:
            raise ValueError("--resume and --overwrite contradict each other: --resume continues the run in "
                             "the out-dir, --overwrite replaces it; pass only one")
        self.path, self.resume, self.overwrite = Path(path), resume, overwrite
        self.wording = wording
        self._fd: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> RunDirectory:
        self._make_dirs()
        try:
            self._lock()
            found = existing_run_files(self.path)
            if found and not (self.resume or self.overwrite):
                raise FileExistsError(existing_run_message(self.path, found, self.wording))
            # what a killed write left behind is garbage once we hold the lock: no one else writes here
            remove_stale_temps(self.path)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _make_dirs(self) -> None:
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocker = next((p for p in (self.path, *self.path.parents) if p.exists() and not p.is_dir()), self.path)
            raise NotADirectoryError(f"--out-dir {self.path} cannot be created: {blocker} is a file; "
                                     f"choose another --out-dir") from None
        except OSError as error:
            raise OSError(f"cannot create --out-dir {self.path} ({error.strerror}); "
                          f"choose another --out-dir") from None
        self._created = sorted(missing, key=lambda p: len(p.parts), reverse=True)  # deepest first

    def _lock(self) -> None:
        lock = self.path / LOCK
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    # a filesystem without locks (some network mounts): train, but say it is unguarded
                    os.close(fd)
                    lock.unlink(missing_ok=True)
                    print(f"warning: cannot lock {lock} ({error.strerror}); nothing stops a second trainer "
                          f"on --out-dir {self.path}", file=sys.stderr)
                    return
                holder = _read_pid(fd)
                os.close(fd)
                raise RunDirectoryBusyError(
                    f"--out-dir {self.path} is in use by another trainer"
                                 f"{f' (process {holder})' if holder else ''}: wait for it to finish, or choose "
                                 f"another --out-dir") from None
            # the holder before us may have unlinked the file after we opened it: then we hold a lock on
            # a file nobody else will find, so start again with the one now at the path
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def clear(self) -> list[str]:
        """``overwrite``: remove the previous run's files (:data:`OWN_FILES`); returns their names."""
        removed = []
        for name in OWN_FILES:
            target = self.path / name
            if target.exists():
                target.unlink()
                removed.append(name)
        return removed

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            # unlink while still holding the lock, so no one can lock the old file after we let go
            (self.path / LOCK).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None
        for directory in self._created:  # a run that wrote nothing leaves no empty directory behind
            try:
                directory.rmdir()
            except OSError:
                break


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
