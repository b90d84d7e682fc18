"""The paper's comparative claims, reproduced offline in one command on the bundled digits.

    python examples/reproduce.py            # 3 seeds: rotated MNIST (5 models), MNIST6-180, MNIST6-M
    python examples/reproduce.py --quick    # 1 seed, fewer epochs: a preview
    python examples/reproduce.py --resume   # continue an interrupted reproduction

Same as ``pgcnn reproduce``; see ``python examples/reproduce.py --help`` and the README's results table.
"""

from __future__ import annotations

import sys

from pgcnn_triton.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
