"""The procedural world: determinism, exact windows, ground truth agreeing with pixels and samples."""

from __future__ import annotations

import numpy as np
import pytest

from ltx2stream.world import (
    COLOUR_NAMES,
    SHAPE_COLOURS,
    BackgroundSpec,
    ClipSpec,
    Darken,
    Enter,
    Recolour,
    ShapeSpec,
    make_steered_clip,
    render_clip,
    sample_clip_spec,
)
from ltx2stream.world.sampler import MAX_SHAPES, RADII


def test_same_seed_same_clip_and_windows_are_slices() -> None:
    """A clip is a function of its spec; a window of it equals the same frames/samples of the whole."""
    spec = sample_clip_spec(3, duration_s=4.0)
    a = render_clip(spec, 24, 32, 48, 12.0)
    b = render_clip(spec, 24, 32, 48, 12.0)
    assert np.array_equal(a.video, b.video) and np.array_equal(a.audio, b.audio)
    w = render_clip(spec, 10, 32, 48, 12.0, start_frame=9)
    assert np.array_equal(w.video, a.video[9:19])
    s0 = w.truth.start_sample
    assert np.array_equal(w.audio, a.audio[s0 : s0 + len(w.audio)])
    assert (
        render_clip(sample_clip_spec(4, duration_s=4.0), 2, 32, 48, 12.0).video.tobytes()
        != a.video[:2].tobytes()
    )


def test_shapes_bounce_at_the_walls_with_a_click_at_each() -> None:
    """A horizontal mover touches a wall at each bounce time and each bounce puts a click in the waveform."""
    shape = ShapeSpec("square", "red", "horizontal", x=0.2, y=0.5, radius=0.15, speed=2.0, sign=-1)
    clip = render_clip(ClipSpec((shape,)), 48, 40, 80, 24.0, channels=2)
    t = clip.truth
    assert len(t.bounces) >= 2 and {b.wall for b in t.bounces} == {"left", "right"}
    r = t.radius[0]
    assert t.x.min() >= r - 1e-6 and t.x.max() <= 80 - r + 1e-6
    assert clip.audio.shape == (2, round(48 / 24 * 16000))
    # the click makes the high-passed signal jump within the click's first 2 ms
    hp = np.abs(np.diff(clip.audio.sum(axis=0)))
    for s in t.click_samples():
        if 1 <= s < hp.size - 32:
            assert hp[s : s + 32].max() > 10 * np.median(hp)


def test_pixels_follow_the_truth() -> None:
    """The shape's colour is at its truth centre; the background elsewhere; darkening darkens it."""
    spec = ClipSpec(
        (ShapeSpec("circle", "blue", "vertical", x=0.5, y=0.3, radius=0.2),),
        BackgroundSpec("sand"),
        (Recolour(0.5, 0, "green"), Darken(1.0)),
    )
    clip = render_clip(spec, 16, 48, 48, 12.0)
    t = clip.truth
    for f in (0, 7, 15):
        px = clip.video[f, int(t.y[f, 0]), int(t.x[f, 0])]
        want = SHAPE_COLOURS[COLOUR_NAMES[t.colour[f, 0]]]
        assert np.abs(px.astype(int) - want).max() <= 2
    assert t.colour[5, 0] == COLOUR_NAMES.index("blue") and t.colour[6, 0] == COLOUR_NAMES.index("green")
    assert not t.dark[11] and t.dark[12]
    assert clip.video[12, 0, 0].mean() < 0.5 * clip.video[11, 0, 0].mean()


def test_captions_change_where_the_scene_changes() -> None:
    """A steered clip has two caption spans split at the change frame; the second announces the change."""
    for change in ("recolour", "enter", "darken", "turn"):
        clip = make_steered_clip(7, 30, 32, 32, 12.0, change_frame=13, change=change)
        first, second = clip.captions
        assert (first.start, first.end, second.start, second.end) == (0, 13, 13, 30)
        assert first.announcement is None and second.announcement
        assert first.text != second.text and first.state != second.state
        assert clip.truth.states[12] == first.state and clip.truth.states[13] == second.state
        if change == "enter":  # a shape enters only where there is room: the base scene has one fewer
            assert len(second.state.shapes) == len(first.state.shapes) + 1 <= MAX_SHAPES
            entered = first
    held = make_steered_clip(7, 30, 32, 32, 12.0, change_frame=13, change="enter", vocabulary="heldout")
    assert held.captions[0].state == entered.state and held.captions[0].text != entered.text


