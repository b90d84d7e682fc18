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
