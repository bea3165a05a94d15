"""Step 9: GPU memory reported, then `vllm bench throughput --load-format dummy`; throughput recorded."""

import pytest

pytestmark = [pytest.mark.step(9), pytest.mark.runtime]


def test_gpu_memory_reported(runtime):
    """Passes once the GPUs and their holders were listed (``runtime.gpu`` prints them; no GPU is a line too)."""
    runtime.gpu()


def test_benchmark_throughput(runtime):
    result = runtime.benchmark()
    runtime.tell(
        f"step 9 benchmark: {result.requests_per_second:.3f} requests/s, {result.tokens_per_second:.1f} "
        f"tokens/s in {result.seconds:.1f} s"
    )
    assert result.requests_per_second > 0 and result.tokens_per_second > 0
