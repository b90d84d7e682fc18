"""What ``pgcnn reproduce`` runs: the paper's comparative tables, scaled to the bundled digits and a CPU.

Three tables (docs/reproducing.md; the paper's Tables 1–2 and Figure 4), each a set of rows trained for
every seed:

* ``rotmnist`` — rotated MNIST (bundled: every digit rotated once by a uniform angle): T(2), SE(2) full /
  partial, E(2) full / partial, and the Augerino SE(2) baseline (the T(2) CNN behind a learned rotation
  augmentation over the same N = 4 elements: invariance learned by augmentation instead of by architecture).
  Claim: equivariance beats the translation-only CNN and partial keeps it.
* ``mnist6-180`` — 6s against their 180°-rotated copies: SE(2) full vs partial, and Augerino SE(2) (can a
  learned augmentation drop the rotations that map a 6 to a "9"?). Claim: full is stuck at chance, partial
  learns to drop those rotations.
* ``mnist6-m`` — 6s against their mirror images: E(2) full vs partial (the mirrors are what hurts).

Scaling (stated in the README with the table): the CKResNet presets of each dataset with the bundled
short-run flags of :data:`~pgcnn_triton.training.recipes.BUNDLED_RUNS` — rotated MNIST at hidden width 16
(paper: 32), SE(2) with N = 4 rotations and E(2) with N = 8 = the same 4 rotations × 2 mirrors (paper:
N = 8 for both), 2,000 training digits, 10 epochs at lr 3e-3; MNIST6 at the presets' width 10 with the
settings of ``examples/mnist6.py``. Within a table every row has the same widths, kernel net and depth, so
the parameter counts match as in the paper (a kernel net's size does not depend on the group or N; the
T(2) row differs by the kernel nets' input width and the pooling of its preset).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from ..data.bundled import bundled_mnist6, bundled_rotmnist
from ..training.recipes import bundled_run, for_group


@dataclass(frozen=True)
class Row:
    """One model of a table: ``group`` ``"t2"`` / ``"se2"`` / ``"e2"``, full or partial, and the flags that
    set it apart from the table's other rows (e.g. its number of group elements)."""

    label: str
    group: str
    partial: bool
    flags: tuple = ()  # (flag, value) pairs: hashable, so rows stay frozen

    @property
    def augerino(self) -> bool:
        """Whether the row is an Augerino baseline (``--model augerino-…``): a T(2) network behind a learned
        augmentation over ``group``."""
        return str(dict(self.flags).get("model", "")).startswith("augerino-")

    @property
    def slug(self) -> str:
        """Its run-directory name, e.g. ``se2-partial`` (``t2`` for the baseline, ``augerino-se2``)."""
        if self.augerino:
            return f"augerino-{self.group}"
        return "t2" if self.group == "t2" else f"{self.group}-{'partial' if self.partial else 'full'}"


@dataclass(frozen=True)
class Table:
    """A comparison on one dataset: its rows, the flags every row shares, and the ``--quick`` changes.

    ``prior_s`` is a measured cost per run (seconds, by row slug, default flags, the README's CPU); it
    only seeds the ETA before the first run has finished. ``quick_rows`` are the slugs of the rows the
    ``--quick`` preview trains (``None``: all).
    """

    key: str
    title: str
    dataset: str
    rows: tuple[Row, ...]
    flags: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)
    prior_s: dict = field(default_factory=dict)
    quick_rows: tuple[str, ...] | None = None


T2 = Row("T(2)", "t2", False)
SE2_FULL, SE2_PARTIAL = Row("SE(2) full", "se2", False), Row("SE(2) partial", "se2", True)
E2_FULL, E2_PARTIAL = Row("E(2) full", "e2", False), Row("E(2) partial", "e2", True)
# rotated MNIST: E(2) with the same 4 rotations as SE(2), times the 2 mirrors (with N = 4 it would sample
# only 2 rotations per layer, and trained to 64 % in 4 epochs where SE(2) reached 95 %)
E2_FULL_8 = Row("E(2) full", "e2", False, (("num_elements", 8),))
E2_PARTIAL_8 = Row("E(2) partial", "e2", True, (("num_elements", 8),))
# the learned-augmentation baseline over the SE(2) rows' 4 rotations (the original's defaults: its
# resampling, no width regulariser)
AUGERINO_SE2 = Row("Augerino SE(2)", "se2", True, (("model", "augerino-ckresnet"),))

