"""``pgcnn reproduce``: the plan, resumable running, aggregation, the claims, and a tiny real run (CI)."""

import json
import re
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from pgcnn_triton.cli import main as pgcnn_main
from pgcnn_triton.reproduce import TABLES, analysis, build_plan, execute, format_markdown, structure
from pgcnn_triton.reproduce.cli import build_parser
from pgcnn_triton.reproduce.cli import main as reproduce_main
from pgcnn_triton.reproduce.cli import run as reproduce_run
from pgcnn_triton.reproduce.report import aggregate, check_claims, kept_rotations, mean_std
from pgcnn_triton.reproduce.runner import Progress, namespace
from pgcnn_triton.reproduce.structure import FULL_INVARIANCE_TOL, RowMismatchError
from pgcnn_triton.training.args import model_spec_from_args
from pgcnn_triton.training.specs import build_model

# -- the plan -------------------------------------------------------------------------------------------


def test_default_plan_is_every_row_of_every_table_for_three_seeds():
    plan = build_plan()
    assert len(plan) == 3 * (6 + 3 + 2)
    assert len({run.name for run in plan}) == len(plan)
    rows = {(run.table.key, run.row.slug) for run in plan}
    assert rows == {("rotmnist", s) for s in ("t2", "se2-full", "se2-partial", "e2-full", "e2-partial",
                                              "augerino-se2")} | {
        ("mnist6-180", "se2-full"), ("mnist6-180", "se2-partial"), ("mnist6-180", "augerino-se2"),
        ("mnist6-m", "e2-full"), ("mnist6-m", "e2-partial")}
    # seed 0 of a whole table comes before seed 1 of any of its rows: an interrupted run has a full comparison
    rot = [run for run in plan if run.table.key == "rotmnist"]
    assert [run.seed for run in rot] == [0] * 6 + [1] * 6 + [2] * 6
    assert all(run.flags["seed"] == run.seed for run in plan)


def test_rows_of_a_table_differ_only_in_group_partial_and_their_own_flags():
    for table in TABLES:
        runs = [run for run in build_plan([table.key], seeds=1)]
        own = {k for run in runs for k, _ in run.row.flags}
        shared = [{k: v for k, v in run.flags.items() if k not in {"group", "partial", "preset", *own}}
                  for run in runs]
        assert all(s == shared[0] for s in shared), table.key
        for run in runs:
            assert run.flags["group"] == run.row.group
            assert run.flags["partial"] == (run.row.partial if run.row.group != "t2" else None)
            assert all(run.flags[k] == v for k, v in run.row.flags)
    # rotated MNIST: E(2) samples the same 4 rotations as SE(2), each with both mirrors
    rot = {run.row.slug: run.flags for run in build_plan(["rotmnist"], seeds=1)}
    assert rot["se2-full"]["num_elements"] == 4 and rot["e2-full"]["num_elements"] == 8
    # Augerino: the T(2) CKResNet behind a learned augmentation over the SE(2) rows' 4 rotations
    assert rot["augerino-se2"]["model"] == "augerino-ckresnet" and rot["augerino-se2"]["num_elements"] == 4
    assert "model" not in rot["se2-partial"]


@pytest.mark.parametrize("table", [t.key for t in TABLES])
def test_parameter_counts_are_matched_within_a_table(table):
    counts = {}
    for run in build_plan([table], seeds=1):
        args = namespace(run, Path("unused"))
        spec = model_spec_from_args(args, in_channels=1, num_classes=10 if table == "rotmnist" else 2, image_size=28)
        counts[run.row.slug] = sum(p.numel() for p in build_model(spec).parameters())
    augerino = counts.pop("augerino-se2", None)
    assert max(counts.values()) <= 1.05 * min(counts.values()), counts
    if augerino is not None:
        # the T(2) network of the same widths (its kernel nets read no group coordinate) plus θ
        if "t2" in counts:
            assert augerino == counts["t2"] + 1, (augerino, counts)
        assert augerino < min(v for k, v in counts.items() if k != "t2"), (augerino, counts)
    # full and partial rows differ only by the learnable θ (and mirror logits): at most 2 per layer
    for group in ("se2", "e2"):
        if f"{group}-full" in counts and f"{group}-partial" in counts:
            assert 0 < counts[f"{group}-partial"] - counts[f"{group}-full"] <= 2 * 8, counts


