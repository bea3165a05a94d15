from textwrap import dedent

import pytest

from pytest_flmigrate.patches import p09_gated_delta_net_state_dtype as p9


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "Calc.gated_delta_net_state_dtype(model_dtype, cache_dtype, ssm_dtype)\n",
            "Calc.gated_delta_net_state_dtype(model_dtype, cache_dtype)\n",
            id="third-positional",
        ),
        pytest.param(
            "Calc.gated_delta_net_state_dtype(model_dtype, cache_dtype, mamba_ssm_cache_dtype=s)\n",
            "Calc.gated_delta_net_state_dtype(model_dtype, cache_dtype)\n",
            id="keyword-last",
        ),
        pytest.param(
            "Calc.gated_delta_net_state_dtype(mamba_ssm_cache_dtype=s, model_dtype=m, mamba_cache_dtype=c)\n",
            "Calc.gated_delta_net_state_dtype(model_dtype=m, mamba_cache_dtype=c)\n",
            id="keyword-first",
        ),
        pytest.param(
            """\
            dtypes = MambaStateDtypeCalculator.gated_delta_net_state_dtype(
                model_dtype=dtype,  # model
                mamba_cache_dtype=cache.mamba_cache_dtype,  # conv
                mamba_ssm_cache_dtype=cache.mamba_ssm_cache_dtype,  # ssm
            )
            """,
            """\
            dtypes = MambaStateDtypeCalculator.gated_delta_net_state_dtype(
                model_dtype=dtype,  # model
                mamba_cache_dtype=cache.mamba_cache_dtype,  # conv
            )
            """,
            id="multiline-trailing-comma-and-comments",
        ),
        pytest.param(
            "f(calc.gated_delta_net_state_dtype(a, b, c), 3)\n",
            "f(calc.gated_delta_net_state_dtype(a, b), 3)\n",
            id="nested-call",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert rewrite(p9, before) == (dedent(after), 1)


@pytest.mark.parametrize(
    "source",
    [
        "Calc.gated_delta_net_state_dtype(model_dtype, cache_dtype)\n",
        "Calc.gated_delta_net_state_dtype(*args)\n",
        "Calc.gated_delta_net_state_dtype(a, b, **extra)\n",
        "Calc.gated_delta_net_state_dtype(a, b, c, d)\n",
        "gated_delta_net_state_dtype(a, b, c)\n",
        "Calc.mamba2_state_dtype(a, b, c)\n",
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p9, source) == (source, 0)


def test_counts_each_call(rewrite):
    source = "a = C.gated_delta_net_state_dtype(x, y, z)\nb = C.gated_delta_net_state_dtype(x, y, z)\n"
    assert rewrite(p9, source)[1] == 2


def test_upstream_classmethod_shape(rewrite):
    # the hook hybrid models define upstream (qwen3_next.py-like), written here
    before = """\
        class HybridForCausalLM(nn.Module):
            @classmethod
            def get_mamba_state_dtype_from_config(
                cls,
                vllm_config: "VllmConfig",
            ) -> tuple[torch.dtype, torch.dtype]:
                return MambaStateDtypeCalculator.gated_delta_net_state_dtype(
                    vllm_config.model_config.dtype,
                    vllm_config.cache_config.mamba_cache_dtype,
                    vllm_config.cache_config.mamba_ssm_cache_dtype,
                )
        """
    after = """\
        class HybridForCausalLM(nn.Module):
            @classmethod
            def get_mamba_state_dtype_from_config(
                cls,
                vllm_config: "VllmConfig",
            ) -> tuple[torch.dtype, torch.dtype]:
                return MambaStateDtypeCalculator.gated_delta_net_state_dtype(
                    vllm_config.model_config.dtype,
                    vllm_config.cache_config.mamba_cache_dtype,
                )
        """
    assert rewrite(p9, before) == (dedent(after), 1)
