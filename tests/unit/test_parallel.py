"""Scheduling a batch on pytest-xdist workers: one model, one scope."""

from pytest_flmigrate.parallel import model_of_nodeid

MODELS = frozenset({"kimi_k25", "qwen3_5"})


def test_model_found_among_parameters():
    assert model_of_nodeid("suite/test_step11_e2e.py::test_prompt[qwen3_5-t3]", MODELS) == "qwen3_5"
    assert model_of_nodeid("suite/test_step02_upstream.py::test_upstream_ready[kimi_k25]", MODELS) == "kimi_k25"


def test_node_without_model_has_no_scope():
    assert model_of_nodeid("tests/test_other.py::test_x", MODELS) is None
    assert model_of_nodeid("suite/test_step06_review.py::test_check[other-file]", MODELS) is None