def test_quick_and_overrides_and_table_selection():
    quick = build_plan(["mnist6-180"], seeds=1, quick=True, overrides={"epochs": None, "max_batches": 2})
    assert len(quick) == 3
    assert all(run.flags["epochs"] == TABLES[1].quick["epochs"] and run.flags["max_batches"] == 2 for run in quick)
    assert all(run.flags["epochs"] == 1 for run in build_plan(overrides={"epochs": 1}))
    # the preview is lighter than the default in rows and training digits, not only in epochs
    rot = build_plan(["rotmnist"], seeds=1, quick=True)
    assert [run.row.slug for run in rot] == ["t2", "se2-full", "se2-partial", "augerino-se2"]
    assert all(run.flags["train_size"] < TABLES[0].flags["train_size"] for run in rot)
    assert sum(run.prior_s for run in build_plan(quick=True, seeds=1)) < 0.1 * sum(run.prior_s for run in build_plan())
    with pytest.raises(ValueError, match="tables must be"):
        build_plan(["cifar10"])
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        build_plan(seeds=0)


# -- running: resume, refusals, progress ----------------------------------------------------------------


def fake_summary(acc=0.9, thetas=(1.0, 0.5), mirrors=None):
    layers = [{"layer": f"l{i}", "group": "SE2", "theta": t,
               "mirror_probability": None if mirrors is None else mirrors[i]} for i, t in enumerate(thetas)]
    return {"test_acc": acc, "parameters": 100, "config": {"epochs": 2}, "dataset_sizes": {"train": 4},
            "learned_equivariance": layers}


class FakeTrain:
    """Stands in for train_from_args: writes summary.json (and last.pt) like a finished run."""

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = [], fail_on

    def __call__(self, args, verbose=False):
        self.calls.append(args)
        out = Path(args.out_dir)
        (out / "last.pt").write_bytes(b"checkpoint")
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise KeyboardInterrupt  # interrupted mid-run: last.pt but no summary.json
        summary = fake_summary(acc=0.5 + 0.1 * args.seed)
        (out / "summary.json").write_text(json.dumps(summary))
        return summary


def fake_measure(directory, row):
    """Stands in for measure_run: the structure a model of ``row`` has (no checkpoint to read)."""
    n = 1 if row.group == "t2" or row.augerino else 4
    layers = [{"layer": f"l{i}", "group": None if n == 1 else row.group.upper(), "num_elements": n,
               "partial": row.partial and i > 0 and not row.augerino, "used": n} for i in range(2)]
    out = {"layers": layers, "rot90_error": 0.3 if row.group == "t2" or row.partial else 1e-6,
           "flip_error": 1e-6 if row.group == "e2" else None}
    if row.augerino:
        out["augmentation"] = {"group": row.group.upper(), "num_elements": 4, "partial": True, "theta": 0.5,
                               "mirror_probability": None, "used": 2}
    return out


def test_resume_reads_finished_runs_back_and_continues_an_interrupted_one(tmp_path, capsys):
    plan = build_plan(["mnist6-180"], seeds=2)
    train = FakeTrain(fail_on=3)
    with pytest.raises(KeyboardInterrupt):
        execute(plan, tmp_path, train=train, measure=fake_measure)
    assert len(train.calls) == 3
    with pytest.raises(FileExistsError, match="--resume"):
        execute(plan, tmp_path, train=FakeTrain(), measure=fake_measure)
    again = FakeTrain()
    records = execute(plan, tmp_path, resume=True, train=again, measure=fake_measure)
    # runs 1-2 finished before: read back; run 3 continues from its last.pt; runs 4-6 start fresh
    assert [Path(a.out_dir).relative_to(tmp_path).as_posix() for a in again.calls] == [r.name for r in plan[2:]]
    assert again.calls[0].resume == "last" and again.calls[1].resume is None
    assert [r["summary"]["test_acc"] for r in records] == pytest.approx([0.5, 0.5, 0.5, 0.6, 0.6, 0.6])
    assert all(r["wall_s"] is not None for r in records)  # read back from run.json
    assert "(read back)" in capsys.readouterr().out


