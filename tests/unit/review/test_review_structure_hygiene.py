"""merged-projections (P8), custom-op-paths (P11), init-override (P12), hardcoded-paths,
bare-except: positive and negative cases."""

from __future__ import annotations

import textwrap

from tests.unit.review.conftest import symbols_of

MODEL = "vllm_fl/models/newmodel.py"
HEAD = textwrap.dedent(
    """
    import torch.nn as nn
    from vllm.model_executor.layers.linear import ColumnParallelLinear, MergedColumnParallelLinear
    from vllm.model_executor.models.base_gdn import BaseGatedDeltaNet
    """
)


def test_column_parallel_over_parts_of_different_sizes(review_files):
    source = HEAD + textwrap.dedent(
        """
        class GDN(nn.Module):
            def __init__(self, hidden, key_dim, value_dim, heads):
                super().__init__()
                self.in_proj_qkvz = ColumnParallelLinear(hidden, key_dim * 2 + value_dim * 2, bias=False)
                self.in_proj_ba = ColumnParallelLinear(hidden, heads * 2)
                self.in_proj_same = ColumnParallelLinear(hidden, heads + heads)
                self.merged = MergedColumnParallelLinear(hidden, [key_dim, key_dim, value_dim, value_dim])

        class InheritsTheParentInit(BaseGatedDeltaNet):
            pass

        class OverridesInit(BaseGatedDeltaNet):
            def __init__(self, hidden):
                super().__init__(hidden, 1, 1)
        """
    )
    findings = review_files({MODEL: source}, "merged-projections")
    assert symbols_of(findings) == [
        ("merged-projections", "self.in_proj_qkvz"),
        ("merged-projections", "InheritsTheParentInit.__init__"),
    ]
    assert "(key_dim, value_dim)" in findings[0].message
    assert "inherits BaseGatedDeltaNet.__init__" in findings[1].message
    assert "self.in_proj_qkvz" in findings[1].message and "P8" in findings[1].fix


def test_merged_projection_with_merged_linear_passes(review_files):
    source = HEAD + "x = MergedColumnParallelLinear(8, [1, 2])\ny = ColumnParallelLinear(8, 16)\n"
    assert review_files({MODEL: source}, "merged-projections") == []


OPS = {
    "vllm_fl/ops/__init__.py": "",
    "vllm_fl/ops/fla.py": textwrap.dedent(
        """
        from vllm.model_executor.custom_op import CustomOp
        @CustomOp.register("chunk_gated_delta_rule")
        class ChunkGatedDeltaRuleOp(CustomOp):
            pass
        """
    ),
    "vllm_fl/models/fla_ops.py": textwrap.dedent(
        """
        from vllm.model_executor.custom_op import CustomOp
        @CustomOp.register("chunk_gated_delta_rule")
        class ChunkGatedDeltaRuleOp(CustomOp):
            pass
        """
    ),
    "vllm_fl/models/fla_reexport.py": "from vllm_fl.ops.fla import ChunkGatedDeltaRuleOp\n",
    "vllm_fl/models/parent.py": textwrap.dedent(
        """
        import torch.nn as nn
        from vllm_fl.ops.fla import ChunkGatedDeltaRuleOp
        class ParentGDN(nn.Module):
            def __init__(self):
                super().__init__()
                self.op = ChunkGatedDeltaRuleOp()
        """
    ),
}


def child(module: str) -> str:
    return (
        f"from {module} import ChunkGatedDeltaRuleOp\nfrom vllm_fl.models.parent import ParentGDN\n"
        "class ChildGDN(ParentGDN):\n    def __init__(self):\n        super().__init__()\n"
        "        self.op2 = ChunkGatedDeltaRuleOp()\n"
    )


def test_custom_op_through_another_path_than_the_parent(review_files):
    findings = review_files({**OPS, MODEL: child("vllm_fl.models.fla_ops")}, "custom-op-paths")
    findings = [f for f in findings if f.file == MODEL]
    assert symbols_of(findings) == [("custom-op-paths", "ChunkGatedDeltaRuleOp")]
    assert "the parent module vllm_fl.models.parent imports it from vllm_fl.ops.fla" in findings[0].message
    assert findings[0].fix == "manual: import ChunkGatedDeltaRuleOp from vllm_fl.ops.fla"


def test_custom_op_through_the_parent_path_or_a_reexport_passes(review_files):
    for module in ("vllm_fl.ops.fla", "vllm_fl.models.fla_reexport"):
        findings = review_files({**OPS, MODEL: child(module)}, "custom-op-paths")
        assert [f for f in findings if f.file == MODEL] == [], module


def test_init_override_missing_attributes_inherited_methods_use(review_files):
    source = HEAD + textwrap.dedent(
        """
        class SkipsParent(BaseGatedDeltaNet):
            def __init__(self, hidden, key_dim, value_dim):
                nn.Module.__init__(self)
                self.key_dim = key_dim
                self.value_dim = value_dim
                self.in_proj_qkvz = MergedColumnParallelLinear(hidden, [key_dim, key_dim, value_dim, value_dim])
        """
    )
    findings = review_files({MODEL: source}, "init-override")
    assert symbols_of(findings) == [
        ("init-override", "SkipsParent.chunk_gated_delta_rule"),
        ("init-override", "SkipsParent.tp_size"),
    ]
    assert "nn.Module.__init__(self) skips BaseGatedDeltaNet.__init__" in findings[0].message
    assert "BaseGatedDeltaNet._forward_core reads it" in findings[0].message


def test_complete_init_override_and_super_init_pass(review_files):
    source = HEAD + textwrap.dedent(
        """
        class Complete(BaseGatedDeltaNet):
            def __init__(self, hidden):
                nn.Module.__init__(self)
                self.in_proj_qkvz = MergedColumnParallelLinear(hidden, [1, 1, 2, 2])
                self.chunk_gated_delta_rule = None
                self.tp_size = 1

        class CallsSuper(BaseGatedDeltaNet):
            def __init__(self, hidden):
                super().__init__(hidden, 1, 2)
        """
    )
    assert review_files({MODEL: source}, "init-override") == []


def test_hardcoded_paths_and_bare_except(review_files):
    source = textwrap.dedent(
        '''
        """Weights live under /models/ on the test machine (docstrings are fine)."""
        WEIGHTS = "/models/Qwen3.5-0.8B"
        LIB = f"/usr/local/lib/python3.12/dist-packages/vllm"
        def load():
            try:
                return open(WEIGHTS)
            except:
                return None
        def fine():
            try:
                return 1
            except Exception:
                return 0
        '''
    )
    paths = review_files({MODEL: source}, "hardcoded-paths")
    assert [(f.line, f.symbol) for f in paths] == [
        (2, "'/models/Qwen3.5-0.8B'"),
        (3, "'/usr/local/lib/python3.12/dist-packages/vllm'"),
    ]
    excepts = review_files({MODEL: source}, "bare-except")
    assert [(f.line, f.symbol) for f in excepts] == [(7, "except:")]


def test_clean_file_passes_hygiene(review_files):
    source = 'import os\nROOT = os.environ.get("MODEL_ROOT", "")\n'
    assert review_files({MODEL: source}, "hardcoded-paths") == []
    assert review_files({MODEL: source}, "bare-except") == []
