"""Long waits say what they are doing and how far along they are (progress.Ticker): a logged run (a
benchmark, the plugin's tests, a tiny model's synthesis), a server starting, a download; nothing
for a short wait, nothing at all under ``-q``."""

from __future__ import annotations

import sys

import pytest

from pytest_flmigrate import progress
from pytest_flmigrate.index import sources as pypi_sources
from pytest_flmigrate.servers import health, procs
from pytest_flmigrate.tiny import checkpoints, sources
from pytest_flmigrate.tiny.sources import ConfigSource


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    said: list[str] = []
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.5)
    restore = progress.use(said.append)
    yield said
    restore()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_says_how_long_so_far_at_each_heartbeat_and_how_long_it_took(lines):
    clock = Clock()
    status = iter(["loading weights", ""])
    ticker = progress.Ticker("the thing", lambda: next(status), clock)
    clock.now = 0.4
    ticker.tick()  # before the first heartbeat: silent
    clock.now = 0.6
    ticker.tick()
    clock.now = 0.8
    ticker.tick()  # the next heartbeat is not due yet
    clock.now = 1.2
    ticker.tick()
    clock.now = 1.3
    ticker.done()
    assert lines == [
        "the thing: 1 s so far; loading weights",
        "the thing: 1 s so far",
        "the thing: done in 1 s",
    ]


def test_a_short_wait_and_a_quiet_run_say_nothing(lines):
    clock = Clock()
    short = progress.Ticker("short", clock=clock)
    clock.now = 0.2
    short.tick()
    short.done()
    restore = progress.use(lines.append, quiet=True)  # -q
    try:
        quiet = progress.Ticker("quiet", clock=clock)
        clock.now = 5.0
        quiet.tick()
        quiet.done()
    finally:
        restore()
    assert lines == []


def test_a_logged_run_says_how_far_along_it_is_from_its_log(lines, tmp_path):
    script = "import time; print('step one', flush=True); time.sleep(1.3); print('step two')"
    finished = procs.run_logged(
        [sys.executable, "-c", script], env={}, cwd=tmp_path, log=tmp_path / "x.log", timeout=60, what="the benchmark"
    )
    assert finished.returncode == 0
    beats = [line for line in lines if "so far" in line]
    assert beats and all(line.startswith("the benchmark: ") for line in beats)
    assert beats[0].endswith("s so far; step one")  # the log's last line when the heartbeat came
    assert lines[-1].startswith("the benchmark: done in ")


def test_a_tiny_synthesis_says_how_far_along_it_is(lines, tmp_path):
    python = tmp_path / "python"
    python.write_text(
        f"#!{sys.executable}\nimport sys, time\nprint('building the tiny model', flush=True)\ntime.sleep(1.3)\n"
        "print('error: gave up')\nsys.exit(2)\n"
    )
    python.chmod(0o755)
    with pytest.raises(Exception, match="cannot synthesize a tiny XForCausalLM: gave up"):
        source = ConfigSource(sources.UPSTREAM, "upstream's transformers: m.C", "m", "C")
        checkpoints.synthesize(str(python), "x", "0.32.0", "XForCausalLM", source, cache=tmp_path)
    assert any(
        line.startswith("--tiny: synthesizing a tiny XForCausalLM: ") and line.endswith("building the tiny model")
        for line in lines
    ), lines


def test_a_server_starting_says_how_far_along_it_is_from_its_log(lines, monkeypatch):
    clock = Clock()
    answers = iter([False] * 5 + [True])
    monkeypatch.setattr(health, "is_healthy", lambda url, timeout=5.0: next(answers))

    def sleep(seconds: float) -> None:
        clock.now += seconds

    seconds = health.wait_healthy(
        "http://127.0.0.1:1",
        timeout=60,
        label="local",
        log_tail=lambda: "INFO loading\nINFO Loading weights took 3.2 s\n",
        interval=0.2,
        clock=clock,
        sleep=sleep,
    )
    assert seconds == pytest.approx(1.0)
    assert lines == [
        "local server http://127.0.0.1:1 starting: 1 s so far; INFO Loading weights took 3.2 s",
        "local server http://127.0.0.1:1 starting: done in 1 s",
    ]


def test_a_long_download_says_how_long_so_far(lines):
    result = pypi_sources._run_ticking(
        [sys.executable, "-c", "import time; time.sleep(1.2); print('saved')"], "downloading x"
    )
    assert result.returncode == 0 and result.stdout == "saved\n"
    assert [line for line in lines if "so far" in line] and lines[-1].startswith("downloading x: done in ")
