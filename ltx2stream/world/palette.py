"""The world's fixed vocabulary: shape kinds, shape colours, background colours, their sounds.

Shape colours are saturated and background colours pale (or darkened by a fixed factor), so a pixel reader can
tell shape from background by colour alone. Every entry is index-stable: ground truth stores indices.
"""

from __future__ import annotations

SHAPE_KINDS: tuple[str, ...] = ("circle", "square", "triangle")
MOTIONS: tuple[str, ...] = ("horizontal", "vertical", "still")
HEADINGS: tuple[str, ...] = ("left", "right", "up", "down", "still")
BACKGROUND_STYLES: tuple[str, ...] = ("plain", "gradient")

# Saturated shape colours (RGB 0..255); pairwise RGB distance >= 90.
SHAPE_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "orange": (245, 135, 15),
    "yellow": (240, 220, 25),
    "green": (35, 170, 55),
    "cyan": (20, 200, 215),
    "blue": (35, 70, 225),
    "purple": (140, 45, 195),
    "pink": (245, 85, 175),
}

# Pale background colours (RGB 0..255); a dark background is the same colour times DARK_FACTOR.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "pale blue": (175, 200, 235),
    "sand": (225, 205, 160),
    "grey": (150, 150, 150),
    "mint": (185, 228, 200),
    "lavender": (210, 190, 235),
    "white": (240, 240, 240),
}
DARK_FACTOR = 0.4
# A gradient background runs from (1 + GRADIENT) x colour at the top to (1 - GRADIENT) x colour at the bottom.
GRADIENT = 0.18

# Sound: a steady tone per shape kind (Hz), a hum per background colour (Hz), a click at every bounce.
# Every pitch is a multiple of 100 Hz, the frame rate of the audio codec's mel (16 kHz / hop 160): a vocoder is a
# time-invariant net whose input, the mel of a steady sound, is the same every frame, so its output repeats every
# frame (240 samples at 24 kHz) and can only hold multiples of 100 Hz. The first pitches (392 / 523.25 / 698.46 Hz
# tones, 70-145 Hz hums) came out as 400 / 500 / 700 Hz and a 100 Hz buzz (session 8, docs/pocket.md "The vocoder").
KIND_PITCH_HZ: dict[str, float] = {"circle": 400.0, "square": 500.0, "triangle": 700.0}
BACKGROUND_HUM_HZ: dict[str, float] = {
    "pale blue": 100.0,
    "sand": 200.0,
    "grey": 300.0,
    "mint": 600.0,
    "lavender": 800.0,
    "white": 900.0,
}
TONE_AMPLITUDE = 0.08
HUM_AMPLITUDE = 0.06
CLICK_AMPLITUDE = 0.6
CLICK_DECAY_S = 0.002
CLICK_LENGTH_S = 0.015

COLOUR_NAMES: tuple[str, ...] = tuple(SHAPE_COLOURS)
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUND_COLOURS)
