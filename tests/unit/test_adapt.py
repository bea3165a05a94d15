"""Three-way merges of hand edits and the adaptation patches that record them."""

from __future__ import annotations

from pytest_flmigrate.steps import hand_edits

BASE = "".join(f"line {n}\n" for n in range(1, 21))


def edit(text: str, number: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = new + "\n"
    return "".join(lines)


def test_untouched_file_takes_the_new_upstream():
    theirs = edit(BASE, 15, "upstream moved")
    assert hand_edits.merge(BASE, BASE, theirs) == hand_edits.Merge(theirs, ())


def test_hand_edit_is_kept_when_upstream_did_not_move():
    ours = edit(BASE, 3, "by hand")
    assert hand_edits.merge(ours, BASE, BASE).text == ours


def test_hand_edit_is_replayed_onto_a_distant_upstream_change():
    ours, theirs = edit(BASE, 3, "by hand"), edit(BASE, 17, "upstream moved")
    merged = hand_edits.merge(ours, BASE, theirs)
    assert merged.clean
    assert "by hand\n" in merged.text and "upstream moved\n" in merged.text


def test_overlapping_changes_conflict_with_their_lines_named():
    ours, theirs = edit(BASE, 5, "by hand"), edit(BASE, 5, "upstream moved")
    merged = hand_edits.merge(ours, BASE, theirs)
    assert not merged.clean
    assert merged.conflicts == ("lines 5-9",)
    assert "<<<<<<< hand-edited" in merged.text and ">>>>>>> new upstream" in merged.text


def test_adaptation_patch_names_its_upstream_and_hunks():
    patch = hand_edits.adaptation_patch("vllm_fl/models/x.py", BASE, edit(BASE, 3, "by hand"), "pypi:vllm==1.0@1.0")
    assert patch.startswith(
        "# flmigrate adaptation of vllm_fl/models/x.py\n# made against upstream pypi:vllm==1.0@1.0\n"
    )
    assert hand_edits.hunks(patch) == ["@@ -1,6 +1,6 @@"]
    assert hand_edits.adaptation_path("vllm_fl/models/x.py") == "vllm_fl/models/x.adaptation.patch"