def test_resume_refuses_runs_started_with_other_flags(tmp_path):
    execute(build_plan(["mnist6-180"], seeds=1), tmp_path, train=FakeTrain(), measure=fake_measure)
    with pytest.raises(ValueError, match="epochs: 5 there, 3 now"):
        execute(build_plan(["mnist6-180"], seeds=1, overrides={"epochs": 3}), tmp_path, resume=True,
                train=FakeTrain(), measure=fake_measure)


def test_a_row_whose_model_contradicts_its_label_stops_the_reproduction_before_any_report(tmp_path):
    def c4_t2(directory, row):  # the bug of issue 22: the T(2) row sampled 4 rotations per layer
        structure = fake_measure(directory, row)
        if row.group == "t2":
            structure["layers"] = [dict(layer, num_elements=4, used=4, group="SE2") for layer in structure["layers"]]
        return structure

    args = build_parser().parse_args(["--tables", "rotmnist", "--seeds", "1", "--out-dir", str(tmp_path)])
    with pytest.raises(RowMismatchError, match="rotmnist/t2/seed0: the 'T\\(2\\)' model .* one group element"):
        reproduce_run(args, train=FakeTrain(), measure=c4_t2)
    assert not (tmp_path / "results.md").exists() and not (tmp_path / "results.json").exists()


def test_eta_follows_the_measured_speed():
    plan = build_plan(["rotmnist"], seeds=1)
    progress = Progress(plan)
    assert progress.eta(0) == pytest.approx(sum(run.prior_s for run in plan))
    progress.finished(plan[0], fake_summary(), seconds=2 * plan[0].prior_s)  # this machine is 2x slower
    assert progress.eta(1) == pytest.approx(2 * sum(run.prior_s for run in plan[1:]))
    progress.finished(plan[1], fake_summary(), seconds=None)  # read back: says nothing about speed
    assert progress.eta(2) == pytest.approx(2 * sum(run.prior_s for run in plan[2:]))
    # the prior follows the number of epochs (--epochs, --quick)
    longer = build_plan(["rotmnist"], seeds=1, overrides={"epochs": 30})
    assert longer[0].prior_s == pytest.approx(3 * plan[0].prior_s)


# -- aggregation and claims -----------------------------------------------------------------------------


def records_for(table_key, accs_by_row, thetas=(1.0, 0.5), mirrors=None):
    table = next(t for t in TABLES if t.key == table_key)
    out = []
    for row in table.rows:
        for seed, acc in enumerate(accs_by_row.get(row.slug, [])):
            th = (None, None) if row.group == "t2" else (thetas if row.partial else (1.0, 1.0))
            mi = None if row.group != "e2" else (mirrors if row.partial else (1.0, 1.0))
            summary = fake_summary(acc, th, mi)
            if row.augerino:  # one row: the augmentation's
                summary["learned_equivariance"] = [dict(summary["learned_equivariance"][1], layer="augment")]
            out.append({"table": table_key, "row": row.slug, "seed": seed, "wall_s": 1.0, "summary": summary,
                        "structure": fake_measure(None, row)})
    return out


def test_statistics_over_seeds():
    assert mean_std([0.9, 0.8, 1.0]) == pytest.approx((0.9, 0.1))
    assert mean_std([0.7]) == (0.7, 0.0)
    assert kept_rotations(-1.7) == 1.0 and kept_rotations(-0.25) == 0.25 and kept_rotations(None) is None
    stats = aggregate(records_for("mnist6-180", {"se2-full": [0.5, 0.5], "se2-partial": [1.0, 0.96]},
                                  thetas=(1.4, -0.3)), TABLES)
    part = next(r for r in stats[1]["rows"] if r["row"] == "se2-partial")
    assert part["test_acc_mean"] == pytest.approx(0.98)
    assert [layer["theta"] for layer in part["layers"]] == pytest.approx([1.0, 0.3])  # min(|θ|, 1)


