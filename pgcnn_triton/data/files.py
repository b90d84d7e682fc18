"""File helpers for the loaders: checksums and downloads (with a progress bar, written atomically)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .errors import DatasetCorruptError

HASHES = ("md5", "sha256")


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file (``algorithm`` is ``"md5"`` or ``"sha256"``)."""
    if algorithm not in HASHES:
        raise ValueError(f"algorithm must be one of {HASHES}, got {algorithm!r}")
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | Path, expected: str, dataset: str, algorithm: str = "md5", how_to_get: str = "") -> None:
    """Raise :class:`DatasetCorruptError` unless the file's digest equals ``expected``."""
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DatasetCorruptError(dataset, path, f"{algorithm} {actual}, expected {expected}", how_to_get)


def download(url: str, path: str | Path, *, dataset: str, md5: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``path`` through a temporary file, then verify its md5 (if given).

    A file that fails the checksum is deleted and :class:`DatasetCorruptError` is raised; the target
    path only ever holds a complete download.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            # disable=None: a bar on a terminal only, no carriage-return frames in a log file
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {path.name}",
                      disable=None if progress else True) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        tmp.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        raise OSError(f"{dataset}: the download of {url} failed ({reason}); check the network connection, or "
                      f"download the file yourself into {path.parent} and run again without --download") from None
    if md5 is not None:
        try:
            verify_file(tmp, md5, dataset, "md5", f"The download from {url} did not match its checksum.")
        except DatasetCorruptError:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, path)
    return path
