"""The E2E prompts: five text and five multimodal prompts built in, or a user's set (``--e2e-prompts``).

A prompt has a stable id (``t1``..``t5``, ``m1``..``m5`` for the built-in ones) that names its
test (``-k "e2e and t3"``) and its saved results. A user's file is JSON, either a list of prompts
or ``{"prompts": [...]}``; each prompt is ``{"id": "q1", "text": "...", "image": "pic.png"}``
with ``image`` optional (a PNG or JPEG path, relative to the file).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pytest_flmigrate.e2e import images
from pytest_flmigrate.e2e.jsonfile import read_json
from pytest_flmigrate.e2e.png import image_mime
from pytest_flmigrate.errors import FlmigrateError

PROMPT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KINDS = {"text": ("text",), "multimodal": ("multimodal",), "all": ("text", "multimodal")}
PROMPT_KEYS = {"id", "text", "image", "description"}


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    image: bytes | None = None
    description: str = ""

    @property
    def kind(self) -> str:
        return "multimodal" if self.image is not None else "text"

    @property
    def image_mime(self) -> str | None:
        return image_mime(self.image) if self.image is not None else None

    def messages(self) -> list[dict]:
        """The chat messages of an OpenAI-compatible request (the image inline as a data URL)."""
        if self.image is None:
            return [{"role": "user", "content": self.text}]
        url = f"data:{self.image_mime};base64,{base64.b64encode(self.image).decode('ascii')}"
        return [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": self.text}],
            }
        ]

    def fingerprint(self) -> str:
        """sha256 of what is sent: text and image bytes (saved results are tied to it)."""
        digest = hashlib.sha256(self.text.encode("utf-8"))
        digest.update(b"\0" + (self.image or b""))
        return digest.hexdigest()


def _multimodal(prompt_id: str, text: str, draw: Callable[[], bytes], description: str) -> Prompt:
    return Prompt(prompt_id, text, draw(), description)


def builtin_prompts(multimodal: bool = True) -> tuple[Prompt, ...]:
    """The shipped set: t1 English, t2 Chinese, t3 code, t4/t5 maths; m1..m5 generated images
    (drawn only when ``multimodal``: a second of pure Python on every collection otherwise)."""
    text = (
        Prompt("t1", "Explain in three sentences why the sky is blue.", description="English"),
        Prompt("t2", "请用三句话介绍长城的历史。", description="Chinese"),
        Prompt(
            "t3",
            "Write a Python function is_palindrome(s) that ignores case and punctuation, then show two example calls.",
            description="code",
        ),
        Prompt(
            "t4",
            "A train travels 180 km in 2.5 hours. What is its average speed in km/h? Show your reasoning step by step.",
            description="maths: arithmetic",
        ),
        Prompt("t5", "Solve for x: 3x + 7 = 2x - 5. Explain each step.", description="maths: algebra"),
    )
    if not multimodal:
        return text
    return text + (
        _multimodal(
            "m1",
            "Describe the shapes in this image, their colours and their order from left to right.",
            images.shapes,
            "shapes: red circle, blue square, green triangle",
        ),
        _multimodal(
            "m2",
            "Describe how the colour of this image changes from left to right.",
            images.horizontal_gradient,
            "gradient: black to white, left to right",
        ),
        _multimodal(
            "m3",
            "What colour is each quadrant of this image?",
            images.quadrants,
            "quadrants: red, green / blue, yellow",
        ),
        _multimodal(
            "m4",
            "How many circles are in this image, and how do their sizes compare?",
            images.three_circles,
            "shapes: three blue circles of growing size",
        ),
        _multimodal(
            "m5",
            "Describe the colours of this image from its centre to its corners.",
            images.radial_gradient,
            "gradient: yellow centre to red corners",
        ),
    )


def select(prompts: Iterable[Prompt], mode: str) -> list[Prompt]:
    """The prompts of ``--e2e-mode`` (text, multimodal or all), in their order."""
    if mode not in KINDS:
        raise FlmigrateError(f"--e2e-mode {mode!r}: expected one of {', '.join(KINDS)}")
    return [prompt for prompt in prompts if prompt.kind in KINDS[mode]]


def prompts_for(path: Path | None, mode: str) -> list[Prompt]:
    """The prompts of a run: the user's file when given, else the built-in set; filtered by mode."""
    return select(load_prompts(path) if path is not None else builtin_prompts(multimodal=mode != "text"), mode)


def load_prompts(path: Path) -> tuple[Prompt, ...]:
    """A user's prompt set, validated; every problem is one line naming the file and the fix."""
    where = f"--e2e-prompts {path}"
    data = read_json(path, where, "no such file; pass a JSON file of prompts")
    if isinstance(data, dict):
        extra = sorted(set(data) - {"prompts"})
        if extra:
            raise FlmigrateError(f'{where}: unknown key(s) {", ".join(extra)}; expected {{"prompts": [...]}}')
        data = data.get("prompts")
    if not isinstance(data, list) or not data:
        raise FlmigrateError(f'{where}: expected a non-empty list of prompts (or {{"prompts": [...]}})')
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for number, entry in enumerate(data, 1):
        prompt = _prompt(entry, f"{where}: prompt {number}", path.parent)
        if prompt.id in seen:
            raise FlmigrateError(f"{where}: prompt {number}: id {prompt.id!r} is used twice; ids must be unique")
        seen.add(prompt.id)
        prompts.append(prompt)
    return tuple(prompts)


def _prompt(entry: object, where: str, base: Path) -> Prompt:
    if not isinstance(entry, dict):
        raise FlmigrateError(f"{where}: expected an object with 'id' and 'text'")
    extra = sorted(set(entry) - PROMPT_KEYS)
    if extra:
        raise FlmigrateError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(PROMPT_KEYS))}")
    prompt_id, text = entry.get("id"), entry.get("text")
    if not isinstance(prompt_id, str) or not PROMPT_ID.match(prompt_id):
        raise FlmigrateError(
            f"{where}: 'id' must be 1-64 letters, digits, '_', '.' or '-' (it names a test and a file), got {prompt_id!r}"
        )
    where = f"{where} ({prompt_id})"
    if not isinstance(text, str) or not text.strip():
        raise FlmigrateError(f"{where}: 'text' must be a non-empty string")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise FlmigrateError(f"{where}: 'description' must be a string")
    image = None
    if entry.get("image") is not None:
        if not isinstance(entry["image"], str) or not entry["image"]:
            raise FlmigrateError(f"{where}: 'image' must be a path to a PNG or JPEG file")
        image_path = (base / entry["image"]).expanduser()
        if not image_path.is_file():
            raise FlmigrateError(f"{where}: image {image_path}: no such file")
        image = image_path.read_bytes()
        if image_mime(image) is None:
            raise FlmigrateError(f"{where}: image {image_path}: not a PNG or JPEG file")
    return Prompt(prompt_id, text, image, description)
