"""The docs hold together: every relative link resolves, the README stays a front page, the
architecture page matches the package, the code the docs cite exists, and neither the docs nor
the package speak of issue numbers or commits."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "pytest_flmigrate"
README = REPO / "README.md"
ARCHITECTURE = REPO / "docs" / "architecture.md"
TROUBLESHOOTING = REPO / "docs" / "troubleshooting.md"
#: Documents whose links must resolve.
LINKED = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "RESULTS.md", REPO / "CHANGELOG.md"]
#: Documents that describe the tool as it is: no issue numbers, no commit ids, no stale paths.
CURRENT = [README, *sorted((REPO / "docs").glob("*.md"))]
#: History and measurements name commits by design; they still carry no issue numbers.
DATED = [REPO / "bench" / "RESULTS.md", REPO / "CHANGELOG.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
ISSUE = re.compile(r"\bissues?\s+#?\d+|(?<![\w&/])#\d+\b", re.IGNORECASE)
HEX_WORD = re.compile(r"\b[0-9a-f]{7,40}\b")
CODE_ROOTS = {"autofix", "e2e", "envs", "index", "patches", "report", "review", "servers", "steps", "suite", "tiny"}
REPO_ROOTS = {"pytest_flmigrate", "tests", "bench", "scripts", "examples", "docs", ".ci"}
#: A plugin checkout's own folders (the example plugin has them), cited as the plugin's.
EXAMPLE_PLUGIN = REPO / "examples" / "plugin-fl-mini"


def prose(text: str) -> str:
    """``text`` without fenced code blocks (replaced by blank lines, so line numbers hold)."""
    return FENCE.sub(lambda match: "\n" * match.group(0).count("\n"), text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lower-cased, punctuation dropped, spaces as dashes."""
    text = CODE_SPAN.sub(lambda span: span.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (a repeated one gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    for match in HEADING.finditer(prose(path.read_text(encoding="utf-8"))):
        anchor = slug(match.group(2))
        seen[anchor] = seen.get(anchor, -1) + 1
        if seen[anchor]:
            seen[f"{anchor}-{seen[anchor]}"] = 0
    return set(seen)


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every inline link outside code."""
    text = prose(path.read_text(encoding="utf-8"))
    text = CODE_SPAN.sub(lambda span: " " * len(span.group(0)), text)
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in LINK.finditer(text)]


def test_anchors_follow_githubs_rules():
    assert slug("Tiny models (`--tiny`)") == "tiny-models---tiny"
    assert slug("The tool's own overhead") == "the-tools-own-overhead"
    assert slug("Runtime steps (1, 4, 5, 7-10)") == "runtime-steps-1-4-5-7-10"
    assert slug("The pinned env: vLLM 0.13.0") == "the-pinned-env-vllm-0130"
    assert slug("P1: relative imports") == "p1-relative-imports"


def test_every_relative_link_resolves():
    broken = []
    for document in LINKED:
        for line, target in links(document):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            where, _, anchor = target.partition("#")
            linked = (document.parent / where).resolve() if where else document
            place = f"{document.relative_to(REPO)}:{line}: {target}"
            if not linked.exists():
                broken.append(f"{place} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{place} (no such heading in {linked.relative_to(REPO)})")
    assert not broken, "links that do not resolve:\n" + "\n".join(broken)


def test_readme_is_a_front_page():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move reference to docs/ (at most 150)"
    first_block = FENCE.search(text)
    assert first_block, "README.md has no code block"
    first_heading = re.search(r"^## ", text, re.MULTILINE)
    assert first_heading is None or first_block.start() < first_heading.start(), "the commands come first"
    commands = [line.split("#")[0].strip() for line in first_block.group(0).splitlines()[1:-1]]
    assert commands == ["scripts/demo", "scripts/test"], commands
    assert "--junitxml" in text, "README.md shows CI use with --junitxml"


def test_no_issue_numbers_in_docs_or_package():
    found = []
    for path in [*CURRENT, *DATED, *sorted(PACKAGE.rglob("*.py"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in ISSUE.finditer(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {match.group(0)}")
    assert not found, "history belongs in CHANGELOG.md, without issue numbers:\n" + "\n".join(found)


def commits_among(words: set[str]) -> set[str]:
    """The words that name a commit of this repository (none when git cannot tell)."""
    if not words:
        return set()
    ordered = sorted(words)
    answer = subprocess.run(
        ["git", "cat-file", "--batch-check"],
        cwd=REPO,
        input="".join(f"{word}^{{commit}}\n" for word in ordered),
        capture_output=True,
        text=True,
    )
    if answer.returncode != 0:
        return set()
    return {word for word, line in zip(ordered, answer.stdout.splitlines()) if not line.endswith("missing")}


def test_no_commit_ids_in_readme_docs_or_package():
    places: dict[str, list[str]] = {}
    for path in [*CURRENT, *sorted(PACKAGE.rglob("*.py"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for word in HEX_WORD.findall(line):
                places.setdefault(word, []).append(f"{path.relative_to(REPO)}:{number}: {word}")
    looks_like_one = {word for word in places if re.search(r"\d", word) and re.search(r"[a-f]", word)}
    found = sorted(place for word in looks_like_one | commits_among(set(places)) for place in places[word])
    assert not found, "commit ids belong in bench/RESULTS.md or CHANGELOG.md:\n" + "\n".join(found)


def package_table(text: str) -> list[str]:
    """The first column of the tables under architecture.md's "## The package"."""
    section = re.search(r"^## The package$(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "docs/architecture.md has no '## The package' section"
    return re.findall(r"^\| `([^`]+)` \|", section.group(1), re.MULTILINE)


def test_architecture_names_every_module_and_nothing_else():
    named = package_table(ARCHITECTURE.read_text(encoding="utf-8"))
    modules = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}
    packages = {
        f"{path.relative_to(PACKAGE)}/"
        for path in PACKAGE.rglob("*")
        if path.is_dir() and path.name != "__pycache__" and any(path.glob("*.py"))
    }
    missing = sorted((modules | packages) - set(named))
    absent = sorted(name for name in named if not (PACKAGE / name).exists())
    twice = sorted({name for name in named if named.count(name) > 1})
    assert not missing, "docs/architecture.md does not name: " + ", ".join(missing)
    assert not absent, "docs/architecture.md names what does not exist: " + ", ".join(absent)
    assert not twice, "docs/architecture.md names twice: " + ", ".join(twice)


def cited_path_exists(path: str) -> bool:
    """Whether a path the docs cite as the tool's (or a plugin checkout's) exists."""
    first = path.split("/")[0]
    if first in CODE_ROOTS:
        return (PACKAGE / path).exists()
    return (REPO / path).exists() or (first == "tests" and (EXAMPLE_PLUGIN / path).exists())


def test_code_the_docs_cite_exists():
    stale = []
    for document in CURRENT:
        for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
            for span in CODE_SPAN.finditer(line):
                cited, _, test = span.group(2).partition("::")
                if not re.fullmatch(r"\.?[\w-]+(/[\w.-]+)*(\.py|/)", cited):
                    continue
                if cited.split("/")[0] not in CODE_ROOTS | REPO_ROOTS:
                    continue
                target = cited if cited_path_exists(cited) else None
                if target is None:
                    stale.append(f"{document.relative_to(REPO)}:{number}: {span.group(2)}")
                elif test and not re.search(rf"^\s*def {re.escape(test)}\b", (REPO / cited).read_text(), re.MULTILINE):
                    stale.append(f"{document.relative_to(REPO)}:{number}: {span.group(2)} (no such test)")
    assert not stale, "the docs cite code that does not exist:\n" + "\n".join(stale)


def test_tests_named_in_troubleshooting_exist():
    defined = {
        match.group(1)
        for path in (REPO / "tests").rglob("test_*.py")
        for match in re.finditer(r"^\s*def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    named = set(re.findall(r"`(test_\w+)`", TROUBLESHOOTING.read_text(encoding="utf-8")))
    assert named, "docs/troubleshooting.md names the test of each case"
    assert not named - defined, "named but not defined: " + ", ".join(sorted(named - defined))


def test_every_option_is_documented():
    from pytest_flmigrate.settings import OPTIONS

    text = (REPO / "docs" / "options.md").read_text(encoding="utf-8")
    missing = [option.flag for option in OPTIONS if f"`{option.flag}" not in text]
    assert not missing, "docs/options.md lacks: " + ", ".join(missing)
