"""What a vLLM server log says went wrong: its first error line and the frame in the plugin's code.

vLLM prefixes the lines its engine process logs (``(EngineCore_DP0 pid=12) ERROR 12-02 10:00:00
[core.py:708] ValueError: ...``, the process name in colour); the prefixes are dropped before matching. The first exception
line is the root cause (later ones say ``Engine core initialization failed. See root cause above``),
except a line that only says a subprocess failed: vLLM inspects a model in a subprocess and wraps its
failure (``subprocess.CalledProcessError``, then ``RuntimeError: Error raised in subprocess:`` with the
child's stderr), so the child's own error, printed after them, is the cause. An exception line
with no message (a bare ``AssertionError``) says nothing by itself: the statement that raised it
and where, from the traceback's last frame, are added to it; so is the first message of a pydantic
``ValidationError``, which pydantic prints on the lines after ``1 validation error for X``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PROCESS_PREFIX = re.compile(r"^\(\w+(?: pid=\d+)?\)\s+")
_LEVEL_PREFIX = re.compile(r"^(?:ERROR|WARNING|INFO|DEBUG|CRITICAL)\s+\S+\s+\S+\s+\[[^\]]*\]\s?")
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)(?::\s.*)?$")
_SUBPROCESS_WRAPPERS = re.compile(r"^(?:subprocess\.CalledProcessError|RuntimeError: Error raised in subprocess)\b")
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.+)$')
_VALIDATION = re.compile(r"ValidationError: \d+ validation errors? for \w+$")
_VALIDATION_FIELD = re.compile(r"^\s*[\w.]+$")  # the location line of a field's error (``hf_config``)
_VALIDATION_MESSAGE = re.compile(r"^\s*(?P<message>\S.*?)(?:\s*\[type=[^\]]*\])?$")
MESSAGE_CHARS = 200  # of a validation error's message
_NO_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")
_NO_ATTRIBUTE = re.compile(r"^'(?P<owner>\w+)' object has no attribute '(?P<attribute>\w+)'")
_PROCESSOR = re.compile(r"HuggingFace processor|feature extractor|image processor|preprocessor_config")


_NOT_ON_CPU = re.compile(r"NotImplementedError: [^\n]*?\bnot supported on CPU\b[^\n(]*")


def not_on_cpu(text: str) -> str | None:
    """The error line in ``text`` where vLLM says it does not implement a feature on CPU
    (``NotImplementedError: MLA is not supported on CPU.``): a platform fact, not a port's bug;
    None when there is none."""
    found = _NOT_ON_CPU.search(text)
    return found.group(0).strip() if found else None


def _bare(line: str) -> str:
    return _LEVEL_PREFIX.sub("", _PROCESS_PREFIX.sub("", _ANSI.sub("", line))).rstrip()


def log_size(log: Path | None) -> int:
    """How far ``log`` is written now (0 when it is not there): where :func:`error_since` reads from."""
    return log.stat().st_size if log is not None and log.is_file() else 0


def error_since(log: Path | None, offset: int) -> str | None:
    """The first error line ``log`` holds after ``offset`` (what a server logged while answering a
    request: an HTTP 500 of vLLM only says to see its log), or None."""
    if log is None or not log.is_file():
        return None
    with log.open("rb") as stream:
        stream.seek(offset)
        return first_error_line(stream.read().decode("utf-8", errors="replace"))


def first_error_line(text: str) -> str | None:
    """The first ``SomeError: message`` line of ``text`` that is not a subprocess wrapper (one of those
    when nothing else is there), prefixes dropped; None when there is none. A line with no message
    gains the raising frame: ``AssertionError (assert x is not None, at vllm/models/m.py:93)``."""
    wrapper = None
    frame = None
    lines = [_bare(line) for line in text.splitlines()]
    for index, bare in enumerate(lines):
        if match := _FRAME.match(bare):
            frame = (match, lines[index + 1].strip() if index + 1 < len(lines) else "")
        elif _is_cause(bare):
            if _VALIDATION.search(bare):
                return _with_validation_message(bare, lines[index + 1 : index + 4])
            return _with_frame(bare, frame) if ":" not in bare else bare
        elif wrapper is None and _EXCEPTION.match(bare):
            wrapper = bare
    return wrapper


def _with_validation_message(line: str, following: list[str]) -> str:
    """A pydantic ``... validation error for X`` line with its first error's message (the line
    after the field's name, if any, its ``[type=...]`` dropped)."""
    for candidate in following:
        message = _VALIDATION_MESSAGE.match(candidate)
        if message and not _VALIDATION_FIELD.match(candidate):
            return f"{line}: {message.group('message')[:MESSAGE_CHARS]}"
    return line


def _with_frame(line: str, frame: tuple[re.Match[str], str] | None) -> str:
    """A message-less exception line with the statement and place of the frame that raised it."""
    if frame is None:
        return line
    match, source = frame
    path = match.group(1).rpartition("site-packages/")[2]
    return f"{line} ({source + ', ' if source else ''}at {path}:{match.group(2)})"


def _is_cause(line: str) -> bool:
    return bool(_EXCEPTION.match(line)) and not _SUBPROCESS_WRAPPERS.match(line)


def plugin_frame(text: str, plugin_dir: Path) -> str | None:
    """The deepest traceback frame in ``plugin_dir`` before the first error line:
    ``vllm_fl/models/x.py:12 in __init__: <source line>``; None when no frame is there."""
    roots = {str(path).rstrip("/") + "/" for path in (plugin_dir, plugin_dir.resolve())}
    found = None
    lines = [_bare(line) for line in text.splitlines()]
    for index, line in enumerate(lines):
        if _is_cause(line):
            break
        match = _FRAME.match(line)
        root = next((root for root in roots if match and match.group(1).startswith(root)), None)
        if root is not None and match is not None:
            source = lines[index + 1].strip() if index + 1 < len(lines) else ""
            found = f"{match.group(1)[len(root) :]}:{match.group(2)} in {match.group(3)}" + (
                f": {source}" if source else ""
            )
    return found


def summary(text: str, plugin_dir: Path | None = None) -> str | None:
    """``<error line>`` plus `` (at <frame>)`` when the plugin's code raised it; None without an error line."""
    error = first_error_line(text)
    if error is None:
        return None
    frame = plugin_frame(text, plugin_dir) if plugin_dir is not None else None
    return f"{error} (at {frame})" if frame else error


@dataclass(frozen=True)
class Cause:
    """An error line read once: the exception's type (its module dropped) and message, and what
    the message says is missing, when it says it in a form vLLM and transformers use."""

    line: str
    exception: str
    message: str
    module: str | None = None  # ``No module named 'm'``: an import failed
    config: str | None = None  # ``'XConfig' object has no attribute 'f'``: a config lacks a field
    field: str | None = None
    processor: bool = False  # a processor, feature extractor or preprocessor_config could not be loaded

    @classmethod
    def of(cls, line: str) -> Cause:
        exception, _, message = line.partition(":")
        exception, message = exception.rpartition(".")[2].strip(), message.strip()
        module = _NO_MODULE.search(message) if exception in ("ModuleNotFoundError", "ImportError") else None
        attribute = _NO_ATTRIBUTE.match(message) if exception == "AttributeError" else None
        config = attribute if attribute is not None and attribute.group("owner").endswith("Config") else None
        return cls(
            line,
            exception,
            message,
            module=module.group("module") if module else None,
            config=config.group("owner") if config else None,
            field=config.group("attribute") if config else None,
            processor=bool(_PROCESSOR.search(message)),
        )