def claim(claims, text):
    return next(c for c in claims if text in c["claim"])


def test_claims_hold_and_fail_on_the_issue_thresholds():
    good = records_for("rotmnist", {"t2": [0.95, 0.95], "se2-full": [0.975, 0.975], "se2-partial": [0.97, 0.97],
                                    "e2-full": [0.97, 0.97], "e2-partial": [0.97, 0.97]})
    good += records_for("mnist6-180", {"se2-full": [0.5, 0.55], "se2-partial": [1.0, 0.96]}, thetas=(1.0, 0.4))
    good += records_for("mnist6-m", {"e2-full": [0.5, 0.5], "e2-partial": [1.0, 0.99]}, thetas=(1.0, 1.0),
                        mirrors=(0.9, 0.1))
    claims = check_claims(aggregate(good, TABLES))
    assert len(claims) == 3 + 2 * 3 and all(c["holds"] for c in claims), claims
    bad = records_for("rotmnist", {"t2": [0.96, 0.96], "se2-full": [0.975, 0.975], "se2-partial": [0.96, 0.96],
                                   "e2-full": [0.97, 0.97], "e2-partial": [0.97, 0.97]})
    bad += records_for("mnist6-180", {"se2-full": [0.5, 0.61], "se2-partial": [1.0, 0.94]}, thetas=(1.0, 1.2))
    bad += records_for("mnist6-m", {"e2-full": [0.5, 0.65], "e2-partial": [1.0, 0.9]}, mirrors=(0.9, 0.5))
    claims = check_claims(aggregate(bad, TABLES))
    assert len(claims) == 9 and not any(c["holds"] for c in claims), claims
    assert claim(claims, "SE(2) full ≥ T(2)")["holds"] is False  # 1.5 points < 2
    assert claim(claims, "E(2) full ≥ T(2)")["holds"] is False