def test_sampled_shapes_are_large_and_parallel_movers_never_touch() -> None:
    """World specs 2: radii in RADII (a shape spans more than a 32-px latent cell at 256 px), at most
    MAX_SHAPES, and two shapes moving along the same axis keep their wall lanes apart in every frame."""
    parallel = 0
    for seed in range(60):
        spec = sample_clip_spec(seed, duration_s=4.0, max_events=0)
        assert 1 <= len(spec.shapes) <= MAX_SHAPES
        assert all(RADII[0] <= s.radius <= RADII[1] for s in spec.shapes)
        if len(spec.shapes) == 2 and spec.shapes[0].motion == spec.shapes[1].motion != "still":
            parallel += 1
            t = render_clip(spec, 48, 64, 64, 12.0).truth
            gap = np.hypot(t.x[:, 0] - t.x[:, 1], t.y[:, 0] - t.y[:, 1]) - t.radius[0] - t.radius[1]
            assert gap.min() > 0, seed
    assert parallel >= 5  # the case was exercised


def test_entering_shape_appears_at_its_frame() -> None:
    """A shape that enters at t is absent before frame ceil(t * fps) and present from it."""
    spec = ClipSpec(
        (ShapeSpec("circle", "red", "still", x=0.1),),
        events=(Enter(0.5, ShapeSpec("triangle", "yellow", "still", x=0.9)),),
    )
    t = render_clip(spec, 12, 32, 64, 12.0).truth
    assert t.present[:6, 1].sum() == 0 and t.present[6:, 1].all()


def _two_reds() -> ClipSpec:
    return ClipSpec((ShapeSpec("circle", "red", "still"), ShapeSpec("square", "red", "still")))


def _bad_slot() -> ClipSpec:
    return ClipSpec((ShapeSpec("circle", "red", "still"),), events=(Recolour(1.0, 3, "blue"),))


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: ShapeSpec("hexagon", "red", "still"), "hexagon"),
        (_two_reds, "distinct"),
        (_bad_slot, "slot 3"),
    ],
)
def test_bad_specs_are_refused(build: object, needle: str) -> None:
    """Invalid specs raise ValueError naming the offending value."""
    with pytest.raises(ValueError, match=needle):
        build()  # type: ignore[operator]


def test_heldout_wordings_are_not_training_wordings() -> None:
    """No held-out wording is also a training wording, and the words they share are only the plain ones both
    need (colour names inside compound colours, directions, articles): a held-out paraphrase stays unseen."""
    import re

    from ltx2stream.world import words as W

    def phrases(pool: tuple[object, ...]) -> set[str]:
        return {p for x in pool for p in (x if isinstance(x, tuple) else (x,))}  # type: ignore[union-attr]

    pairs = [v for d in (W.KIND, W.COLOUR, W.BACKGROUND, W.MOTION) for v in d.values()]
    pairs += [W.SPIN, W.BG_NOUN, W.DARK, W.GRADIENT, W.PREP, W.ENTER, W.BECOMES, W.DARKENS]
    train = set().union(*(phrases(a) for a, _ in pairs))
    held = set().union(*(phrases(b) for _, b in pairs))
    assert not train & held
    assert all(len(a) >= 5 for a, _ in (W.KIND["square"], *W.COLOUR.values(), *W.BACKGROUND.values()))
    words = [{w for p in s for w in re.findall(r"[a-z-]+", p)} for s in (train, held)]
    plain = {"a", "and", "blue", "dark", "dim", "down", "green", "grey", "in", "left", "pink", "red", "right"}
    plain |= {"still", "to", "up"}
    assert words[0] & words[1] <= plain
