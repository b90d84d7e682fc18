import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_reports_exact_invariance_only_for_full_models(capsys):
    rows = load(ROOT / "examples" / "demo.py").main(["--digits", "4"])
    assert "relative invariance error" in capsys.readouterr().out
    for row in rows:
        exact = {k: v for k, v in row["errors"].items() if not k.startswith("rotation(")}
        if row["setting"].startswith("full"):
            assert max(exact.values()) <= 1e-5, row
        else:
            assert min(exact.values()) > 1e-3, row


TINY = ["--hidden", "2", "-N", "2", "--kernel-size", "3", "--batch-size", "8", "--max-batches", "2", "--no-progress"]
FAKE_CIFAR = ["--no-verify-data"]  # the tiny CIFAR files of tests/data/formats.py do not have the official md5s


def test_cifar10_end_to_end_and_resume(tmp_path, capsys):
    from tests.data.formats import write_cifar10

    write_cifar10(tmp_path / "data", per_batch=8, test=6)
    cifar10 = load(ROOT / "examples" / "cifar10.py")
    args = ["--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "run"), *TINY, *FAKE_CIFAR]
    summary = cifar10.main([*args, "--epochs", "1"])
    for name in ("last.pt", "best.pt", "metrics.csv", "summary.json", "curves.png", "learned_equivariance.png"):
        assert (tmp_path / "run" / name).is_file(), name
    assert summary["epochs_run"] == 1 and summary["model"]["preset"] == "cifar10-se2-partial"
    resumed = cifar10.main([*args, "--epochs", "2", "--resume"])
    assert "continuing at epoch 2" in capsys.readouterr().out
    assert resumed["epochs_run"] == 2
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 3  # header + 2 epochs


def test_cifar10_flags_pick_the_model(tmp_path):
    from tests.data.formats import write_cifar10

    write_cifar10(tmp_path / "data", per_batch=4, test=4)
    summary = load(ROOT / "examples" / "cifar10.py").main(
        ["--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "run"), "--group", "e2", "--no-partial",
         "--epochs", "1", *TINY, *FAKE_CIFAR])
    assert summary["model"]["preset"] == "cifar10-e2-full"
    assert all(row["mirror_probability"] == 1.0 for row in summary["learned_equivariance"])


def test_mnist6_mirror_compares_partial_and_full(tmp_path, capsys):
    results = load(ROOT / "examples" / "mnist6.py").main(
        ["--variant", "mirror", "--out-dir", str(tmp_path), "--epochs", "1", *TINY])
    out = capsys.readouterr().out
    assert set(results) == {"partial", "full"} and "mirror p" in out and "test acc" in out
    assert (tmp_path / "learned_equivariance.png").is_file() and (tmp_path / "results.json").is_file()
    # exactly flip-invariant: a 6 and its mirror get the same logits (on the whole test split: --max-batches
    # limits the run's own evaluation to a subset)
    from pgcnn_triton.training import evaluate_checkpoint

    assert evaluate_checkpoint(tmp_path / "full", device="cpu")["acc"] == 0.5


def test_rotmnist_bundled(tmp_path):
    summary = load(ROOT / "examples" / "rotmnist.py").main(["--out-dir", str(tmp_path), "--epochs", "1", *TINY])
    assert summary["data"]["name"] == "bundled-rotmnist" and summary["model"]["preset"] == "rotmnist-se2-partial"
    assert summary["config"]["monotonic_decay"] == 1e-3