def markdown_tables(text):
    """Every Markdown table of ``text`` as lists of cells, checking each row has the header's width."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            widths = {len(r) for r in current}
            assert len(widths) == 1, current
            assert set("".join(current[1])) <= set("-:"), current[1]
            tables.append(current)
            current = []
    return tables


def test_markdown_is_well_formed_and_only_e2_rows_get_mirror_columns():
    records = records_for("rotmnist", {s: [0.9, 0.92] for s in ("t2", "se2-full", "se2-partial", "e2-full",
                                                                  "e2-partial", "augerino-se2")}, mirrors=(0.8, 0.2))
    stats = aggregate(records, TABLES)
    text = format_markdown(stats, check_claims(stats), "header")
    accuracy, subsets, augmentation, claims = markdown_tables(text)
    assert [r[0] for r in accuracy[2:]] == ["T(2)", "SE(2) full", "SE(2) partial", "E(2) full", "E(2) partial",
                                            "Augerino SE(2)"]
    assert accuracy[2][2] == "91.0 ± 1.4"
    assert accuracy[7][6] == "2 copies × 1·1"  # the Augerino row: averaged copies of a T(2) network
    assert subsets[0] == ["layer", "SE(2) partial: rotations kept", "E(2) partial: rotations kept",
                          "E(2) partial: mirror p"]
    assert subsets[3] == ["l1", "0.50 ± 0.00", "0.50 ± 0.00", "0.20 ± 0.00"]
    # the Augerino row's learned range: its own table (one augmentation, not per-layer subsets)
    assert augmentation == [["model", "rotations kept", "copies averaged (evaluation)"], ["---", "---:", "---:"],
                            ["Augerino SE(2)", "0.50 ± 0.00", "2"]]
    assert len(claims) == 2 + 3


# -- the tiny real reproduction (CI): every table, one seed, two batches -----------------------------------


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.long(15)
def test_tiny_reproduction_writes_table_figure_and_runs_and_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "repro"
    # the smallest real run: one batch of 8 digits per epoch and per evaluation (16), and the structure of
    # each model measured on 4 test digits instead of 64 (the measurement was half of this test's time; the
    # checks below hold the same: rounding-level errors for full rows, a T(2) error of ~0.3)
    for table in TABLES:
        monkeypatch.setitem(table.flags, "batch_size", 8)
    monkeypatch.setattr(structure, "MEASURE_IMAGES", 4)
    # the partial-invariance analysis at its smallest: one range, 4 sixes at 5 angles
    monkeypatch.setattr(analysis, "DEFAULT_SETTINGS", replace(analysis.DEFAULT_SETTINGS, batch_size=8, curve_images=4,
                                                              step_degrees=90.0, ranges=(90,)))
    argv = ["--seeds", "1", "--epochs", "1", "--max-batches", "1", "--out-dir", str(out)]
    assert reproduce_main(argv) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\[11/11\] MNIST6-M \(bundled\) · E\(2\) partial · seed 0 — elapsed \S+, ETA \S+", printed)
    assert re.search(r"rotmnist/augerino-se2/seed0: elements per layer 4 copies × 1·1·1·1·1·1, rot90 error \S+, "
                     r"augmentation \|θ\| \d\.\d{3}", printed)
    text = (out / "results.md").read_text()
    tables = markdown_tables(text)
    # accuracy + learned subsets for each of the three tables, the Augerino rows' augmentation (rotated
    # MNIST, MNIST6-180), and the analysis
    assert len(tables) == 9
    assert tables[8][0][:2] == ["r (training range)", "test acc %"] and tables[8][2][0] == "±90°"
    for augmentation in (tables[2], tables[5]):
        assert augmentation[2][0] == "Augerino SE(2)" and 0.0 < float(augmentation[2][1].split(" ± ")[0]) <= 1.0
    del tables[8], tables[5], tables[2]
    for accuracy in (tables[0], tables[2], tables[4]):
        for row in accuracy[2:]:
            mean = float(row[2].split(" ± ")[0])
            assert 0.0 <= mean <= 100.0 and int(row[1].replace(",", "")) > 1000 and row[4] == "1"
    assert "claims are checked only by the default command" in text
    assert text.count("on 4 test digits") == 3  # the report states what was measured
    # each row shows what its model is: T(2) one element per layer and not rot90-invariant, full rows invariant
    for table in (tables[0], tables[2], tables[4]):
        assert table[0][6:8] == ["group elements per layer", "rot90 error"]
        for row in table[2:]:
            used, rot = row[6].split("·"), float(row[7])
            if row[0] == "T(2)":
                assert used == ["1"] * 6 and rot > 0.02, row
            elif row[0].startswith("Augerino"):  # the averaged copies (rotated MNIST: N = 4, MNIST6: 8) of a T(2) CNN
                assert row[6] == f"{4 if table is tables[0] else 8} copies × 1·1·1·1·1·1", row
            else:
                assert len(used) == 6 and min(map(int, used)) > 1, row
                if "full" in row[0]:
                    assert rot < FULL_INVARIANCE_TOL and (len(row) < 9 or row[8] == "–" or float(row[8]) < 1e-4), row
    result = json.loads((out / "results.json").read_text())
    assert len(result["runs"]) == 11 and result["claims"] == []
    assert all(len(r["structure"]["layers"]) == 6 and r["structure"]["images"] == 4 for r in result["runs"])
    for run in result["runs"]:
        for name in ("summary.json", "metrics.csv", "run.json", "last.pt"):
            assert (Path(run["dir"]) / name).is_file(), (run["name"], name)
    width, height = png_size(out / "reproduce.png")
    assert width > 800 and height > 500
    assert [row["range"] for row in result["analysis"]["rows"]] == [90] and png_size(out / "analysis.png")[0] > 600
    # a second invocation (the console script) with --resume trains nothing and writes the same table
    before = {r["name"]: r["summary"]["test_acc"] for r in result["runs"]}
    assert pgcnn_main(["reproduce", *argv, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("(read back)") == 11 and printed.count("r = ±90°: read back") == 1
    after = json.loads((out / "results.json").read_text())
    assert {r["name"]: r["summary"]["test_acc"] for r in after["runs"]} == before
    assert f"Command: `pgcnn reproduce {' '.join(argv)} --resume`" in (out / "results.md").read_text()
