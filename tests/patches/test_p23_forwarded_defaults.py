import libcst as cst

from pytest_flmigrate.patches import p23_forwarded_defaults as p23
from tests.patches.conftest import MODEL_MODULE, patch_context, run_patch

SOURCE = """
class ScaledModel(Model):
    def forward(self, positions, hidden_states, t_cond=None, **kwargs):
        return super().forward(
            positions,
            hidden_states,
            t_cond=t_cond,
            **kwargs,
        )

    def other(self, t_cond=None):
        return super().forward(t_cond=t_cond)


def forward(t_cond=None):
    return super().forward(t_cond=t_cond)
"""
DROPS = {MODEL_MODULE: frozenset({("ScaledModel", "forward", "t_cond")})}


def rewrite(source: str, drops=DROPS) -> tuple[str, int]:
    context = patch_context(forwarded_defaults=drops)
    transformer = p23.Transformer(context)
    return cst.parse_module(source).visit(transformer).code, transformer.count


def test_the_listed_keyword_is_dropped_from_the_overrides_super_call_only():
    after, count = rewrite(SOURCE)
    assert count == 1
    assert (
        "        return super().forward(\n            positions,\n            hidden_states,\n            **kwargs,\n"
        in after
    )
    # another method's super() call, and a function outside the class, are left alone
    assert after.count("t_cond=t_cond") == 2


def test_a_value_other_than_the_forwarded_parameter_is_left_alone():
    source = SOURCE.replace("t_cond=t_cond,\n", "t_cond=positions,\n")
    assert rewrite(source) == (source, 0)


def test_nothing_listed_for_the_module_is_not_relevant():
    assert not p23.relevant(SOURCE, patch_context())
    assert p23.relevant(SOURCE, patch_context(forwarded_defaults=DROPS))
    assert run_patch(p23, SOURCE) == (SOURCE, 0)
