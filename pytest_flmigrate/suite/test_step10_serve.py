"""Step 10: the local server (vllm serve with the plugin) is healthy, runs the plugin's class, answers a
chat (a pooling model: a ``/pooling`` request of its task)."""

import pytest

pytestmark = [pytest.mark.step(10), pytest.mark.runtime]


def test_server_healthy(local_server_url):
    from pytest_flmigrate.servers import health

    assert health.is_healthy(local_server_url), f"{local_server_url}/health stopped answering"


def test_server_runs_the_plugin_class(runtime, local_server_url):
    evidence = runtime.server_evidence()
    expected = runtime.expected_architectures()
    log = runtime.server().log
    resolved = [arch for arch in evidence["resolved"] if arch in expected]
    assert resolved, (
        f"the server log ({log}) shows no architecture of this model resolved "
        f"(resolved: {', '.join(evidence['resolved']) or 'none'}; expected one of {', '.join(expected)})"
    )
    in_tree = runtime.run.workspace.pinned().architectures
    for arch in resolved:
        if arch in in_tree:
            assert expected[arch] in evidence["overridden_by"], (
                f"{arch} is vLLM's own class in the server (the log shows no override by {expected[arch]}; log: {log})"
            )


def test_chat_request_returns_text(runtime, local_server_url):
    task = runtime.pooling_task()
    if task:
        pytest.skip(f"{runtime.run.name} is a pooling model ({task}): it answers /pooling, not chat")
    reply = runtime.chat()
    runtime.tell(f"step 10: {local_server_url} answered {reply['completion_tokens']} tokens in {reply['seconds']} s")


def test_pooling_request_returns_vectors(runtime, local_server_url):
    task = runtime.pooling_task()
    if not task:
        pytest.skip(f"{runtime.run.name} generates text: no pooling request")
    reply = runtime.pool()
    runtime.tell(
        f"step 10: {local_server_url} pooled ({task}) {reply['vectors']} vector(s) of {reply['values']} values "
        f"in {reply['seconds']} s"
    )
