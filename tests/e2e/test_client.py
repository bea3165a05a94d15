"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1 (canned vLLM-shaped answers)."""

from __future__ import annotations

import socket

import pytest

from pytest_flmigrate.e2e.client import OpenAIClient, base_url
from pytest_flmigrate.e2e.prompts import builtin_prompts
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers.ports import free_port

T1, M1 = builtin_prompts()[0], builtin_prompts()[5]


def test_discovers_the_model_and_sends_a_greedy_logprobs_request(stub):
    server = stub(model="/weights/tiny-qwen2")
    client = OpenAIClient(server.url + "/v1/")
    generation = client.chat(T1, max_tokens=8)
    assert client.model_id() == "/weights/tiny-qwen2"
    (_, path, _), (_, chat_path, body) = server.requests
    assert (path, chat_path) == ("/v1/models", "/v1/chat/completions")
    assert body == {
        "model": "/weights/tiny-qwen2",
        "messages": T1.messages(),
        "max_tokens": 8,
        "temperature": 0,
        "seed": 1234,
        "logprobs": True,
        "top_logprobs": 5,
        "return_token_ids": True,
    }
    assert generation.model == "/weights/tiny-qwen2" and generation.length == 8
    assert generation.token_ids == [token_id for token_id, _ in server_tokens(server, body)]
    assert generation.tokens[0] == " Explain" and generation.text.startswith(" Explain in three")
    assert list(generation.top_logprobs[0]) == [" Explain", " alt0", " alt1", " alt2", " alt3"]
    assert generation.prompt_token_ids == [1, 2, 3] and generation.finish_reason == "length"
    assert generation.extra["usage"]["completion_tokens"] == 8


def server_tokens(server, body):
    from tests.e2e.stub_server import default_tokens, prompt_text

    return default_tokens(prompt_text(body), body["max_tokens"])


def test_multimodal_prompt_sends_the_image_inline(stub):
    server = stub()
    OpenAIClient(server.url).chat(M1, max_tokens=4)
    content = server.requests[-1][2]["messages"][0]["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")


def test_token_strings_when_the_server_sends_no_ids(stub):
    generation = OpenAIClient(stub(token_ids=False).url).chat(T1, max_tokens=4)
    assert generation.token_ids is None and len(generation.tokens) == 4


def test_an_answer_without_ids_and_logprobs_is_refused(stub):
    server = stub(token_ids=False, logprobs=False)
    with pytest.raises(FlmigrateError, match="holds neither token_ids nor logprobs"):
        OpenAIClient(server.url).chat(T1, max_tokens=4)


def test_connection_errors_are_retried_until_the_server_listens(stub):
    server = stub(activate=False)  # bound, not listening: connections are refused
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            server.activate()

    client = OpenAIClient(server.url, attempts=3, backoff=0.5, sleep=sleep)
    assert client.model_id() == "/models/tiny"
    assert waits == [0.5, 1.0]


def test_a_down_server_is_one_line_and_remembered():
    url = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []
    client = OpenAIClient(url, label="GT", hint="start it or check --gt-url", sleep=waits.append)
    with pytest.raises(FlmigrateError) as caught:
        client.chat(T1, max_tokens=4)
    assert caught.value.message == f"GT server {url}: connection refused after 3 attempts; start it or check --gt-url"
    assert waits == [1.0, 2.0]
    with pytest.raises(FlmigrateError) as again:
        client.chat(T1, max_tokens=4)
    assert again.value is caught.value and len(waits) == 2  # remembered: no new attempt, no new wait


def test_local_label_and_hint():
    url = f"http://127.0.0.1:{free_port()}"
    client = OpenAIClient(url, label="local", hint="start it (step 10)", attempts=1)
    with pytest.raises(
        FlmigrateError,
        match=r"^local server http://127\.0\.0\.1:\d+: connection refused after 1 attempt; start it \(step 10\)$",
    ):
        client.model_id()


def test_http_errors_are_answers_not_retried(stub):
    server = stub(status=503)
    waits: list[float] = []
    with pytest.raises(FlmigrateError) as caught:
        OpenAIClient(server.url, sleep=waits.append).chat(T1, max_tokens=4)
    assert caught.value.message == (
        f"GT server {server.url}: HTTP 503 from /v1/chat/completions: The model is overloaded"
    )
    assert waits == [] and len([r for r in server.requests if r[0] == "POST"]) == 1


def test_a_server_error_of_a_server_this_run_started_names_what_its_log_said_meanwhile(stub, tmp_path):
    server = stub(status=500)
    log = tmp_path / "gt-server.log"
    log.write_text("ERROR 12-07 [core.py:1] ValueError: an error logged before the request\n")
    client = OpenAIClient(server.url, log=log)
    client.model_id()
    send = client.session.request

    def answering(*args, **kwargs):  # the server logs its error while it answers
        log.write_text(log.read_text() + "Traceback (most recent call last):\nIndexError: index 7 is out of bounds\n")
        return send(*args, **kwargs)

    client.session.request = answering  # type: ignore[method-assign]
    with pytest.raises(FlmigrateError) as caught:
        client.chat(T1, max_tokens=4)
    assert caught.value.message == (
        f"GT server {server.url}: HTTP 500 from /v1/chat/completions: The model is overloaded; "
        f"its log says IndexError: index 7 is out of bounds (see {log})"
    )


def test_read_timeout_is_one_line(stub):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    try:
        client = OpenAIClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=(1.0, 0.3))
        with pytest.raises(FlmigrateError, match=r"no answer to /v1/models within 0 s"):
            client.model_id()
    finally:
        listener.close()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://h:8122", "http://h:8122"),
        ("http://h:8122/", "http://h:8122"),
        ("http://h:8122/v1", "http://h:8122"),
        ("https://h/prefix/v1/", "https://h/prefix"),
    ],
)
def test_base_url_normalisation(url, expected):
    assert base_url(url) == expected


@pytest.mark.parametrize("url", ["h:8122", "ftp://h", "http://", "http://h:99999"])
def test_bad_urls(url):
    with pytest.raises(FlmigrateError, match="--gt-url URL"):
        base_url(url, "--gt-url")


def test_pooling_sends_the_text_and_task_and_reads_the_vectors(stub):
    server = stub(model="/weights/tiny-embed")
    client = OpenAIClient(server.url)
    sequence = client.pool(T1, "embed")
    (_, _, _), (_, path, body) = server.requests
    assert path == "/pooling" and body == {"model": "/weights/tiny-embed", "input": T1.text, "task": "embed"}
    assert sequence.pooled is not None and len(sequence.pooled) == 1 and len(sequence.pooled[0]) == 8
    assert sequence.extra["task"] == "embed" and sequence.token_ids is None
    tokens = client.pool(T1, "token_embed")
    assert tokens.pooled is not None and len(tokens.pooled) == len(T1.text.split()) + 1  # words and the final "."


def test_a_pooling_answer_without_vectors_is_one_line(stub):
    server = stub()
    client = OpenAIClient(server.url)
    server.pool = lambda body: {"data": []}
    with pytest.raises(FlmigrateError, match=r"the pooling answer for t1 holds no vectors \(IndexError"):
        client.pool(T1, "embed")
