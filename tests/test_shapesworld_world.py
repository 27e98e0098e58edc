"""ShapesWorld renderer, captions, sentence banks and tokenizers (no models)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
import time

import numpy as np
import pytest
from PIL import Image

from pix2pix_zero import shapesworld as sw
from pix2pix_zero.shapesworld import world as W


def _scenes(n, seed=123, **kw):
    rng = np.random.default_rng(seed)
    return [sw.sample_scene(rng, **kw) for _ in range(n)]


def test_render_is_deterministic_per_seed():
    a = sw.scene_from_seed(7)
    b = sw.scene_from_seed(7)
    c = sw.scene_from_seed(8)
    assert a == b
    assert a != c
    ra, rb = sw.render(a), sw.render(b)
    assert ra.image.dtype == np.uint8 and ra.image.shape == (64, 64, 3)
    assert np.array_equal(ra.image, rb.image)
    assert np.array_equal(ra.masks, rb.masks)
    assert not np.array_equal(ra.image, sw.render(c).image)
    # the scene alone determines the image, also after a JSON round trip
    assert np.array_equal(sw.render(sw.Scene.from_dict(a.to_dict())).image, ra.image)


def test_world_has_the_required_variety():
    assert set(W.SHAPES) >= {"circle", "square", "triangle", "star", "heart"}
    assert len(W.COLORS) >= 6 and len(W.BG_COLORS) >= 6
    assert not set(W.COLORS) & set(W.BG_COLORS)
    assert len(W.REGIONS) == 9 and set(W.SIZE_NAMES) == {"small", "medium", "large"}
    # object colours are clearly distinct from each other and from background colours
    cols = {**W.OBJECT_COLORS, **W.BACKGROUND_COLORS}
    names = list(cols)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d = np.linalg.norm(np.subtract(cols[a], cols[b]))
            assert d > 60, (a, b, d)
    scenes = _scenes(400)
    assert {len(s.objects) for s in scenes} == {1, 2}
    assert {s.background_style for s in scenes} == set(W.BACKGROUND_STYLES)
    assert {o.shape for s in scenes for o in s.objects} == set(W.SHAPES)
    assert {o.region for s in scenes for o in s.objects} == set(W.REGIONS)


def _erode(m, k=1):
    out = m.copy()
    for _ in range(k):
        p = np.pad(out, 1)
        out = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return out


def _dilate(m, k=1):
    return ~_erode(~m, k)


@pytest.mark.parametrize("shape", W.SHAPES)
@pytest.mark.parametrize("style", ["plain", "stripes_v"])
def test_mask_matches_drawn_pixels(shape, style):
    obj = sw.SceneObject(shape, "blue", "large", "center", 0.5, -0.5, 12.0)
    sc = sw.Scene((obj,), "white", style)
    r = sw.render(sc)
    m = r.masks[0]
    img = r.image.astype(int)
    inner = _erode(m, 1)
    assert inner.sum() > 50
    # inside: exactly the object colour; outside: background only
    assert np.abs(img[inner] - np.array(W.OBJECT_COLORS["blue"])).max() <= 1
    bg = W._background("white", style)
    outer = ~_dilate(m, 2)
    assert np.abs(img[outer] - bg[outer]).max() <= 1
    # on the boundary band the pixel is a mix, nearer the object colour where the mask is set
    d_obj = np.abs(img - np.array(W.OBJECT_COLORS["blue"])).sum(-1)
    d_bg = np.abs(img - bg).sum(-1)
    assert (d_obj[m] <= d_bg[m] + 3).mean() > 0.97
    assert (d_obj[~m] >= d_bg[~m] - 3).mean() > 0.97
    # the mask is centred on the object's position
    ys, xs = np.nonzero(m)
    cx, cy = obj.center
    assert abs(xs.mean() - (cx - 0.5)) < 2.5 and abs(ys.mean() - (cy - 0.5)) < 2.5
    assert r.objects[0]["area"] == int(m.sum())


def test_circle_area_and_sizes():
    areas = {}
    for size in W.SIZE_NAMES:
        sc = sw.Scene((sw.SceneObject("circle", "red", size, "center"),), "black")
        areas[size] = sw.render(sc).masks[0].sum()
        r = W.SIZES[size]
        assert abs(areas[size] - np.pi * r * r) / (np.pi * r * r) < 0.08
    assert areas["small"] < areas["medium"] < areas["large"]


def test_two_objects_do_not_overlap_much():
    for sc in _scenes(150, seed=5, num_objects=2):
        a, b = sc.objects
        assert a.region != b.region
        ca, cb = W._coverage(a) >= 0.5, W._coverage(b) >= 0.5
        assert (ca & cb).sum() <= 0.08 * min(ca.sum(), cb.sum()) + 1e-9
        r = sw.render(sc)
        assert not (r.masks[0] & r.masks[1]).any()  # visible masks are disjoint


def test_edit_scene_changes_only_the_shape():
    sc = sw.Scene(
        (
            sw.SceneObject("circle", "red", "medium", "top left", 1.0, -1.0, 20.0),
            sw.SceneObject("star", "yellow", "small", "bottom right"),
        ),
        "gray",
        "gradient_h",
    )
    ed = sw.edit_scene(sc, 0, shape="square")
    o0, e0 = sc.objects[0], ed.objects[0]
    assert e0.shape == "square"
    assert (e0.color, e0.size, e0.region, e0.dx, e0.dy, e0.rotation) == (
        o0.color,
        o0.size,
        o0.region,
        o0.dx,
        o0.dy,
        o0.rotation,
    )
    assert ed.objects[1] == sc.objects[1] and ed.background == sc.background
    assert ed.background_style == sc.background_style
    r0, r1 = sw.render(sc), sw.render(ed)
    assert not np.array_equal(r0.masks[0], r1.masks[0])
    assert np.array_equal(r0.masks[1], r1.masks[1])
    c0 = np.argwhere(r0.masks[0]).mean(0)
    c1 = np.argwhere(r1.masks[0]).mean(0)
    assert np.abs(c0 - c1).max() < 1.5
    assert np.abs(r1.image[_erode(r1.masks[0])].astype(int) - W.OBJECT_COLORS["red"]).max() <= 1
    recol = sw.edit_scene(sc, 1, color="blue")
    assert recol.objects[1].color == "blue" and recol.objects[1].shape == "star"
    with pytest.raises(ValueError):
        sw.edit_scene(sc, 0, background="white")
    with pytest.raises(ValueError):
        sw.edit_scene(sc, 0, shape="hexagon")


def test_a_circle_has_no_rotation_to_keep_so_its_ideal_edit_may_take_any():
    sc = sw.Scene((sw.SceneObject("circle", "red", "large", "center", 0.0, 0.0, 20.0),), "gray", "plain")
    turned, upright = sw.render(sw.edit_scene(sc, 0, rotation=-10.0)).masks[0], sw.render(sc).masks[0]
    assert (
        turned ^ upright
    ).sum() <= 0.02 * upright.sum()  # a circle (a 64-gon) shows no rotation past a few edge pixels
    ideals = sw.ideal_edits(sc, 0, shape="square")
    rotations = [s.objects[0].rotation for s in ideals]
    assert ideals[0] == sw.edit_scene(sc, 0, shape="square")  # its own rotation first, then the world's whole range
    assert rotations[1] == -W.MAX_ROTATION and rotations[-1] == W.MAX_ROTATION and 0.0 in rotations[1:]
    assert all(s.objects[0].shape == "square" and s.objects[0].region == "center" for s in ideals)
    squares = {sw.render(s).masks[0].tobytes() for s in ideals}
    assert len(squares) > 10  # the squares differ: the rotation shows once the shape has corners
    assert sw.ideal_edits(sc, 0, shape="square", rotation=5.0) == [sw.edit_scene(sc, 0, shape="square", rotation=5.0)]
    square_scene = sw.edit_scene(sc, 0, shape="square")  # a square's rotation is visible: one ideal, rotation kept
    assert sw.ideal_edits(square_scene, 0, shape="heart") == [sw.edit_scene(square_scene, 0, shape="heart")]


def test_captions_name_the_right_shapes_and_colours():
    rng = np.random.default_rng(0)
    templates = set()
    for sc in _scenes(300, seed=11):
        want_s = sorted(o.shape for o in sc.objects)
        want_c = sorted(o.color for o in sc.objects)
        can = sw.canonical_caption(sc)
        assert can == sw.canonical_caption(sc)
        p = sw.parse_caption(can)
        assert sorted(p["shapes"]) == want_s and sorted(p["colors"]) == want_c and p["backgrounds"] == [sc.background]
        for o in sc.objects:
            assert f"{o.size} {o.color} {o.shape} in the {o.region}" in can
        for cap in sw.captions(sc, rng, 3):
            p = sw.parse_caption(cap)
            assert sorted(p["shapes"]) == want_s, cap
            assert sorted(p["colors"]) == want_c, cap
            assert p["backgrounds"] in ([], [sc.background]), cap
            templates.add(cap.split(" ")[0] + " " + cap.split(" ")[1])
            assert " a o" not in cap and " a e" not in cap  # "an orange", never "a orange"
    assert len(templates) >= 6  # varied phrasings
    sc = sw.Scene((sw.SceneObject("circle", "red", "small", "top left"),), "gray", "stripes_h")
    assert sw.canonical_caption(sc) == "a small red circle in the top left on a striped gray background"


def test_render_speed():
    scenes = _scenes(300, seed=3)
    t = time.perf_counter()
    for s in scenes:
        sw.render(s)
    rate = len(scenes) / (time.perf_counter() - t)
    assert rate > 500, f"{rate:.0f} scenes/s"


def test_sentence_banks_are_deterministic_and_on_topic(tmp_path):
    a = sw.sentence_bank("circle", n=200)
    assert a == sw.sentence_bank("circle", n=200)
    assert len(a) == len(set(a)) == 200
    assert all("circle" in W.caption_words(s) for s in a)
    b = sw.sentence_bank("blue", n=100)
    assert all("blue" in W.caption_words(s) for s in b)
    files = sw.write_sentence_banks(tmp_path, n=20)
    assert len(files) == len(W.SHAPES) + len(W.COLORS) + len(W.BG_COLORS)


def test_bundled_sentence_banks():
    folder = sw.BUNDLED_MODEL_DIR / "sentences"
    for w in list(W.SHAPES) + list(W.COLORS):
        lines = (folder / f"{w}.txt").read_text().splitlines()
        assert 500 <= len(lines) <= 1000 and len(set(lines)) == len(lines), w
        assert all(w in W.caption_words(s) for s in lines), w
        assert lines[:50] == sw.sentence_bank(w, n=len(lines))[:50]


def test_examples_are_shipped_with_ground_truth():
    names = sw.list_examples()
    assert 4 <= len(names) <= 6
    for n in names:
        img, scene, caption = sw.load_example(n)
        assert img.size == (64, 64)
        assert np.array_equal(np.asarray(img), sw.render(scene).image)
        assert caption == sw.canonical_caption(scene)


def _render(*args):
    from click.testing import CliRunner

    from pix2pix_zero.cli import main

    return CliRunner().invoke(main, ["shapesworld", "render", *map(str, args)])


def test_render_refuses_an_earlier_render_unless_overwrite_and_then_leaves_no_stale_scene(tmp_path):
    out = tmp_path / "scenes"
    assert _render(out, "--num", 4).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 9 and not list(out.glob(".*"))  # 4 PNGs, 4 JSONs, captions.txt; no temporary file left

    refused = _render(out, "--num", 2, "--seed", 1)
    assert refused.exit_code == 1
    assert "scene_000.png exists already" in refused.output and "--overwrite" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written

    only_scenes = tmp_path / "only-scenes"  # an earlier scene this render would not name is refused as well
    only_scenes.mkdir()
    (only_scenes / "scene_007.png").write_bytes(before["scene_000.png"])
    refused = _render(only_scenes, "--num", 2)
    assert refused.exit_code == 1 and "scene_007.png exists already" in refused.output
    assert [p.name for p in only_scenes.iterdir()] == ["scene_007.png"]

    replaced = _render(out, "--num", 2, "--seed", 1, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["captions.txt", "scene_000.json", "scene_000.png", "scene_001.json", "scene_001.png"]
    captions = (out / "captions.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in captions] == ["scene_000.png", "scene_001.png"]
    truth = json.loads((out / "scene_001.json").read_text())
    assert captions[1].split("\t")[1] == truth["captions"][0]
    assert (
        sw.render(sw.Scene.from_dict(truth["scene"])).image.tolist()
        == np.asarray(Image.open(out / "scene_001.png")).tolist()
    )


@pytest.mark.parametrize(
    "option, value",
    [("--num", -1), ("--num", 0), ("--scale", 0), ("--scale", -2), ("--scale", 17), ("--seed", -5)],
)
def test_render_refuses_out_of_range_numbers_before_writing(tmp_path, option, value):
    result = _render(tmp_path / "out", option, value)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_render_scales_up_to_1024_pixels(tmp_path):
    assert _render(tmp_path, "--num", 1, "--scale", 16).exit_code == 0
    assert Image.open(tmp_path / "scene_000.png").size == (1024, 1024)
    assert "1<=x<=16" in _render("--help").output
