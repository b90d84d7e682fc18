"""Make ``pgcnn_triton.kernels`` importable when the package runs from a source checkout.

An installed package (``pip install .`` or ``-e .``) maps the repository's ``kernels/`` folder to
``pgcnn_triton.kernels`` (see ``pyproject.toml``). Where nothing is installed (``PYTHONPATH=.`` on a
machine without a package registry) this registers the same folder under the same single name, so
``kernels`` never becomes a top-level module.
"""

import importlib.util
import os
import sys

_NAME = "pgcnn_triton.kernels"


def ensure_kernels_importable() -> None:
    if _NAME in sys.modules or importlib.util.find_spec(_NAME) is not None:
        return
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")
    init = os.path.join(src, "__init__.py")
    if not os.path.isfile(init):
        raise ImportError(f"{_NAME} is missing: expected the package at {src}; reinstall pgcnn_triton")
    spec = importlib.util.spec_from_file_location(_NAME, init, submodule_search_locations=[src])
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
