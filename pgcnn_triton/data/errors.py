"""Errors raised by the dataset loaders: what file was expected, where, and how to get it."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is missing. The message names the file, the directory searched and how to get it."""

    def __init__(self, dataset: str, expected: str | Path, root: str | Path, how_to_get: str):
        self.dataset, self.expected, self.root = dataset, str(expected), str(root)
        super().__init__(f"{dataset}: expected {expected} in {root}, but it is not there. {how_to_get}")


class DatasetCorruptError(ValueError, RuntimeError):
    """A dataset file exists but has the wrong checksum or an unreadable (or unsafe) format.

    A ``ValueError`` (bad input the user can fix; the CLI prints it on one line) and, as before, a
    ``RuntimeError``."""

    def __init__(self, dataset: str, path: str | Path, problem: str, how_to_get: str = ""):
        self.dataset, self.path = dataset, str(path)
        hint = f" {how_to_get}" if how_to_get else ""
        super().__init__(f"{dataset}: {path} is corrupt ({problem}); delete it and get it again.{hint}")


class DatasetFormatError(DatasetCorruptError):
    """A dataset file reads, but its content is not what the loader takes: wrong dtype, value range, shape,
    label range or count. The message names the file, what it holds, what is expected and how to convert it;
    nothing is cast or reshaped behind the user's back."""

    def __init__(self, dataset: str, path: str | Path, found: str, expected: str, fix: str = ""):
        self.dataset, self.path = dataset, str(path)
        hint = f" {fix}" if fix else ""
        ValueError.__init__(self, f"{dataset}: {path} holds {found}; expected {expected}.{hint}")
