"""Labels read off the pixels and the size, exactly (source `property`, confidence 1): black and
white, the dominant colours (a small fixed palette, as PhotoPrism's colour filter), panorama, and
the orientation. No model: numpy on the decoded model input, a few hundred microseconds an image.
"""

from __future__ import annotations

import numpy as np

from indexer.record import Label, Source

BLACK_AND_WHITE = "black and white"
PANORAMA = "panorama"
LANDSCAPE, PORTRAIT, SQUARE = "landscape orientation", "portrait orientation", "square"
# names as a person types them; "orange" is a fruit class, so its colour says so
COLOURS = ("red", "orange colour", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey")
NAMES = (BLACK_AND_WHITE, PANORAMA, LANDSCAPE, PORTRAIT, SQUARE, *COLOURS)

CHROMA_GREY = 12  # max - min of R, G, B (0..255) under which a pixel has no colour
GREY_SHARE = 0.97  # a photo is black and white when this share of its pixels has no colour
PANORAMA_ASPECT = 2.0  # long side / short side
SQUARE_ASPECT = 1.05
DOMINANT_SHARE = 0.25  # a colour is dominant on this share of the pixels or more
MAX_COLOURS = 2


def property_labels(pixels: np.ndarray, width: int, height: int) -> list[Label]:
    """`pixels`: (S, S, 3) uint8 RGB (the model input); `width`, `height`: the image as displayed."""
    names = [_orientation(width, height)]
    if max(width, height) >= PANORAMA_ASPECT * min(width, height):
        names.append(PANORAMA)
    rgb = pixels[::4, ::4].reshape(-1, 3).astype(np.int16)  # 56 x 56 of the 224 x 224 input is plenty
    chroma = rgb.max(axis=1) - rgb.min(axis=1)
    if np.mean(chroma < CHROMA_GREY) >= GREY_SHARE:
        names.append(BLACK_AND_WHITE)
    names += dominant_colours(rgb)
    return [Label(n, 1.0, Source.PROPERTY) for n in names]


def _orientation(width: int, height: int) -> str:
    if width >= SQUARE_ASPECT * height:
        return LANDSCAPE
    if height >= SQUARE_ASPECT * width:
        return PORTRAIT
    return SQUARE


def colour_names(rgb: np.ndarray) -> np.ndarray:
    """The palette name of each (N, 3) RGB pixel, by hue, saturation and value."""
    x = rgb.astype(np.float32) / 255.0
    top, low = x.max(axis=1), x.min(axis=1)
    spread = top - low
    saturation = np.where(top > 0, spread / np.maximum(top, 1e-6), 0.0)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    safe = np.maximum(spread, 1e-6)
    hue = np.select([top == r, top == g], [((g - b) / safe) % 6, (b - r) / safe + 2], (r - g) / safe + 4) * 60
    out = np.full(len(x), "grey", dtype=object)
    coloured = (saturation >= 0.25) & (top >= 0.2)
    out[top < 0.2] = "black"
    out[(saturation < 0.15) & (top > 0.85)] = "white"
    bands = [(15, "red"), (40, "orange colour"), (70, "yellow"), (165, "green"), (255, "blue"), (290, "purple"),
             (335, "pink"), (361, "red")]
    lower = 0.0
    for upper, name in bands:
        out[coloured & (hue >= lower) & (hue < upper)] = name
        lower = upper
    out[coloured & (out == "orange colour") & (top < 0.6)] = "brown"  # a dark orange is brown
    return out


def dominant_colours(rgb: np.ndarray) -> list[str]:
    """The palette colours covering DOMINANT_SHARE of the pixels or more, most first (at most two)."""
    names, counts = np.unique(colour_names(rgb), return_counts=True)
    share = counts / counts.sum()
    order = np.argsort(-share)
    return [str(names[i]) for i in order[:MAX_COLOURS] if share[i] >= DOMINANT_SHARE]
