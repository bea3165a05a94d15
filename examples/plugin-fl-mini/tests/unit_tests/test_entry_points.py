import vllm_fl


def test_register_returns_no_platform():
    assert vllm_fl.register() is None


def test_register_model_is_callable():
    assert callable(vllm_fl.register_model)
