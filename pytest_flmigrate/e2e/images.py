"""The images of the built-in multimodal prompts, drawn here (no files shipped, no downloads).

Each is a plain scene a vision model can describe in words: coloured shapes, gradients and
quadrants on 224x224 pixels. Drawn once per process (cached); the same bytes every time.
"""

from __future__ import annotations

import functools
import math

from pytest_flmigrate.e2e.png import Pixel, render

SIZE = 224
WHITE: Pixel = (255, 255, 255)
RED: Pixel = (220, 30, 30)
GREEN: Pixel = (30, 170, 60)
BLUE: Pixel = (30, 60, 220)
YELLOW: Pixel = (240, 210, 30)


def _in_circle(x: int, y: int, cx: float, cy: float, r: float) -> bool:
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _in_triangle(
    x: int, y: int, top: tuple[float, float], left: tuple[float, float], right: tuple[float, float]
) -> bool:
    def side(p, a, b):
        return (p[0] - b[0]) * (a[1] - b[1]) - (a[0] - b[0]) * (p[1] - b[1])

    p = (x, y)
    d1, d2, d3 = side(p, top, left), side(p, left, right), side(p, right, top)
    has_negative = d1 < 0 or d2 < 0 or d3 < 0
    has_positive = d1 > 0 or d2 > 0 or d3 > 0
    return not (has_negative and has_positive)


@functools.cache
def shapes() -> bytes:
    """A red circle (left), a blue square (middle) and a green triangle (right) on white."""

    def paint(x: int, y: int) -> Pixel:
        if _in_circle(x, y, 40, 112, 30):
            return RED
        if 82 <= x <= 142 and 82 <= y <= 142:
            return BLUE
        if _in_triangle(x, y, (190, 80), (156, 144), (222, 144)):
            return GREEN
        return WHITE

    return render(SIZE, SIZE, paint)


@functools.cache
def horizontal_gradient() -> bytes:
    """Black on the left to white on the right."""

    def paint(x: int, y: int) -> Pixel:
        level = round(255 * x / (SIZE - 1))
        return (level, level, level)

    return render(SIZE, SIZE, paint)


@functools.cache
def quadrants() -> bytes:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right."""

    def paint(x: int, y: int) -> Pixel:
        top, left = y < SIZE // 2, x < SIZE // 2
        return (RED if left else GREEN) if top else (BLUE if left else YELLOW)

    return render(SIZE, SIZE, paint)


@functools.cache
def three_circles() -> bytes:
    """Three blue circles of growing size on white, left to right."""

    def paint(x: int, y: int) -> Pixel:
        for cx, r in ((36, 16), (100, 26), (172, 38)):
            if _in_circle(x, y, cx, 112, r):
                return BLUE
        return WHITE

    return render(SIZE, SIZE, paint)


@functools.cache
def radial_gradient() -> bytes:
    """Yellow in the centre fading to red at the corners."""
    centre = (SIZE - 1) / 2
    far = math.hypot(centre, centre)

    def paint(x: int, y: int) -> Pixel:
        t = math.hypot(x - centre, y - centre) / far
        return tuple(round(a + (b - a) * t) for a, b in zip(YELLOW, RED))  # type: ignore[return-value]

    return render(SIZE, SIZE, paint)
