import pytest

from pytest_flmigrate.patches import p10_mamba_cache_mode as p10


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            'if cache_config.mamba_cache_mode != "none":\n    pass\n',
            "if cache_config.enable_prefix_caching:\n    pass\n",
            id="not-none",
        ),
        pytest.param(
            "if vllm_config.cache_config.mamba_cache_mode == 'align':\n    pass\n",
            "if vllm_config.cache_config.enable_prefix_caching:\n    pass\n",
            id="align",
        ),
        pytest.param(
            'if self.cache_config.mamba_cache_mode == "none":\n    pass\n',
            "if not self.cache_config.enable_prefix_caching:\n    pass\n",
            id="none",
        ),
        pytest.param(
            'use_dense = self.vllm_config.cache_config.mamba_cache_mode != "align"\n',
            "use_dense = not self.vllm_config.cache_config.enable_prefix_caching\n",
            id="not-align",
        ),
        pytest.param(
            'if "none" == cfg.mamba_cache_mode:\n    pass\n',
            "if not cfg.enable_prefix_caching:\n    pass\n",
            id="literal-on-the-left",
        ),
        pytest.param(
            'ok = enabled and (cfg.mamba_cache_mode == "none")\n',
            "ok = enabled and (not cfg.enable_prefix_caching)\n",
            id="parentheses-kept",
        ),
        pytest.param(
            'f(x, align=get_config().mamba_cache_mode == "align")\n',
            "f(x, align=get_config().enable_prefix_caching)\n",
            id="any-receiver-expression",
        ),
    ],
)
def test_rewrites(rewrite, before, after):
    assert rewrite(p10, before) == (after, 1)


@pytest.mark.parametrize(
    "source",
    [
        # not a mode of the upstream versions migrated from; no exact 0.13.0 equivalent
        'if cache_config.mamba_cache_mode == "all":\n    pass\n',
        'if cache_config.mamba_cache_mode == "full":\n    pass\n',
        'if cache_config.mamba_cache_mode in ("align", "all"):\n    pass\n',
        'if a == cache_config.mamba_cache_mode == "none":\n    pass\n',
        'cache_config.mamba_cache_mode = "align"\n',
        "spec = Spec(mamba_cache_mode=cache_config.mamba_cache_mode)\n",
        "if cache_config.mamba_cache_mode == mode:\n    pass\n",
        'if cache_config.other_mode == "none":\n    pass\n',
    ],
)
def test_left_alone(rewrite, source):
    assert rewrite(p10, source) == (source, 0)


def test_upstream_config_check_shape(rewrite):
    # the shape of the hybrid-model config check upstream, written here
    before = (
        "def verify(vllm_config):\n"
        "    cache_config = vllm_config.cache_config\n"
        '    if cache_config.mamba_cache_mode != "none":\n'
        "        assert scheduler_config.enable_chunked_prefill  # required for align\n"
        '    if self.vllm_config.cache_config.mamba_cache_mode != "align":\n'
        "        return\n"
    )
    after = (
        "def verify(vllm_config):\n"
        "    cache_config = vllm_config.cache_config\n"
        "    if cache_config.enable_prefix_caching:\n"
        "        assert scheduler_config.enable_chunked_prefill  # required for align\n"
        "    if not self.vllm_config.cache_config.enable_prefix_caching:\n"
        "        return\n"
    )
    assert rewrite(p10, before) == (after, 2)
