"""Synonyms for captions: a ``train`` set and a disjoint ``heldout`` set (paraphrases a model never saw)."""

from __future__ import annotations

Words = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # name -> (train, heldout)

KIND: Words = {
    "circle": (("circle", "disc", "ball", "round blob"), ("orb", "dot")),
    "square": (("square", "box", "block", "tile"), ("brick", "panel")),
    "triangle": (("triangle", "wedge", "three-sided shape"), ("pyramid", "arrowhead")),
}
COLOUR: Words = {
    "red": (("red", "crimson", "scarlet"), ("ruby", "cherry red")),
    "orange": (("orange", "tangerine", "amber"), ("pumpkin", "apricot")),
    "yellow": (("yellow", "golden", "lemon"), ("canary", "sunflower")),
    "green": (("green", "emerald", "grass-green"), ("jade", "leafy green")),
    "cyan": (("cyan", "turquoise", "aqua"), ("teal", "aquamarine")),
    "blue": (("blue", "cobalt", "royal blue"), ("sapphire", "ultramarine")),
    "purple": (("purple", "violet", "plum"), ("amethyst", "grape")),
    "pink": (("pink", "magenta", "rose"), ("fuchsia", "hot pink")),
}
# (finite verb phrase, -ing phrase)
MOTION: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    "horizontal": (
        (
            ("glides left and right", "gliding left and right"),
            ("bounces from side to side", "bouncing from side to side"),
            ("slides back and forth", "sliding back and forth"),
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
        ),
        (("hops vertically", "hopping vertically"), ("bobs up and down", "bobbing up and down")),
    ),
    "still": (
        (
            ("rests in place", "resting in place"),
            ("sits still", "sitting still"),
            ("hovers motionless", "hovering"),
        ),
        (("stays put", "staying put"), ("stands still", "standing still")),
    ),
}
SPIN: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("spinning", "rotating", "turning"),
    ("twirling", "whirling"),
)
BACKGROUND: Words = {
    "pale blue": (("pale blue", "light blue", "sky blue"), ("powder blue", "baby blue")),
    "sand": (("sand", "beige", "tan"), ("khaki", "sandy")),
    "grey": (("grey", "gray", "ash grey"), ("slate", "stone grey")),
    "mint": (("mint", "pale green", "mint green"), ("pistachio", "seafoam")),
    "lavender": (("lavender", "lilac", "pale purple"), ("mauve", "wisteria")),
    "white": (("white", "snow white", "off-white"), ("ivory", "cream")),
}
BG_NOUN: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("backdrop", "background", "field"),
    ("canvas", "backcloth"),
)
DARK: tuple[tuple[str, ...], tuple[str, ...]] = (("dark", "dim", "shadowed"), ("dusky", "darkened"))
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
