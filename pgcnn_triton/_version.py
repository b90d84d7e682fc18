"""The package version, single-sourced from ``pyproject.toml``.

Installed (``pip install .``, editable or not), it is the distribution's metadata. Run from a source
checkout without an install (``PYTHONPATH=.``) there is no metadata: the checkout's ``pyproject.toml`` says it.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path


def package_version() -> str:
    """``pgcnn_triton``'s version: the installed metadata, else the checkout's pyproject.toml, else ``0+unknown``."""
    try:
        return metadata.version("pgcnn_triton")
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
        if found:
            return found.group(1)
    return "0+unknown"