# --quick must finish in ≤ 5 min on any 2-core x86 CPU, also one without bf16 units (fp32, ~3× slower than
# bf16 on an AVX512-BF16 EPYC): one seed, a quarter of the rotated digits and 120 of the 300 sixes, 2–3 epochs,
# and no E(2) rows on rotated MNIST (E(2) costs twice SE(2)). Too short to train the models apart: it shows
# the whole pipeline and each row's structure (elements per layer, invariance), not the claims.
TABLES = (
    Table("rotmnist", "Rotated MNIST (bundled)", "bundled-rotmnist",
          (T2, SE2_FULL, SE2_PARTIAL, E2_FULL_8, E2_PARTIAL_8, AUGERINO_SE2),
          flags=dict(bundled_run("bundled-rotmnist"), epochs=10, lr=3e-3, train_size=2000),
          quick=dict(epochs=3, train_size=500), quick_rows=("t2", "se2-full", "se2-partial", "augerino-se2"),
          prior_s={"t2": 30.0, "se2-full": 42.0, "se2-partial": 43.0, "e2-full": 105.0, "e2-partial": 107.0,
                   "augerino-se2": 100.0}),
    Table("mnist6-180", "MNIST6-180 (bundled)", "bundled-mnist6-180", (SE2_FULL, SE2_PARTIAL, AUGERINO_SE2),
          flags=bundled_run("bundled-mnist6-180"),
          quick=dict(epochs=3, train_size=120),
          prior_s={"se2-full": 15.0, "se2-partial": 15.0, "augerino-se2": 20.0}),
    Table("mnist6-m", "MNIST6-M (bundled)", "bundled-mnist6-m", (E2_FULL, E2_PARTIAL),
          flags=bundled_run("bundled-mnist6-m"),
          quick=dict(epochs=2, train_size=120),
          prior_s={"e2-full": 38.0, "e2-partial": 35.0}),
)
TABLE_KEYS = tuple(t.key for t in TABLES)


@dataclass(frozen=True)
class Run:
    """One training run of the reproduction: a table's row for one seed, with all its flags."""

    table: Table
    row: Row
    seed: int
    flags: dict

    @property
    def name(self) -> str:
        """``<table>/<row>/seed<k>``: its place under the output directory and its name in logs."""
        return f"{self.table.key}/{self.row.slug}/seed{self.seed}"

    @property
    def prior_s(self) -> float:
        """The table's measured cost of this row, scaled to this run's number of epochs and training images."""
        base = float(self.table.prior_s.get(self.row.slug, 60.0))
        for key, default in (("epochs", self.table.flags.get("epochs")),
                             ("train_size", self.table.flags.get("train_size") or default_train_size(self.table))):
            value = self.flags.get(key)
            if value and default:
                base *= value / default
        return base


def default_train_size(table: Table) -> int | None:
    """The bundled loader's default number of training digits for ``table``'s dataset."""
    loader = bundled_rotmnist if table.dataset == "bundled-rotmnist" else bundled_mnist6
    return inspect.signature(loader).parameters["train"].default


def select_tables(keys) -> tuple[Table, ...]:
    """The tables named by ``keys`` (all when ``None``), in the canonical order."""
    if keys is None:
        return TABLES
    keys = list(keys)
    unknown = [k for k in keys if k not in TABLE_KEYS]
    if unknown or not keys:
        raise ValueError(f"tables must be a non-empty subset of {list(TABLE_KEYS)}, got {keys}")
    return tuple(t for t in TABLES if t.key in keys)


def row_flags(table: Table, row: Row) -> dict:
    """The training flags of a row: the table's shared flags, its group and partial flag, its own flags.

    MNIST6 tables name a preset (the partial model); its full row is the same architecture with θ
    fixed (``partial=False``), as in ``examples/mnist6.py``.
    """
    # the T(2) baseline is its own preset (rotmnist-t2) with one element per layer: the table's group preset
    # and N do not apply to it
    flags = dict(for_group(table.flags, row.group), dataset=table.dataset, group=row.group, **dict(row.flags))
    if row.group == "t2":
        flags["partial"] = None
    else:
        flags["partial"] = row.partial
    return flags


def build_plan(tables=None, seeds: int = 3, quick: bool = False, overrides: dict | None = None) -> list[Run]:
    """Every run of the reproduction, table by table, seed-major within a table (seed 0 of every row
    first, so an interrupted run has a complete first comparison).

    Args:
        tables: table keys (default: all of :data:`TABLES`).
        seeds: number of seeds, ``0 … seeds-1``.
        quick: the ``--quick`` preview: each table's ``quick_rows`` with its ``quick`` flags (fewer epochs
            and training digits).
        overrides: flags set on every run last (e.g. ``{"epochs": 1, "max_batches": 2}``); ``None`` values
            are ignored.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    extra = {k: v for k, v in (overrides or {}).items() if v is not None}
    plan = []
    for table in select_tables(tables):
        rows = [r for r in table.rows if not quick or table.quick_rows is None or r.slug in table.quick_rows]
        for seed in range(seeds):
            for row in rows:
                flags = row_flags(table, row)
                if quick:
                    flags.update(table.quick)
                flags.update(extra, seed=seed)
                plan.append(Run(table, row, seed, flags))
    return plan
