"""Captions from templates with synonyms: a scene description per span, an announcement per change."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from . import words as W
from .spec import Darken, Enter, Event, Recolour, SceneState, ShapeState, Turn

VOCABULARIES = ("train", "heldout")


T = TypeVar("T")


def _pick(options: tuple[tuple[T, ...], tuple[T, ...]], rng: np.random.Generator, vocab: str) -> T:
    pool = options[VOCABULARIES.index(vocab)]
    return pool[int(rng.integers(len(pool)))]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def shape_noun(s: ShapeState, rng: np.random.Generator, vocab: str) -> str:
    """'crimson disc', 'spinning cobalt box'."""
    parts = [_pick(W.COLOUR[s.colour], rng, vocab), _pick(W.KIND[s.kind], rng, vocab)]
    if s.spinning:
        parts.insert(0, _pick(W.SPIN, rng, vocab))
    return " ".join(parts)


def background_phrase(state: SceneState, rng: np.random.Generator, vocab: str) -> str:
    """'dark pale blue gradient backdrop'."""
    bg = state.background
    parts = []
    if bg.dark:
        parts.append(_pick(W.DARK, rng, vocab))
    parts.append(_pick(W.BACKGROUND[bg.colour], rng, vocab))
    if bg.style == "gradient":
        parts.append(_pick(W.GRADIENT, rng, vocab))
    parts.append(_pick(W.BG_NOUN, rng, vocab))
    return " ".join(parts)


def describe(state: SceneState, rng: np.random.Generator, vocab: str = "train") -> str:
    """One caption of the whole scene, wording drawn from ``rng``; e.g.
    'a crimson disc glides left and right over a pale blue backdrop'."""
    if vocab not in VOCABULARIES:
        raise ValueError(f"vocabulary {vocab!r} not in {VOCABULARIES}")
    template = int(rng.integers(3))
    nouns = [shape_noun(s, rng, vocab) for s in state.shapes]
    motions = [_pick(W.MOTION[s.motion], rng, vocab) for s in state.shapes]
    bg = background_phrase(state, rng, vocab)
    if template == 0:
        shapes = " and ".join(f"{_article(n)} {m[0]}" for n, m in zip(nouns, motions, strict=True))
        return f"{shapes} {_pick(W.PREP, rng, vocab)} {bg}"
    if template == 1:
        shapes = " and ".join(f"{_article(n)} {m[1]}" for n, m in zip(nouns, motions, strict=True))
        return f"{_article(bg)} with {shapes}"
    shapes = "; ".join(f"the {n} {m[0]}" for n, m in zip(nouns, motions, strict=True))
    return f"{shapes}. The {bg.split(' ')[-1]} is {' '.join(bg.split(' ')[:-1])}"


def announce(
    event: Event, before: SceneState, after: SceneState, rng: np.random.Generator, vocab: str = "train"
) -> str:
    """A short sentence naming what changes, e.g. 'the disc turns crimson', 'a green wedge enters'."""
    if isinstance(event, Recolour):
        old = before.shapes[event.slot]
        return (
            f"the {_pick(W.KIND[old.kind], rng, vocab)} {_pick(W.BECOMES, rng, vocab)} "
            f"{_pick(W.COLOUR[event.colour], rng, vocab)}"
        )
    if isinstance(event, Enter):
        new = after.shapes[-1]
        return f"{_article(shape_noun(new, rng, vocab))} {_pick(W.ENTER, rng, vocab)}"
    if isinstance(event, Darken):
        noun = _pick(W.BG_NOUN, rng, vocab)
        return f"the {noun} {_pick(W.DARKENS, rng, vocab)}" if event.dark else f"the {noun} lightens"
    if isinstance(event, Turn):
        s = after.shapes[event.slot]
        return f"the {_pick(W.KIND[s.kind], rng, vocab)} now {_pick(W.MOTION[s.motion], rng, vocab)[0]}"
    raise TypeError(f"unknown event {event!r}")
