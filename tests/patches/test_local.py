"""The plugin's own patches (patches/local.py): loading, the interface, and applying after the catalog."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.patches import CATALOG, select_patches
from pytest_flmigrate.patches.base import CATALOG_SOURCE, apply_patches
from pytest_flmigrate.patches.local import load_local_patches
from tests.fixtures.synthetic import LOCAL_PATCH
from tests.patches.conftest import PIN, patch_context

DOC = '"""{id}: a summary.\n\nWhat: x.\n\nWhy: y.\n\nWhen: z.\n"""\n'
BODY = dedent(
    """\
    from pytest_flmigrate.patches.base import PatchTransformer

    ID = "{id}"
    NAME = "{name}"
    PINNED = ">=0"


    class Transformer(PatchTransformer):
        pass
    """
)


def module_text(patch_id: str = "L2", name: str = "other", doc: str | None = None, body: str | None = None) -> str:
    return (DOC.format(id=patch_id) if doc is None else doc) + (body or BODY).format(id=patch_id, name=name)


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "plugin" / "flmigrate_patches"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def load(folder: Path):
    return load_local_patches(folder, folder.parent, CATALOG)


def test_patches_load_in_file_name_order_with_their_source(tmp_path):
    folder = folder_with(
        tmp_path, {"l2_other.py": module_text(), "l1_fancy_norm.py": dedent(LOCAL_PATCH), "_helpers.py": "X = 1\n"}
    )
    patches = load(folder)
    assert [(p.id, p.name, p.source) for p in patches] == [
        ("L1", "fancy-norm", "flmigrate_patches/l1_fancy_norm.py"),
        ("L2", "other", "flmigrate_patches/l2_other.py"),
    ]
    assert patches[0].summary == "L1: upstream's FancyNorm -> the pin's RMSNorm."
    assert patches[0].apis and patches[0].refusal is not None and patches[0].rewritten_imports
    assert {p.source for p in CATALOG} == {CATALOG_SOURCE}


def test_local_patches_come_after_the_catalog_and_are_selected_by_id(tmp_path):
    local = load(folder_with(tmp_path, {"l1_fancy_norm.py": dedent(LOCAL_PATCH)}))
    assert select_patches(None, PIN, local=local) == (*CATALOG, *local)
    assert [p.id for p in select_patches("P1,l1", PIN, local=local)] == ["P1", "L1"]
    with pytest.raises(FlmigrateError, match=r"unknown patch id\(s\) L2; known ids: P1, .*, P\d+, L1$"):
        select_patches("P1,L2", PIN, local=local)


def test_a_helper_module_is_imported_relatively(tmp_path):
    body = BODY.replace("ID = ", "from ._names import NAME_OF\n\nID = ").replace('NAME = "{name}"', "NAME = NAME_OF")
    folder = folder_with(tmp_path, {"_names.py": 'NAME_OF = "from-helper"\n', "l2_x.py": module_text(body=body)})
    assert load(folder)[0].name == "from-helper"


SOURCE = """\
from vllm.model_executor.layers.fancy_norm import FancyNorm

