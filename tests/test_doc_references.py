"""Every reference to the documentation resolves: a ``docs/<page>.md#<heading>`` cited in code, help texts,
tests or scripts names a page that exists and a heading on it, and the relative links of README.md,
BENCHMARKS.md, benchmarks/README.md and docs/ name files and headings that exist. Citations of documents
that are not in the repository (a bare ``method.md``, ``kernels.md``, or ``§`` section numbers) fail.
"""

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "site", "runs", "build", "dist", "__pycache__", ".hypothesis", "results", "data"}
SUFFIXES = {".py", ".sh", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ""}
LINKED = ("README.md", "BENCHMARKS.md", "benchmarks/README.md")

DOC_REF = re.compile(r"docs/([\w./-]+?\.md)(?:#([\w-]+))?")
STALE = re.compile(r"(?<![\w/.-])(?:method|kernels|environment|architecture)\.md\b|§\s?\d")
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (the docs site) gives a heading; GitHub's agrees on plain headings."""
    text = re.sub(r"[`*_]", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def source_files(root: Path):
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.is_file() and path.suffix in SUFFIXES and rel.parts[0] != "docs":
            yield path


def resolve(target: Path, anchor: str | None) -> str | None:
    """Why a reference to ``target#anchor`` does not resolve, or None."""
    if not target.is_file():
        return f"no file {target.name}"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading #{anchor} in {target.name}"
    return None


def broken_references(root: Path) -> list[str]:
    """``file:line: reference: why`` for every reference under ``root`` that does not resolve."""
    problems = []
    for path in source_files(root):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(root)
        if path.name == "test_doc_references.py" or str(rel) in LINKED + ("mkdocs.yml",):
            continue   # this file's examples; links (checked below); mkdocs.yml (checked by mkdocs build --strict)
        for number, line in enumerate(text.splitlines(), 1):
            for m in DOC_REF.finditer(line):
                why = resolve(root / "docs" / m.group(1), m.group(2))
                if why:
                    problems.append(f"{rel}:{number}: {m.group(0)}: {why}")
            for m in STALE.finditer(line):
                problems.append(f"{rel}:{number}: {m.group(0)!r}: cite a docs/<page>.md#<heading> instead")
    linked = [root / name for name in LINKED] + sorted((root / "docs").rglob("*.md"))
    for path in linked:
        if not path.is_file():
            continue
        text = FENCE.sub("", path.read_text())
        for m in LINK.finditer(text):
            href = m.group(1)
            if re.match(r"[a-z]+:", href):
                continue
            file, _, anchor = href.partition("#")
            target = (path.parent / file).resolve() if file else path
            why = resolve(target, anchor or None)
            if why:
                problems.append(f"{path.relative_to(root)}: link {href}: {why}")
    return problems


def test_every_documentation_reference_resolves():
    problems = broken_references(ROOT)
    assert not problems, "documentation references that do not resolve:\n" + "\n".join(problems)


def test_the_code_cites_the_docs():
    """The references are there to check: the code cites pages and headings of docs/."""
    cited = {m.group(0) for path in source_files(ROOT) if path.suffix == ".py"
             for m in DOC_REF.finditer(path.read_text())}
    assert len(cited) >= 30 and any("#partial-arc" in c for c in cited)


def test_a_broken_reference_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "method.md").write_text("# Concepts\n\n## Partial arc\n\n```text\n# not a heading\n```\n")
    (tmp_path / "README.md").write_text("[ok](docs/method.md#partial-arc) [bad](docs/method.md#mirror-gate)\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text('"""docs/method.md#partial-arc, docs/method.md#not-a-heading,\n'
                                           'docs/nothing.md, method.md §3.1"""\n')
    problems = broken_references(tmp_path)
    assert any("README.md: link docs/method.md#mirror-gate: no heading #mirror-gate" in p for p in problems)
    assert any("pkg/a.py:1: docs/method.md#not-a-heading" in p for p in problems)
    assert any("pkg/a.py:2: docs/nothing.md: no file" in p for p in problems)
    assert any("'method.md'" in p for p in problems) and any("'§3'" in p for p in problems)
    assert not any("#partial-arc:" in p for p in problems) and len(problems) == 5
