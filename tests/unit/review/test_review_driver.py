"""The review driver: cases per check and file, the finding record, missing or broken files."""

from __future__ import annotations

from pytest_flmigrate.patches import CATALOG
from pytest_flmigrate.review import ORDER, Finding, MigratedFile, ReviewContext, cases, review
from tests.fixtures.trees import write
from tests.unit.review.conftest import PLUGIN_INIT


def context(tmp_path, pinned_indexes, files):
    plugin = write(tmp_path / "plugin", {"vllm_fl/__init__.py": PLUGIN_INIT, **files})
    migrated = [
        MigratedFile.at(path, "config" if "/configs/" in path else "model")
        for path in ("vllm_fl/models/m.py", "vllm_fl/configs/m.py")
    ]
    return ReviewContext(plugin, pinned_indexes, migrated, catalog={p.name: p.id for p in CATALOG})


def test_cases_pair_each_check_with_the_files_it_applies_to(tmp_path, pinned_indexes):
    found = cases(context(tmp_path, pinned_indexes, {}))
    ids = [case.id for case in found]
    assert "unresolved-imports-vllm_fl/models/m.py" in ids
    assert "unresolved-imports-vllm_fl/configs/m.py" in ids
    assert "registration-vllm_fl/__init__.py" in ids
    assert "merged-projections-vllm_fl/configs/m.py" not in ids  # model files only
    assert [c.check for c in found][0] == ORDER[0]


def test_finding_record_and_line():
    finding = Finding("call-signatures", "vllm_fl/models/m.py", 12, "WeightsMapper", "unexpected keyword", "P16")
    assert finding.format() == "vllm_fl/models/m.py:12: [call-signatures] WeightsMapper: unexpected keyword (fix: P16)"
    assert finding.to_dict() == {
        "check": "call-signatures",
        "file": "vllm_fl/models/m.py",
        "line": 12,
        "symbol": "WeightsMapper",
        "message": "unexpected keyword",
        "fix": "P16",
    }


def test_missing_and_unparsable_files_are_findings(tmp_path, pinned_indexes):
    ctx = context(tmp_path, pinned_indexes, {"vllm_fl/configs/m.py": "def broken(:\n"})
    findings = review(ctx, ["bare-except"])
    assert [(f.file, f.message) for f in findings] == [
        ("vllm_fl/models/m.py", "the migrated file is missing"),
        ("vllm_fl/configs/m.py", "the file does not parse"),
    ]


def test_a_file_not_in_utf8_is_a_finding(tmp_path, pinned_indexes):
    ctx = context(tmp_path, pinned_indexes, {"vllm_fl/models/m.py": "x = 1\n", "vllm_fl/configs/m.py": ""})
    (ctx.plugin_dir / "vllm_fl/configs/m.py").write_bytes("# café\nx = 1\n".encode("latin-1"))
    findings = review(ctx, ["bare-except"])
    assert [(f.file, f.message) for f in findings] == [("vllm_fl/configs/m.py", "the file does not parse")]


def test_a_file_planned_twice_is_reviewed_once(tmp_path, pinned_indexes):
    ctx = context(tmp_path, pinned_indexes, {"vllm_fl/models/m.py": "x = 1\n", "vllm_fl/configs/m.py": "y = 1\n"})
    ctx.files.append(MigratedFile.at("vllm_fl/configs/m.py", "config"))
    ids = [case.id for case in cases(ctx)]
    assert len(ids) == len(set(ids))
