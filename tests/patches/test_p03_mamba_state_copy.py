from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p03_mamba_state_copy as p3


@pytest.mark.parametrize(
    ("before", "after", "count"),
    [
        pytest.param(
            "from vllm.model_executor.layers.mamba.mamba_utils import MambaStateCopyFunc\nx = 1\n",
            "x = 1\n",
            1,
            id="import-empties",
        ),
        pytest.param(
            """\
            from vllm.model_executor.layers.mamba.mamba_utils import (
                MambaStateCopyFunc,
                MambaStateCopyFuncCalculator,
                MambaStateDtypeCalculator,  # still in 0.13.0
            )
            """,
            """\
            from vllm.model_executor.layers.mamba.mamba_utils import (
                MambaStateDtypeCalculator,  # still in 0.13.0
            )
            """,
            1,
            id="parenthesized-keeps-the-rest",
        ),
        pytest.param(
            "from m import MambaStateDtypeCalculator, MambaStateCopyFuncCalculator\n",
            "from m import MambaStateDtypeCalculator\n",
            1,
            id="last-name-dropped",
        ),
        pytest.param(
            """\
            class Model(nn.Module):
                @classmethod
                def get_mamba_state_copy_func(cls) -> tuple:
                    return Calc.gated_delta_net_state_copy_func()

                def forward(self, x):
                    return x
            """,
            """\
            class Model(nn.Module):
                def forward(self, x):
                    return x
            """,
            1,
            id="method-with-decorator",
        ),
        pytest.param(
            """\
            class Model(Base):
                @classmethod
                def get_mamba_state_copy_func(cls):
                    return Base.get_mamba_state_copy_func()
            """,
            """\
            class Model(Base):
                pass
            """,
            1,
            id="class-left-empty-gets-pass",
        ),
        pytest.param(
            """\
            if TYPE_CHECKING:
                from vllm.model_executor.layers.mamba.mamba_utils import MambaStateCopyFuncsByType
            """,
            """\
            if TYPE_CHECKING:
                pass
            """,
            1,
            id="block-left-empty-gets-pass",
        ),
        pytest.param(
            "import os; from m import MambaStateCopyFunc; import sys\n",
            "import os; import sys\n",
            1,
            id="one-of-several-statements-on-a-line",
        ),
        pytest.param(
            "import os; from m import MambaStateCopyFunc\n",
            "import os\n",
            1,
            id="last-statement-on-a-line",
        ),
    ],
)
def test_rewrites(rewrite, before, after, count):
    assert rewrite(p3, before) == (dedent(after), count)


@pytest.mark.parametrize(
    "source",
    [
        "from m import MambaStateDtypeCalculator\n",
        # a module-level function of that name is not the hook
        "def get_mamba_state_copy_func():\n    return None\n",
        # still used outside the removed method: the import stays, so the failure stays loud
        "from m import MambaStateCopyFunc\n\nCOPY: MambaStateCopyFunc | None = None\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p3, source) == (source, 0)


def test_table_is_data():
    assert {"MambaStateCopyFunc", "MambaStateCopyFuncCalculator"} <= p3.MISSING_NAMES
    assert p3.MISSING_METHODS == {"get_mamba_state_copy_func"}


def test_upstream_hybrid_model_shape(rewrite):
    # a gated-delta-net hybrid model's imports and class hooks (qwen3_5.py-like), written here
    before = """\
        from vllm.model_executor.layers.mamba.mamba_utils import (
            MambaStateCopyFunc,
            MambaStateCopyFuncCalculator,
            MambaStateDtypeCalculator,
            MambaStateShapeCalculator,
        )


        class HybridForCausalLM(nn.Module, HasInnerState, IsHybrid):
            @classmethod
            def get_mamba_state_dtype_from_config(cls, vllm_config):
                return MambaStateDtypeCalculator.gated_delta_net_state_dtype(
                    vllm_config.model_config.dtype,
                    vllm_config.cache_config.mamba_cache_dtype,
                )

            @classmethod
            def get_mamba_state_copy_func(
                cls,
            ) -> tuple[MambaStateCopyFunc, MambaStateCopyFunc]:
                return MambaStateCopyFuncCalculator.gated_delta_net_state_copy_func()

            def compute_logits(self, hidden_states):
                return self.logits_processor(self.lm_head, hidden_states)
        """
    after = """\
        from vllm.model_executor.layers.mamba.mamba_utils import (
            MambaStateDtypeCalculator,
            MambaStateShapeCalculator,
        )


        class HybridForCausalLM(nn.Module, HasInnerState, IsHybrid):
            @classmethod
            def get_mamba_state_dtype_from_config(cls, vllm_config):
                return MambaStateDtypeCalculator.gated_delta_net_state_dtype(
                    vllm_config.model_config.dtype,
                    vllm_config.cache_config.mamba_cache_dtype,
                )

            def compute_logits(self, hidden_states):
                return self.logits_processor(self.lm_head, hidden_states)
        """
    assert rewrite(p3, before) == (dedent(after), 2)
