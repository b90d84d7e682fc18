"""Check that the built API reference lists every public name: each entry of ``__all__`` of pgcnn_triton and
its subpackages has an entry in the site that ``mkdocs build`` wrote (``.ci/run`` runs it after the build).

    python scripts/check_api_reference.py SITE_DIR
"""

import importlib
import sys
from pathlib import Path

#: module → the identifier prefix its page uses (pgcnn_triton.kernels is documented from kernels/ as ``kernels``)
PACKAGES = {"pgcnn_triton": "pgcnn_triton", "pgcnn_triton.nn": "pgcnn_triton.nn", "pgcnn_triton.models": "pgcnn_triton.models",
            "pgcnn_triton.testing": "pgcnn_triton.testing", "pgcnn_triton.training": "pgcnn_triton.training",
            "pgcnn_triton.data": "pgcnn_triton.data", "pgcnn_triton.reproduce": "pgcnn_triton.reproduce",
            "pgcnn_triton.kernels": "kernels"}
#: names documented under another identifier: a submodule's own page, or a function named like its module
ALIASES = {"pgcnn_triton.kernels": "kernels.group_conv2d", "kernels.group_pool": "kernels.group_pool.group_pool"}


def missing(site: Path) -> list[str]:
    html = "\n".join(p.read_text() for p in (site / "reference").rglob("*.html"))
    gaps = []
    for module, prefix in PACKAGES.items():
        for name in importlib.import_module(module).__all__:
            ident = ALIASES.get(f"{prefix}.{name}", f"{prefix}.{name}")
            if f'id="{ident}"' not in html:
                gaps.append(f"{module}.{name}")
    return gaps


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "reference").is_dir():
        sys.exit("usage: python scripts/check_api_reference.py SITE_DIR (the folder mkdocs build wrote)")
    gaps = missing(Path(sys.argv[1]))
    if gaps:
        sys.exit(f"public names missing from the API reference (docs/reference/): {', '.join(gaps)}")
    print(f"API reference: every public name of {len(PACKAGES)} packages is listed")
