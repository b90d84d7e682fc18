"""The paper's comparative claims, reproduced offline on the bundled digits (``pgcnn reproduce``).

:mod:`.plan` says what runs (tables, rows, seeds, flags), :mod:`.runner` runs it resumably with an ETA,
:mod:`.report` aggregates and checks the claims, :mod:`.figure` draws them, :mod:`.analysis` is the
partial-invariance analysis (its own table and figure), :mod:`.cli` ties them together.

>>> from pgcnn_triton.reproduce import build_plan
>>> len(build_plan(seeds=3))      # 5 rotated-MNIST rows + 2 MNIST6-180 + 2 MNIST6-M, 3 seeds each
27
"""

from .analysis import AnalysisSettings, format_analysis_markdown, plot_analysis, run_analysis, stable_range
from .cli import add_arguments, build_parser, main, run
from .plan import TABLE_KEYS, TABLES, Row, Run, Table, build_plan, select_tables
from .report import aggregate, check_claims, format_markdown
from .runner import execute

__all__ = ["TABLES", "TABLE_KEYS", "Row", "Run", "Table", "add_arguments", "aggregate", "build_parser", "build_plan",
           "check_claims", "execute", "format_markdown", "main", "run", "select_tables", "AnalysisSettings",
           "format_analysis_markdown", "plot_analysis", "run_analysis", "stable_range"]
