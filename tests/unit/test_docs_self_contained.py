"""The repository's docs stand on their own: what the code, the scripts and the README cite is in
the clone (docs/), never a file of the workplace the project started from."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = re.compile(
    r"([\w./-]*?)\b(DESIGN|SKILL|operational-rules|procedure|api-gap|cpu-vllm|compatibility-patches)\.md\b"
)


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in listed.splitlines() if (REPO / name).is_file()]


def test_every_cited_document_is_in_the_repository():
    missing = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for match in DOCUMENT.finditer(line):
                cited = f"{match.group(2)}.md"
                folder = match.group(1).rstrip("/")
                here = path.parent / folder / cited if folder else None
                if not ((here and here.is_file()) or (REPO / "docs" / cited).is_file()):
                    missing.append(f"{path.relative_to(REPO)}:{number}: {match.group(0)}")
    assert not missing, "documents cited but not in the clone:\n" + "\n".join(missing)
