import pytest

from pytest_flmigrate.patches import p21_stacked_weights as p21
from tests.patches.conftest import patch_context

UTILS = "from vllm.model_executor.models.utils import AutoWeightsLoader, WeightsMapper, maybe_prefix\n"
STACKED = 'mapper = WeightsMapper(orig_to_new_stacked={".q_proj": (".qkv_proj", "q")})\n'


def test_stacked_mapper_imports_the_port(rewrite):
    assert rewrite(p21, UTILS + STACKED) == (
        "from vllm.model_executor.models.utils import maybe_prefix\n"
        "from vllm_fl.compat.stacked_weights import AutoWeightsLoader, WeightsMapper\n" + STACKED,
        1,
    )


def test_relative_import_as_upstream_writes_it(rewrite):
    source = "from .utils import AutoWeightsLoader, WeightsMapper\n" + STACKED
    text, count = rewrite(p21, source, module_name="vllm.model_executor.models.olmoe")
    assert text == "from vllm_fl.compat.stacked_weights import AutoWeightsLoader, WeightsMapper\n" + STACKED
    assert count == 1


@pytest.mark.parametrize(
    "source",
    [
        # nothing stacked: the pin's classes load it as they are
        UTILS + 'mapper = WeightsMapper(orig_to_new_prefix={"lm_head.": None})\n',
        "from elsewhere import WeightsMapper\n" + STACKED,
        STACKED,
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p21, source) == (source, 0)


def test_other_relative_imports_untouched(rewrite):
    source = "from .interfaces import SupportsPP\n" + UTILS + STACKED
    assert rewrite(p21, source)[0].startswith("from .interfaces import SupportsPP\n")


def test_rewritten_imports_name_what_step_4_leaves_to_the_port():
    package = "vllm.model_executor.models"
    assert p21.rewritten_imports(UTILS + STACKED, package) == {
        (p21.UTILS, "WeightsMapper"),
        (p21.UTILS, "AutoWeightsLoader"),
    }
    assert p21.rewritten_imports(UTILS + "mapper = WeightsMapper()\n", package) == set()


def test_the_port_it_points_at_ships_with_the_tool():
    from pytest_flmigrate.autofix.planner import SHIMS

    text = (SHIMS / f"{p21.SHIM}.py").read_text(encoding="utf-8")
    assert "class WeightsMapper(pinned.WeightsMapper)" in text and "class AutoWeightsLoader(" in text


def test_relevance():
    assert p21.relevant(STACKED, patch_context())
    assert not p21.relevant(UTILS, patch_context())
