"""Synonyms for captions: a ``train`` set and a disjoint ``heldout`` set (paraphrases a model never saw).

The train sets grew from three to five wordings per attribute in session 14 (world specs 2), so that a model
trained on them learns the sense of a word rather than a few tokens (docs/pocket.md); the held-out sets did not
change and share no word with them.
"""

from __future__ import annotations

Words = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # name -> (train, heldout)

KIND: Words = {
    "circle": (("circle", "disc", "ball", "round blob", "sphere", "round shape"), ("orb", "dot")),
    "square": (("square", "box", "block", "tile", "cube", "four-sided shape"), ("brick", "panel")),
    "triangle": (
        ("triangle", "wedge", "three-sided shape", "triangular shape", "three-cornered shape"),
        ("pyramid", "arrowhead"),
    ),
}
COLOUR: Words = {
    "red": (("red", "crimson", "scarlet", "vermilion", "blood red"), ("ruby", "cherry red")),
    "orange": (("orange", "tangerine", "amber", "carrot orange", "burnt orange"), ("pumpkin", "apricot")),
    "yellow": (("yellow", "golden", "lemon", "bright yellow", "butter yellow"), ("canary", "sunflower")),
    "green": (("green", "emerald", "grass-green", "lime", "forest green"), ("jade", "leafy green")),
    "cyan": (("cyan", "turquoise", "aqua", "bright cyan", "cyan blue"), ("teal", "aquamarine")),
    "blue": (("blue", "cobalt", "royal blue", "navy", "deep blue"), ("sapphire", "ultramarine")),
    "purple": (("purple", "violet", "plum", "mulberry", "deep purple"), ("amethyst", "grape")),
    "pink": (("pink", "magenta", "rose", "bubblegum pink", "bright pink"), ("fuchsia", "hot pink")),
}
# (finite verb phrase, -ing phrase)
MOTION: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    "horizontal": (
        (
            ("glides left and right", "gliding left and right"),
            ("bounces from side to side", "bouncing from side to side"),
            ("slides back and forth", "sliding back and forth"),
            ("moves left and right", "moving left and right"),
            ("drifts from side to side", "drifting from side to side"),
        ),
        (
            ("zips sideways between the walls", "zipping sideways"),
            ("shuttles left to right", "shuttling sideways"),
        ),
    ),
    "vertical": (
        (
            ("bounces up and down", "bouncing up and down"),
            ("rises and falls", "rising and falling"),
            ("moves up and down", "moving up and down"),
            ("travels up and down", "travelling up and down"),
            ("climbs and drops", "climbing and dropping"),
        ),
        (("hops vertically", "hopping vertically"), ("bobs up and down", "bobbing up and down")),
    ),
    "still": (
        (
            ("rests in place", "resting in place"),
            ("sits still", "sitting still"),
            ("hovers motionless", "hovering"),
            ("does not move", "not moving"),
            ("remains still", "remaining still"),
        ),
        (("stays put", "staying put"), ("stands still", "standing still")),
    ),
}
SPIN: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("spinning", "rotating", "turning", "revolving"),
    ("twirling", "whirling"),
)
BACKGROUND: Words = {
    "pale blue": (
        ("pale blue", "light blue", "sky blue", "icy blue", "soft blue"),
        ("powder blue", "baby blue"),
    ),
    "sand": (("sand", "beige", "tan", "desert sand", "light brown"), ("khaki", "sandy")),
    "grey": (("grey", "gray", "ash grey", "silver grey", "light grey"), ("slate", "stone grey")),
    "mint": (("mint", "pale green", "mint green", "soft green", "light mint"), ("pistachio", "seafoam")),
    "lavender": (("lavender", "lilac", "pale purple", "light violet", "soft purple"), ("mauve", "wisteria")),
    "white": (("white", "snow white", "off-white", "pure white", "bright white"), ("ivory", "cream")),
}
BG_NOUN: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("backdrop", "background", "field", "wall", "surface"),
    ("canvas", "backcloth"),
)
DARK: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("dark", "dim", "shadowed", "gloomy", "unlit"),
    ("dusky", "darkened"),
)
GRADIENT: tuple[tuple[str, ...], tuple[str, ...]] = (("gradient", "fading"), ("shaded", "graded"))
PREP: tuple[tuple[str, ...], tuple[str, ...]] = (("over a", "against a", "on a"), ("in front of a", "upon a"))
ENTER: tuple[tuple[str, ...], tuple[str, ...]] = (("enters", "appears", "pops in"), ("shows up", "arrives"))
BECOMES: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("turns", "becomes", "changes to"),
    ("goes", "switches to"),
)
DARKENS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("darkens", "grows dark", "dims"),
    ("fades to dark", "goes dim"),
)
