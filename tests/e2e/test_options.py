"""E2E options: --e2e-prompts, --gt-config, --gt-url, --gt-ssh validated when the run starts; the
--gt-config schema; the GT server's argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_flmigrate.e2e.gt_config import GTConfig, load_gt_config, parse_gt_config
from pytest_flmigrate.e2e.remote import gt_argv
from pytest_flmigrate.e2e.serve import CLI_MODULE, launcher, serve_argv
from pytest_flmigrate.e2e.ssh import SSHTarget
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.settings import resolve


def settings_with(plugin_tree: Path, **given):
    return resolve({"model": ("tiny",), "plugin_dir": str(plugin_tree), **given}, plugin_tree)


def test_e2e_prompts_option(plugin_tree, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"id": "q1", "text": "Hi"}]))
    assert settings_with(plugin_tree, e2e_prompts=str(path)).e2e_prompts == path
    assert settings_with(plugin_tree).e2e_prompts is None


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("[", "not valid JSON"),
        ('[{"id": "q1", "text": "Hi", "image": "nope.png"}]', "image .* no such file"),
    ],
)
def test_bad_e2e_prompts_fail_at_start(plugin_tree, tmp_path, content, message):
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FlmigrateError, match=f"^--e2e-prompts {path}: .*{message}"):
        settings_with(plugin_tree, e2e_prompts=str(path))


def test_e2e_prompts_without_prompts_of_the_mode(plugin_tree, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"id": "q1", "text": "Hi"}]))
    with pytest.raises(FlmigrateError, match="no prompt of --e2e-mode multimodal in it"):
        settings_with(plugin_tree, e2e_prompts=str(path), e2e_mode="multimodal")


def test_e2e_prompts_from_pyproject(plugin_tree, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"id": "q1", "text": "Hi"}]))
    (plugin_tree / "pyproject.toml").write_text(f'[tool.flmigrate]\ne2e-prompts = "{path}"\n')
    assert settings_with(plugin_tree).e2e_prompts == path


def test_gt_config_needs_gt_ssh_and_is_read_at_start(plugin_tree, tmp_path):
    config = tmp_path / "gt.json"
    config.write_text(json.dumps({"port": 9000}))
    with pytest.raises(FlmigrateError, match="only used with --gt-ssh"):
        settings_with(plugin_tree, gt_config=str(config))
    assert settings_with(plugin_tree, gt_config=str(config), gt_ssh="me@gpu-box").gt_config == config
    config.write_text(json.dumps({"prot": 9000}))
    with pytest.raises(FlmigrateError, match=r"unknown key\(s\) prot; allowed: key_file"):
        settings_with(plugin_tree, gt_config=str(config), gt_ssh="me@gpu-box")


def test_gt_url_is_checked_at_start(plugin_tree):
    with pytest.raises(FlmigrateError, match="^--gt-url URL 'gpu-box:8122': expected http://HOST:PORT"):
        settings_with(plugin_tree, gt_url="gpu-box:8122")


def test_full_gt_config(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(
        json.dumps(
            {
                "key_file": "~/.ssh/id_ed25519",
                "known_hosts": "/etc/kh",
                "connect_timeout": 3,
                "docker_container": "vllm gt",
                "conda_env": "up stream",
                "env": {"HF_HOME": "/data/hf", "N": 2},
                "gpu_ids": [0, 1],
                "tp": 2,
                "serve_args": "--dtype bfloat16 --max-model-len 4096",
                "python": "/opt/py/bin/python",
                "model": "/data/Kimi K2.5",
                "port": 9000,
                "url": "http://gpu:9000/v1",
                "state_dir": "/tmp/gt state",
                "health_timeout": 60,
            }
        )
    )
    config = load_gt_config(path)
    assert config.key_file == Path("~/.ssh/id_ed25519") and config.known_hosts == Path("/etc/kh")
    assert config.serve_args == ("--dtype", "bfloat16", "--max-model-len", "4096")
    assert config.server_env() == {"HF_HOME": "/data/hf", "N": "2", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert config.url == "http://gpu:9000" and config.insecure_skip_host_key_check is False
    assert GTConfig().known_hosts == Path("~/.ssh/known_hosts") and GTConfig().port == 8122


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "expected a JSON object"),
        ({"port": "8122"}, "'port' must be a positive whole number up to 65535"),
        ({"port": 70000}, "'port' must be"),
        ({"tp": True}, "'tp' must be"),
        ({"insecure_skip_host_key_check": "yes"}, "must be true or false"),
        ({"env": {"BAD-NAME": "x"}}, "env name 'BAD-NAME' is not a valid variable name"),
        ({"env": {"-u": "x"}}, "env name '-u'"),
        ({"gpu_ids": "0;rm"}, "'gpu_ids' must be a list of GPU numbers"),
        ({"serve_args": "--x 'unbalanced"}, "balanced quotes"),
        ({"command": []}, "a non-empty command"),
        ({"python": "p", "command": ["vllm", "serve"]}, "either 'python' or 'command'"),
        ({"model": "a\nb"}, "'model' must be a non-empty one-line string"),
        ({"url": "gpu:1"}, "'url' URL 'gpu:1': expected http://HOST:PORT"),
        ({"health_timeout": 0}, "positive number of seconds"),
    ],
)
def test_bad_gt_config(data, message):
    with pytest.raises(FlmigrateError, match=message):
        parse_gt_config(data, "--gt-config x.json")


def test_gt_config_file_errors(tmp_path):
    with pytest.raises(FlmigrateError, match="no such file"):
        load_gt_config(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(FlmigrateError, match=r"not valid JSON \(line 1, column 2"):
        load_gt_config(tmp_path / "bad.json")
    (tmp_path / "latin1.json").write_bytes(b'{"model": "caf\xe9"}')
    with pytest.raises(FlmigrateError, match="not UTF-8 text"):
        load_gt_config(tmp_path / "latin1.json")
    with pytest.raises(FlmigrateError, match=r"^--gt-config /proc/self/mem: cannot read it \(Input/output error\)$"):
        load_gt_config(Path("/proc/self/mem"))  # a file whose read fails, whoever runs the tests


@pytest.mark.parametrize(
    "text, target",
    [
        ("me@gpu-box", SSHTarget("me", "gpu-box", 22)),
        ("me@10.0.0.5:2222", SSHTarget("me", "10.0.0.5", 2222)),
        ("me.x@[::1]:2200", SSHTarget("me.x", "::1", 2200)),
    ],
)
def test_ssh_targets(text, target):
    assert SSHTarget.parse(text) == target


@pytest.mark.parametrize(
    "text", ["gpu-box", "me@", "me@host:0", "me@host:70000", "me@host;rm -rf /", "-oProxyCommand=x@h"]
)
def test_bad_ssh_targets(text):
    with pytest.raises(FlmigrateError, match="expected USER@HOST\\[:PORT\\]"):
        SSHTarget.parse(text)


def test_serve_argv():
    assert launcher() == ["python3", "-m", CLI_MODULE, "serve"]
    assert serve_argv(
        launcher("/env/bin/python"), model="/m", host="127.0.0.1", port=9, tp=1, extra=["--dtype", "float32"]
    ) == [
        "/env/bin/python",
        "-m",
        CLI_MODULE,
        "serve",
        "/m",
        "--host",
        "127.0.0.1",
        "--port",
        "9",
        "--dtype",
        "float32",
    ]
    assert serve_argv(launcher(command=["vllm", "serve"]), model="/m", host="0.0.0.0", port=9, tp=4) == [
        "vllm",
        "serve",
        "/m",
        "--host",
        "0.0.0.0",
        "--port",
        "9",
        "--tensor-parallel-size",
        "4",
    ]


def test_gt_argv_with_conda_and_config_tp():
    config = parse_gt_config({"conda_env": "up", "tp": 2, "serve_args": ["--x"], "model": "/w"})
    assert gt_argv(config, model="/w", tp=1) == [
        "conda",
        "run",
        "--no-capture-output",
        "-n",
        "up",
        "python3",
        "-m",
        CLI_MODULE,
        "serve",
        "/w",
        "--host",
        "0.0.0.0",
        "--port",
        "8122",
        "--tensor-parallel-size",
        "2",
        "--x",
    ]
