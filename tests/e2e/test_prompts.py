"""Built-in prompts, generated images (valid PNGs of what they claim), and user prompt files."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from pytest_flmigrate.e2e import images, png
from pytest_flmigrate.e2e.prompts import Prompt, builtin_prompts, load_prompts, prompts_for, select
from pytest_flmigrate.errors import FlmigrateError

DRAWINGS = [images.shapes, images.horizontal_gradient, images.quadrants, images.three_circles, images.radial_gradient]


def pixel(data: bytes, x: int, y: int) -> tuple[int, int, int]:
    width, _, pixels = png.decode_rgb(data)
    offset = (y * width + x) * 3
    return tuple(pixels[offset : offset + 3])


def test_builtin_set_has_stable_ids_and_kinds():
    prompts = builtin_prompts()
    assert [p.id for p in prompts] == ["t1", "t2", "t3", "t4", "t5", "m1", "m2", "m3", "m4", "m5"]
    assert [p.kind for p in prompts] == ["text"] * 5 + ["multimodal"] * 5
    assert any("\u4e00" <= ch <= "\u9fff" for ch in prompts[1].text)  # t2 is Chinese
    assert "Python function" in prompts[2].text  # t3 asks for code
    assert all(any(ch.isdigit() for ch in p.text) for p in prompts[3:5])  # t4, t5 are maths
    assert [p.fingerprint() for p in prompts] == [p.fingerprint() for p in builtin_prompts()]


@pytest.mark.parametrize("draw", DRAWINGS, ids=lambda f: f.__name__)
def test_generated_images_are_valid_pngs(draw):
    data = draw()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, pixels = png.decode_rgb(data)  # checks every CRC and the layout
    assert (width, height) == (images.SIZE, images.SIZE) and len(pixels) == width * height * 3
    assert png.image_mime(data) == "image/png"
    assert draw() == data  # deterministic


def test_images_show_what_the_prompts_say():
    shapes = images.shapes()
    assert pixel(shapes, 40, 112) == images.RED and pixel(shapes, 112, 112) == images.BLUE
    assert pixel(shapes, 190, 130) == images.GREEN and pixel(shapes, 5, 5) == images.WHITE
    quadrants = images.quadrants()
    assert [pixel(quadrants, x, y) for x, y in ((10, 10), (200, 10), (10, 200), (200, 200))] == [
        images.RED,
        images.GREEN,
        images.BLUE,
        images.YELLOW,
    ]
    gradient = images.horizontal_gradient()
    assert pixel(gradient, 0, 50) == (0, 0, 0) and pixel(gradient, images.SIZE - 1, 50) == (255, 255, 255)
    assert pixel(images.radial_gradient(), 112, 112)[1] > pixel(images.radial_gradient(), 0, 0)[1]


def test_png_encoder_rejects_bad_sizes_and_reader_catches_corruption():
    with pytest.raises(ValueError):
        png.encode_rgb(2, 2, b"\0" * 11)
    data = bytearray(png.encode_rgb(2, 1, bytes([1, 2, 3, 4, 5, 6])))
    assert png.decode_rgb(bytes(data)) == (2, 1, bytes([1, 2, 3, 4, 5, 6]))
    data[-20] ^= 0xFF
    with pytest.raises(ValueError, match="CRC"):
        png.decode_rgb(bytes(data))


def test_messages_are_openai_shaped():
    text, image = builtin_prompts()[0], builtin_prompts()[5]
    assert text.messages() == [{"role": "user", "content": text.text}]
    (message,) = image.messages()
    image_part, text_part = message["content"]
    assert text_part == {"type": "text", "text": image.text}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == image.image


def test_select_by_mode():
    prompts = builtin_prompts()
    assert [p.id for p in select(prompts, "text")] == ["t1", "t2", "t3", "t4", "t5"]
    assert [p.id for p in select(prompts, "multimodal")] == ["m1", "m2", "m3", "m4", "m5"]
    assert len(select(prompts, "all")) == 10
    with pytest.raises(FlmigrateError, match="--e2e-mode 'both'"):
        select(prompts, "both")


def write(tmp_path: Path, data, name: str = "prompts.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_user_prompt_file_with_image(tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "q.png").write_bytes(images.quadrants())
    path = write(
        tmp_path,
        {
            "prompts": [
                {"id": "hello", "text": "Say hello."},
                {"id": "pic-1", "text": "What is shown?", "image": "pics/q.png", "description": "quadrants"},
            ]
        },
    )
    prompts = load_prompts(path)
    assert [(p.id, p.kind) for p in prompts] == [("hello", "text"), ("pic-1", "multimodal")]
    assert prompts[1].image == images.quadrants() and prompts[1].description == "quadrants"
    assert [p.id for p in prompts_for(path, "text")] == ["hello"]
    assert load_prompts(write(tmp_path, [{"id": "a", "text": "x"}], "list.json")) == (Prompt("a", "x"),)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"not valid JSON \(line 1, column 2"),
        ([], "expected a non-empty list of prompts"),
        ({"prompts": [], "extra": 1}, "unknown key\\(s\\) extra"),
        ([{"id": "a"}], r"prompt 1 \(a\): 'text' must be a non-empty string"),
        ([{"id": "a b", "text": "x"}], "prompt 1: 'id' must be 1-64 letters"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], "prompt 2: id 'a' is used twice"),
        ([{"id": "a", "text": "x", "colour": "red"}], "unknown key\\(s\\) colour"),
        ([{"id": "a", "text": "x", "image": "missing.png"}], "image .*missing.png: no such file"),
        ([{"id": "a", "text": "x", "image": "prompts.json"}], "not a PNG or JPEG file"),
        (["just a string"], "prompt 1: expected an object"),
    ],
)
def test_bad_prompt_files_get_one_line(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(FlmigrateError, match=message) as caught:
        load_prompts(path)
    assert str(caught.value).startswith(f"--e2e-prompts {path}: ")
    assert "\n" not in str(caught.value)


def test_missing_prompt_file(tmp_path):
    with pytest.raises(FlmigrateError, match="no such file; pass a JSON file of prompts"):
        load_prompts(tmp_path / "none.json")


def test_jpeg_magic_is_accepted(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0" + struct.pack(">I", zlib.crc32(b"x")))
    (prompt,) = load_prompts(write(tmp_path, [{"id": "j", "text": "x", "image": "x.jpg"}]))
    assert prompt.image_mime == "image/jpeg"
    assert prompt.messages()[0]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_text_mode_draws_no_image(monkeypatch):
    def no_drawing():
        raise AssertionError("an image was drawn for --e2e-mode text")

    for name in ("shapes", "horizontal_gradient", "quadrants", "three_circles", "radial_gradient"):
        monkeypatch.setattr(images, name, no_drawing)
    assert [p.id for p in prompts_for(None, "text")] == ["t1", "t2", "t3", "t4", "t5"]
    with pytest.raises(AssertionError, match="image was drawn"):
        prompts_for(None, "all")