norm = FancyNorm(64, eps=1e-5)
"""


def test_a_local_translation_rewrites_and_refuses_like_the_catalogs(tmp_path):
    (patch,) = load(folder_with(tmp_path, {"l1_fancy_norm.py": dedent(LOCAL_PATCH)}))
    context = patch_context()
    text, counts = apply_patches(SOURCE, (*CATALOG, patch), context)
    assert text.splitlines()[0] == "from vllm.model_executor.layers.layernorm import RMSNorm as FancyNorm"
    assert counts == {"L1": 1}
    refused = SOURCE.replace("eps=1e-5", "fused=True")
    assert apply_patches(refused, (patch,), context) == (refused, {})
    assert patch.rewritten_imports is not None and patch.refusal is not None
    assert str(patch.refusal(refused, "vllm.model_executor.models")) == (
        "line 3: FancyNorm(64, fused=True): fused= has no pinned spelling"
    )
    assert patch.rewritten_imports(refused, "vllm.model_executor.models") == set()
    assert patch.rewritten_imports(SOURCE, "vllm.model_executor.models") == {
        ("vllm.model_executor.layers.fancy_norm", "FancyNorm")
    }


def test_a_local_patch_that_raises_fails_in_one_line_naming_it_and_the_file(tmp_path):
    body = BODY.replace("    pass\n", "    def visit_Module(self, node):\n        raise KeyError('boom')\n")
    (patch,) = load(folder_with(tmp_path, {"l2_broken.py": module_text(body=body)}))
    with pytest.raises(FlmigrateError) as caught:
        apply_patches(SOURCE, (patch,), patch_context())
    assert caught.value.message == (
        "flmigrate_patches/l2_broken.py: the plugin's patch L2 fails on vllm.model_executor.models.qwen3_5: "
        "KeyError: 'boom'; fix the patch or remove it from the folder"
    )


INTERFACE = "(a patch module defines ID, NAME, PINNED, Transformer and a What/Why/When docstring, as the catalog's do)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("import not_a_module_anywhere\n", "the patch module fails to import: ModuleNotFoundError: No module named"),
        (
            module_text() + "raise RuntimeError('half-made\\nsecond line')\n",
            "fails to import: RuntimeError: half-made;",
        ),
        ("def f(:\n", "the patch module fails to import: SyntaxError:"),
        (module_text().replace("class Transformer", "class Other"), f"no Transformer {INTERFACE}"),
        (module_text().replace('PINNED = ">=0"\n', ""), "no PINNED"),
        (module_text(patch_id="P25"), "ID 'P25' is not a plugin patch id: capital letters and a number, not P<n>"),
        (module_text(patch_id="l2"), "ID 'l2' is not a plugin patch id"),
        (module_text(name="Not_Kebab"), "NAME 'Not_Kebab' is not lower-case words joined by '-'"),
        (module_text().replace('">=0"', '"0.13"'), "PINNED '0.13' is not a version range"),
        (module_text().replace("(PatchTransformer)", ""), "Transformer is not a subclass of"),
        (module_text() + "relevant = True\n", "relevant is not a function"),
        (module_text() + 'SHIM = "stacked_weights"\n', "SHIM names a shim of the catalog"),
        (module_text(doc=""), "the docstring does not start with 'L2: <summary>'"),
        (module_text(doc='"""L2: x.\nWhat: y."""\n'), "summary line is not followed by a blank line"),
        (module_text(doc='"""L2: x.\n\nWhy: y.\n\nWhat: x.\n\nWhen: z."""\n'), "lacks its What:, Why: and When:"),
    ],
)
def test_a_module_that_fails_to_import_or_breaks_the_interface_is_one_line_naming_it(tmp_path, text, message):
    folder = folder_with(tmp_path, {"l2_bad.py": text, "l1_fancy_norm.py": dedent(LOCAL_PATCH)})
    with pytest.raises(FlmigrateError) as caught:
        load(folder)
    assert "\n" not in caught.value.message and not caught.value.detail
    assert caught.value.message.startswith("flmigrate_patches/l2_bad.py: ")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"l1_a.py": dedent(LOCAL_PATCH), "l2_b.py": module_text(patch_id="L1")},
            "flmigrate_patches/l2_b.py: ID 'L1' is taken by flmigrate_patches/l1_a.py; give it another id",
        ),
        (
            {"l1_a.py": dedent(LOCAL_PATCH), "l2_b.py": module_text(name="fancy-norm")},
            "flmigrate_patches/l2_b.py: NAME 'fancy-norm' is taken by flmigrate_patches/l1_a.py (L1); give it "
            "another name",
        ),
        (
            {"l2_b.py": module_text(name="relocate-imports")},
            "flmigrate_patches/l2_b.py: NAME 'relocate-imports' is taken by the catalog's P15; give it another name",
        ),
        ({"_only_a_helper.py": "X = 1\n"}, "--local-patches flmigrate_patches: the folder holds no patch module"),
    ],
)
def test_ids_and_names_are_unique_and_the_folder_holds_a_patch(tmp_path, files, message):
    with pytest.raises(FlmigrateError) as caught:
        load(folder_with(tmp_path, files))
    assert caught.value.message.startswith(message)


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(FlmigrateError, match=r"^--local-patches nowhere: no such folder in the plugin checkout;"):
        load_local_patches(tmp_path / "nowhere", tmp_path, CATALOG)


def test_an_edited_module_is_read_again(tmp_path):
    folder = folder_with(tmp_path, {"l2_x.py": module_text()})
    assert load(folder)[0].name == "other"
    (folder / "l2_x.py").write_text(module_text(name="renamed"))
    assert load(folder)[0].name == "renamed"
