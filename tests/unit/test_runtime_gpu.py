"""GPU report and --free-gpus with a stand-in nvidia-smi (this machine has no GPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pytest_flmigrate.servers import gpu


def fake_smi(tmp_path: Path, apps: str) -> str:
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  --query-gpu=*) echo "0, GPU-aaa, NVIDIA H100, 70000, 11000, 81000"; echo "1, GPU-bbb, NVIDIA H100, 10, 80990, 81000" ;;\n'
        f'  --query-compute-apps=*) printf "{apps}" ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return str(script)


def test_no_nvidia_smi_means_no_gpu(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    found = gpu.report()
    assert not found.available and found.lines() == ["no GPU (nvidia-smi not found)"]


def test_report_lists_memory_and_holders(tmp_path):
    smi = fake_smi(tmp_path, "4242, python3, 69000, GPU-aaa\\n777, vllm, 500, GPU-bbb\\n")
    found = gpu.report(own_pids={777}, nvidia_smi=smi)
    assert found.available and found.occupied
    assert [g.occupied for g in found.gpus] == [True, False]
    assert found.lines() == [
        "GPU 0 NVIDIA H100: 70000 MiB used, 11000 of 81000 MiB free (occupied)",
        "GPU 1 NVIDIA H100: 10 MiB used, 80990 of 81000 MiB free",
        "  pid 4242 python3: 69000 MiB on GPU 0",
        "  pid 777 vllm: 500 MiB on GPU 1 (started by this run)",
    ]


def test_free_gpus_lists_then_stops_only_what_the_run_did_not_start(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        smi = fake_smi(tmp_path, f"{holder.pid}, python3, 69000, GPU-aaa\\n{ours.pid}, vllm, 500, GPU-aaa\\n")
        said: list[str] = []
        found = gpu.free(gpu.report(own_pids={ours.pid}, nvidia_smi=smi), said.append, grace=5)
        assert said == [f"--free-gpus: will stop pid {holder.pid} (python3, 69000 MiB on GPU 0)"]
        assert found.stopped == (holder.pid,)
        assert holder.wait(timeout=10) != 0
        assert ours.poll() is None
    finally:
        for proc in (holder, ours):
            proc.kill()
            proc.wait()
