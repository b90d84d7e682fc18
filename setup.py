"""The package list for setuptools (everything else is in pyproject.toml).

Discovered, so a new subpackage cannot be left out of the wheel: every package under ``pgcnn_triton/``,
plus the repository's ``kernels/`` folder (and any subpackage of it) installed as ``pgcnn_triton.kernels``.
``kernels`` itself is never installed as a top-level module: that name belongs to another package.
pyproject.toml's ``[tool.setuptools]`` cannot map a folder to another name and discover packages at once.
"""

from setuptools import find_packages, setup

KERNELS = ["pgcnn_triton.kernels"] + [f"pgcnn_triton.kernels.{name}" for name in find_packages("kernels")]

setup(packages=find_packages(include=["pgcnn_triton", "pgcnn_triton.*"]) + KERNELS,
      package_dir={"pgcnn_triton": "pgcnn_triton", "pgcnn_triton.kernels": "kernels"})
