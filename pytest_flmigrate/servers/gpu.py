"""GPU memory and who holds it, before the benchmark and the server (procedure 9.0 / 10.0).

The procedure kills every GPU holder; this tool only reports them, unless the user opts in with
``--free-gpus``: then the holders this run did not start are listed first, then stopped (SIGTERM,
SIGKILL after a grace period). Without ``nvidia-smi`` the report says "no GPU".
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from pytest_flmigrate.servers import procs

#: Below this fraction of free memory a GPU counts as occupied (docs/procedure.md, step 9).
FREE_FRACTION = 0.5


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    used_mib: int
    free_mib: int
    total_mib: int

    @property
    def occupied(self) -> bool:
        return self.total_mib > 0 and self.free_mib < FREE_FRACTION * self.total_mib


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str
    used_mib: int
    gpu: int | None
    ours: bool = False


@dataclass(frozen=True)
class GpuReport:
    available: bool
    gpus: tuple[Gpu, ...] = ()
    holders: tuple[Holder, ...] = ()
    note: str = ""
    stopped: tuple[int, ...] = field(default=())

    @property
    def occupied(self) -> bool:
        return any(gpu.occupied for gpu in self.gpus)

    def lines(self) -> list[str]:
        if not self.available:
            return [f"no GPU ({self.note})" if self.note else "no GPU"]
        out = [
            f"GPU {g.index} {g.name}: {g.used_mib} MiB used, {g.free_mib} of {g.total_mib} MiB free"
            + (" (occupied)" if g.occupied else "")
            for g in self.gpus
        ]
        out += [
            f"  pid {h.pid} {h.name}: {h.used_mib} MiB on GPU {h.gpu if h.gpu is not None else '?'}"
            + (" (started by this run)" if h.ours else "")
            for h in self.holders
        ]
        return out or ["GPUs present, none listed"]

    def as_dict(self) -> dict:
        return {
            "available": self.available,
            "note": self.note,
            "gpus": [g.__dict__ for g in self.gpus],
            "holders": [h.__dict__ for h in self.holders],
            "stopped": list(self.stopped),
        }


def _csv(command: list[str]) -> list[list[str]]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError((result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.returncode}"])
    return [[cell.strip() for cell in line.split(",")] for line in result.stdout.splitlines() if line.strip()]


def _int(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def report(own_pids: Collection[int] = (), nvidia_smi: str | None = None) -> GpuReport:
    """Memory per GPU and compute processes holding it; ``own_pids`` are marked as this run's."""
    smi = nvidia_smi or shutil.which("nvidia-smi")
    if not smi:
        return GpuReport(False, note="nvidia-smi not found")
    try:
        rows = _csv(
            [smi, "--query-gpu=index,uuid,name,memory.used,memory.free,memory.total", "--format=csv,noheader,nounits"]
        )
        apps = _csv(
            [smi, "--query-compute-apps=pid,process_name,used_memory,gpu_uuid", "--format=csv,noheader,nounits"]
        )
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return GpuReport(False, note=f"nvidia-smi failed: {exc}")
    gpus = tuple(Gpu(_int(r[0]), r[1], r[2], _int(r[3]), _int(r[4]), _int(r[5])) for r in rows if len(r) >= 6)
    by_uuid = {gpu.uuid: gpu.index for gpu in gpus}
    holders = tuple(
        Holder(_int(a[0]), a[1], _int(a[2]), by_uuid.get(a[3]) if len(a) > 3 else None, _int(a[0]) in own_pids)
        for a in apps
        if a and _int(a[0]) > 0
    )
    return GpuReport(True, gpus, holders)


def free(found: GpuReport, say: Callable[[str], None], *, grace: float = 10.0) -> GpuReport:
    """Stop the GPU holders this run did not start (only called with ``--free-gpus``).

    Prints what will be stopped before stopping anything. Returns the report with ``stopped``.
    """
    targets = [h for h in found.holders if not h.ours and h.pid != os.getpid()]
    if not targets:
        say("--free-gpus: no GPU process to stop")
        return found
    for holder in targets:
        say(f"--free-gpus: will stop pid {holder.pid} ({holder.name}, {holder.used_mib} MiB on GPU {holder.gpu})")
    stopped = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for holder in targets:
            try:
                os.kill(holder.pid, sig)
                stopped.append(holder.pid)
            except ProcessLookupError:
                pass
            except PermissionError:
                say(f"--free-gpus: not allowed to stop pid {holder.pid}")
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(procs.running(h.pid) for h in targets):
            time.sleep(0.2)
        if not any(procs.running(h.pid) for h in targets):
            break
    return GpuReport(found.available, found.gpus, found.holders, found.note, tuple(sorted(set(stopped))))
