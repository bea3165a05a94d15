"""Hand edits of migrated files: adaptation patches, and replaying them on a new upstream.

For every file it writes, the tool keeps the pristine generated text (the *base*). When the
file on disk differs from its base, the difference is the file's adaptation: a unified diff
stored next to the file (``<stem>.adaptation.patch``, committed with the plugin) naming the
upstream it was made against. On a rerun the new generated text is merged three ways
(base = previous generated, ours = the file on disk, theirs = new generated) with
``git merge-file``.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

_HUNK = re.compile(r"^@@ .* @@", re.MULTILINE)
_CONFLICT = re.compile(r"^<<<<<<< .*?^>>>>>>> [^\n]*\n?", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Merge:
    text: str
    conflicts: tuple[str, ...]  # one line per conflicting hunk: "lines N-M"

    @property
    def clean(self) -> bool:
        return not self.conflicts


def adaptation_path(target: str) -> str:
    """``vllm_fl/models/qwen3_5.py`` -> ``vllm_fl/models/qwen3_5.adaptation.patch``."""
    return str(Path(target).with_suffix(".adaptation.patch"))


def adaptation_patch(target: str, generated: str, edited: str, made_against: str) -> str:
    """The unified diff generated -> edited with a header naming the upstream it applies to."""
    body = "".join(
        difflib.unified_diff(
            generated.splitlines(keepends=True),
            edited.splitlines(keepends=True),
            fromfile=f"generated/{target}",
            tofile=f"edited/{target}",
        )
    )
    header = f"# flmigrate adaptation of {target}\n# made against upstream {made_against}\n"
    return header + body


def hunks(patch: str) -> list[str]:
    """The hunk headers of a unified diff (what the report lists as replayed)."""
    return _HUNK.findall(patch)


def merge(ours: str, base: str, theirs: str) -> Merge:
    """Three-way merge with ``git merge-file``; conflicts are located by line."""
    if ours == base:
        return Merge(theirs, ())
    if theirs == base or theirs == ours:
        return Merge(ours, ())
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for name, text in (("hand-edited", ours), ("previous-generated", base), ("new-generated", theirs)):
            path = Path(scratch) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        status, merged, _ = git.Git(scratch).execute(
            ["git", "merge-file", "-p", "-L", "hand-edited", "-L", "previous generated", "-L", "new upstream", *paths],
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=False,
        )
    if status == 0:
        return Merge(merged, ())
    conflicts = []
    for match in _CONFLICT.finditer(merged):
        first = merged.count("\n", 0, match.start()) + 1
        last = first + match.group(0).count("\n") - 1
        conflicts.append(f"lines {first}-{last}")
    return Merge(merged, tuple(conflicts) or ("whole file",))
