"""The ground-truth server the options name, started on first use and stopped by whoever started it.

One source: ``--gt-url`` (an existing endpoint, never started or stopped), ``--gt-python`` (a
server started here from an upstream env, always stopped at the end), or ``--gt-ssh`` with
``--gt-config`` (a server started over SSH; one already healthy at the configured URL is used
as it is and left alone; one this run started is stopped at the end unless ``--keep-servers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pytest_flmigrate.e2e.gt_config import GTConfig, load_gt_config
from pytest_flmigrate.e2e.local_gt import LocalGT
from pytest_flmigrate.e2e.phases import ServerRef
from pytest_flmigrate.e2e.remote import RemoteGT
from pytest_flmigrate.e2e.ssh import SSHTarget
from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.servers import health

LOCAL_HEALTH_TIMEOUT = 600.0
NO_SOURCE = (
    "no ground-truth server: pass --gt-url URL, --gt-python PATH (an env with upstream vLLM) or "
    "--gt-ssh USER@HOST[:PORT] with --gt-config FILE (or reuse GT results saved by --e2e-phase gt)"
)


class GroundTruth:
    """What ``settings`` say about the GT server; nothing happens until :meth:`start`."""

    def __init__(self, settings, *, log_dir: Path, scratch: Path, env: Mapping[str, str] | None = None) -> None:
        self.settings, self.log_dir, self.scratch = settings, log_dir, scratch
        self.env = dict(env or {})  # set for a server started here (--gt-python)
        self.local: LocalGT | None = None
        self.remote: RemoteGT | None = None
        self.started_here = False
        self.notes: list[str] = []

    @property
    def source(self) -> str:
        s = self.settings
        if s.gt_url:
            return f"--gt-url {s.gt_url}"
        if s.gt_python:
            return f"--gt-python {s.gt_python}"
        if s.gt_ssh:
            return f"--gt-ssh {s.gt_ssh}"
        return "none"

    def _model(self, config: GTConfig | None = None) -> str:
        model = (config.model if config else None) or self.settings.gt_model or self.settings.served_model
        if not model:
            where = ' or "model" in --gt-config' if self.settings.gt_ssh else ""
            raise FlmigrateError(
                f"--gt-model: the GT server needs weights; pass --gt-model PATH (or --served-model){where}"
            )
        return str(model)

    def start(self) -> ServerRef:
        """The GT server's URL, starting the server first when this run is to start it."""
        s = self.settings
        if s.gt_url:
            return ServerRef(s.gt_url, self.source, "start it or check --gt-url")
        if s.gt_python:
            return self._start_local()
        if s.gt_ssh:
            return self._start_remote()
        raise FlmigrateError(NO_SOURCE)

    def _start_local(self) -> ServerRef:
        s = self.settings
        log = self.log_dir / "gt-server.log"
        self.local = LocalGT(
            s.gt_python,
            self._model(),
            log_path=log,
            scratch=self.scratch / "gt-server",
            tp=s.tp,
            serve_args=s.serve_args,
            env=self.env,
        )
        self.local.start()
        self.started_here = True
        self.local.wait_healthy(LOCAL_HEALTH_TIMEOUT)
        return ServerRef(self.local.url, self.source, f"it was started by this run; see {log}", log)

    def _start_remote(self) -> ServerRef:
        s = self.settings
        config = load_gt_config(s.gt_config) if s.gt_config else GTConfig()
        self.remote = RemoteGT(SSHTarget.parse(s.gt_ssh), config, model=self._model(config), tp=s.tp)
        if health.is_healthy(self.remote.url):
            self.notes.append(f"GT server already healthy at {self.remote.url}: used as it is, not started or stopped")
            return ServerRef(self.remote.url, f"{self.source} (already running)", "check the GT server")
        process = self.remote.connect()
        self.remote.start()
        self.started_here = True
        self.remote.wait_healthy()
        hint = f"see {process.log_file} on {self.remote.target.host}"
        return ServerRef(self.remote.url, self.source, hint)

    def close(self) -> str:
        """Stop what this run started (the remote one stays with ``--keep-servers``); keep its log."""
        outcome = "nothing to stop"
        if self.local is not None and self.started_here:
            outcome = f"local GT server: {self.local.stop()}"
        elif self.remote is not None and self.started_here:
            try:
                tail = self.remote.logs(400)
                self.log_dir.mkdir(parents=True, exist_ok=True)
                (self.log_dir / "gt-server.log").write_text(tail, encoding="utf-8")
            except FlmigrateError:
                pass
            if self.settings.keep_servers:
                outcome = f"remote GT server kept at {self.remote.url} (--keep-servers)"
            else:
                outcome = f"remote GT server: {self.remote.stop()}"
        if self.remote is not None:
            self.remote.close()
        self.started_here = False
        return outcome
