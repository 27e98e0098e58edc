"""The quality benchmark: every method runs on the same components, rows are scored, resumable and summarized."""

import json
import shutil

import pytest

from pix2pix_zero import Pix2PixZero
from pix2pix_zero.bench import quality
from pix2pix_zero.files import safe_name


@pytest.fixture(scope="module")
def model_with_clip(tiny_model_dir, tiny_clip_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-with-clip") / "model"
    shutil.copytree(tiny_model_dir, folder)
    shutil.copytree(tiny_clip_dir, folder / "clip")
    return folder


def test_cases_are_fixed_by_seed_and_name_the_task(model_with_clip):
    cases = quality.shapesworld_cases(["circle->square", "star->heart"], num_scenes=3)
    assert [c.id for c in cases] == [f"{t}-{i:04d}" for t in ("circle2square", "star2heart") for i in range(3)]
    assert all(c.source in c.caption for c in cases)
    assert cases == quality.shapesworld_cases(["circle->square", "star->heart"], num_scenes=3)
    with pytest.raises(ValueError, match="swap shapes"):
        quality.shapesworld_cases(["cat->dog"], 1)
    other = quality.shapesworld_cases(["circle->square", "star->heart"], num_scenes=3, scene_set=1)  # scenes to tune on
    assert [c.id for c in other] == [f"{t}-set1-{i:04d}" for t in ("circle2square", "star2heart") for i in range(3)]
    assert not {json.dumps(c.scene, sort_keys=True) for c in other} & {
        json.dumps(c.scene, sort_keys=True) for c in cases
    }


def test_rows_resume_only_under_the_settings_that_made_them(model_with_clip, cache_dir, tmp_path):
    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    scorer = quality.ShapesWorldScorer(str(model_with_clip / "clip"))
    no_edit = [quality.methods(3)["reference: no edit (VAE round trip)"]]
    first, second = (quality.shapesworld_cases([task], num_scenes=1) for task in ("circle->square", "heart->circle"))
    quality.run_quality(editor, first, no_edit, scorer, tmp_path, progress=False, settings={"steps": 3})
    rows = quality.run_quality(editor, second, no_edit, scorer, tmp_path, progress=False, settings={"steps": 3})
    assert [c.id for c in quality.read_cases(tmp_path / "cases.jsonl")] == [
        first[0].id,
        second[0].id,
    ]  # both runs' cases kept
    assert [r["id"] for r in rows] == [first[0].id, second[0].id]
    with pytest.raises(ValueError, match="steps differ"):
        quality.run_quality(editor, first, no_edit, scorer, tmp_path, progress=False, settings={"steps": 50})

    def tuned_editor(tuning: dict) -> Pix2PixZero:
        (model_with_clip / "pix2pix_zero.json").write_text(json.dumps({"presets": {"default": tuning}}))
        return Pix2PixZero.from_pretrained(
            model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
        )

    try:
        reasoned = tmp_path / "reasoned"
        quality.run_quality(tuned_editor({"why": "first words"}), first, no_edit, scorer, reasoned, progress=False)
        reworded = quality.run_quality(
            tuned_editor({"why": "other words"}), first, no_edit, scorer, reasoned, progress=False
        )
        assert len(reworded) == 1  # a reworded reason is not a new setting: the row is resumed, not refused
        retuned = tuned_editor({"edit": {"xa_guidance": 0.03}})
        with pytest.raises(
            ValueError, match="presets differ"
        ):  # `pix2pix-zero` rows made at 0.1 are not resumed at 0.03
            quality.run_quality(retuned, first, no_edit, scorer, tmp_path, progress=False, settings={"steps": 3})
    finally:
        (model_with_clip / "pix2pix_zero.json").unlink()
    # a run recorded before an option existed resumes while the option is at its default (the earlier behaviour)
    recorded = json.loads((tmp_path / quality.RUN_FILE).read_text())
    for preset in recorded["presets"].values():
        del preset["edit"]["late_guidance_factor"], preset["edit"]["late_guidance_movement"]
    (tmp_path / quality.RUN_FILE).write_text(json.dumps(recorded))
    assert (
        len(quality.run_quality(editor, first, no_edit, scorer, tmp_path, progress=False, settings={"steps": 3})) == 2
    )
    try:
        with pytest.raises(ValueError, match="presets differ"):  # ... and not once the option is on
            quality.run_quality(
                tuned_editor({"edit": {"late_guidance_factor": 1.5}}),
                first,
                no_edit,
                scorer,
                tmp_path,
                progress=False,
                settings={"steps": 3},
            )
    finally:
        (model_with_clip / "pix2pix_zero.json").unlink()
    (tmp_path / quality.RUN_FILE).unlink()
    with pytest.raises(ValueError, match="no run.json"):
        quality.run_quality(editor, first, no_edit, scorer, tmp_path, progress=False, settings={"steps": 3})


def test_every_method_runs_and_rows_resume(model_with_clip, cache_dir, tmp_path):
    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    cases = quality.shapesworld_cases(["circle->square"], num_scenes=1)
    table = quality.methods(num_steps=3)
    scorer = quality.ShapesWorldScorer(str(model_with_clip / "clip"))
    rows = quality.run_quality(editor, cases, list(table.values()), scorer, tmp_path, progress=False)
    assert len(rows) == len(table) == 35
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows if r["status"] != "ok"]
    for row in rows:
        if row["method"].startswith(
            "pix2pix-zero, synthetic mode"
        ):  # its own generation: no input to compare pixels with
            assert row["clip_acc"] in (0.0, 1.0) and "iou_ideal" not in row
            continue
        assert 0.0 <= row["iou_ideal"] <= 1.0 and row["clip_acc"] in (0.0, 1.0) and row["structure"] >= 0.0
    assert (tmp_path / "examples" / "circle2square-0000--input.png").is_file()
    again = quality.run_quality(editor, cases, list(table.values()), scorer, tmp_path, progress=False)
    assert len(again) == 35  # nothing was run twice
    summary = quality.summarize(again)
    assert summary[("pix2pix-zero", "all")]["n"] == 1
    text = quality.format_table(summary)
    assert "| pix2pix-zero | 1 |" in text and "IoU ideal" in text and "prompt-to-prompt (CFG 2)" in text
    figure = quality.plot_quality(summary, tmp_path / "examples", tmp_path / "figure.png")
    assert figure is not None and figure.stat().st_size > 1000


def test_the_direction_rows_take_the_captions_words_or_the_sentence_banks(model_with_clip, cache_dir):
    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    case = quality.shapesworld_cases(["circle->square"], num_scenes=1)[0]
    table, image = quality.methods(3), quality._case_image(case)
    by_caption = table["pix2pix-zero, caption direction"].run(editor, image, case).metadata()
    assert by_caption["direction"] == "caption"
    assert by_caption["edited_caption"] == case.caption.replace("circle", "square")
    before = table["pix2pix-zero, sentence-direction default"].run(editor, image, case).metadata()
    assert before["direction"] == "sentences" and "sentences" in before
    assert {k: before["edit_config"][k] for k in quality.SENTENCE_DEFAULT} == quality.SENTENCE_DEFAULT


def test_the_earlier_defaults_rows_keep_their_negative_prompt_whatever_default_becomes(model_with_clip, cache_dir):
    (model_with_clip / "pix2pix_zero.json").write_text(
        json.dumps({"presets": {"default": {"edit": {"negative_prompt": "empty"}}}})
    )
    try:
        editor = Pix2PixZero.from_pretrained(
            model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
        )
        case = quality.shapesworld_cases(["circle->square"], num_scenes=1)[0]
        table, image = quality.methods(3), quality._case_image(case)
        negative = {
            name: table[name].run(editor, image, case).metadata()["edit_config"]["negative_prompt"]
            for name in (
                "pix2pix-zero",
                "pix2pix-zero, sentence-direction default",
                "pix2pix-zero, CFG 2 against the caption",
            )
        }
    finally:
        (model_with_clip / "pix2pix_zero.json").unlink()
    assert negative == {
        "pix2pix-zero": "empty",  # the model's tuned default
        "pix2pix-zero, sentence-direction default": "caption",
        "pix2pix-zero, CFG 2 against the caption": "caption",
    }


def test_the_no_edit_reference_is_the_reconstruction(model_with_clip, cache_dir):
    import numpy as np

    from pix2pix_zero import baselines

    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    case = quality.shapesworld_cases(["circle->square"], num_scenes=1)[0]
    result = baselines.no_edit(editor, quality._case_image(case), case.source, case.target, case.caption)
    assert np.array_equal(np.asarray(result.image), np.asarray(result.reconstruction))
    assert result.config["method"] == "no edit" and result.edits == [{"source": "circle", "target": "square"}]
    assert result.input.size == result.image.size


def test_the_target_from_noise_reference_is_seeded_text_to_image_of_the_swapped_caption(model_with_clip, cache_dir):
    import numpy as np

    from pix2pix_zero import baselines

    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    case = quality.shapesworld_cases(["circle->square"], num_scenes=1)[0]
    image = quality._case_image(case)
    first, again, other = (
        baselines.target_from_noise(editor, image, case.source, case.target, case.caption, 3, seed=s) for s in (0, 0, 1)
    )
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))
    assert first.image.size == first.input.size == editor.prepare_image(image).size
    assert first.config["method"] == "target caption from noise" and first.config["seed"] == 0


def test_a_failing_case_is_recorded_not_fatal(model_with_clip, cache_dir, tmp_path):
    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    case = quality.shapesworld_cases(["circle->square"], num_scenes=1)[0]

    def broken(editor, image, case):
        raise ValueError("the caption does not contain 'circle'")

    method = quality.Method("broken", broken, {})
    rows = quality.run_quality(
        editor, [case], [method], quality.ShapesWorldScorer(str(model_with_clip / "clip")), tmp_path, progress=False
    )
    assert rows[0]["status"] == "error" and "does not contain 'circle'" in rows[0]["error"]
    assert quality.summarize(rows)[(method.name, "all")]["errors"] == 1
    assert (
        quality.plot_quality(quality.summarize(rows), tmp_path / "examples", tmp_path / "figure.png") is None
    )  # nothing to draw


class _Rendered:
    """An EditResult stand-in whose edit is a given render (an oracle editor)."""

    def __init__(self, source, edited):
        from PIL import Image

        self.input = self.reconstruction = Image.fromarray(source)
        self.image = Image.fromarray(edited)


def test_shapesworld_scorer_on_oracle_edits():
    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR, world

    scorer = quality.ShapesWorldScorer(str(BUNDLED_MODEL_DIR / "clip"))
    case = quality.shapesworld_cases(["circle->square"], num_scenes=1)[0]
    scene = world.Scene.from_dict(case.scene)
    source = world.render(scene).image
    ideal = world.render(world.edit_scene(scene, 0, shape="square")).image
    perfect = scorer(case, _Rendered(source, ideal))
    assert perfect["landed"] == 1.0 and perfect["iou_ideal"] > 0.95 and perfect["color_kept"] == 1.0
    assert perfect["psnr_outside"] > 50 and perfect["centroid_shift"] < 0.5
    assert (perfect["kept_source"], perfect["other_shape"], perfect["judge_shapes"]) == (0.0, 0.0, ["square"])
    unchanged = scorer(case, _Rendered(source, source))
    assert (
        unchanged["landed"] == 0.0 and unchanged["iou_source"] > 0.95 and unchanged["iou_ideal"] < perfect["iou_ideal"]
    )
    assert (unchanged["kept_source"], unchanged["other_shape"], unchanged["judge_shapes"]) == (1.0, 0.0, ["circle"])
    assert perfect["iou_ideal_any_rotation"] == perfect["iou_ideal"]  # its own rotation is the best one
    upright = world.render(
        world.edit_scene(scene, 0, shape="square", rotation=0.0)
    ).image  # the circle's rotation is unseen
    turned = scorer(case, _Rendered(source, upright))
    assert abs(scene.objects[0].rotation) > 5
    assert (
        turned["iou_ideal"] < perfect["iou_ideal"] - 0.05
        and turned["iou_ideal_any_rotation"] > perfect["iou_ideal"] - 0.02
    )
    star = world.render(world.edit_scene(scene, 0, shape="star")).image  # neither the target nor the source
    elsewhere = scorer(case, _Rendered(source, star))
    assert (elsewhere["landed"], elsewhere["kept_source"], elsewhere["other_shape"], elsewhere["judge_shapes"]) == (
        0.0,
        0.0,
        1.0,
        ["star"],
    )


def test_sweep_methods_vary_one_setting_of_the_default():
    swept = quality.sweep_methods("xa_guidance=0.1,1,10", num_steps=3)
    assert [m.name for m in swept] == [
        "pix2pix-zero, xa_guidance=0.1",
        "pix2pix-zero, xa_guidance=1",
        "pix2pix-zero, xa_guidance=10",
    ]
    assert [m.settings["xa_guidance"] for m in swept] == [0.1, 1.0, 10.0]
    assert quality.sweep_methods("latent_sampling=sample")[0].settings == {"latent_sampling": "sample"}
    for bad in ("xa_guidance", "no_such_field=1", "num_steps=5"):
        with pytest.raises(ValueError, match="a sweep is FIELD"):
            quality.sweep_methods(bad)


def test_sweep_reads_booleans_as_words():
    """'false' is a word, not a non-empty (truthy) string."""
    assert [m.settings["fuse_reference"] for m in quality.sweep_methods("fuse_reference=false,True,0,yes")] == [
        False,
        True,
        False,
        True,
    ]
    with pytest.raises(ValueError, match="expected true or false"):
        quality.sweep_methods("fuse_reference=maybe")


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory):
    import torch
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-vit")
    ViTModel(
        ViTConfig(
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=1,
            image_size=224,
            patch_size=32,
        ),
        add_pooling_layer=False,
    ).save_pretrained(str(folder))
    return folder


def test_real_images_with_masks_score_the_background(model_with_clip, tiny_vit_dir, cache_dir, tmp_path):
    import json

    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from pix2pix_zero.cli import main

    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir(), masks.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(images / f"{name}.png")
        edited = np.zeros((64, 96), np.uint8)  # twice the image's size: masks are resized to the image
        edited[16:48, 24:72] = 255
        Image.fromarray(edited).save(masks / f"{name}.png")
    (tmp_path / "captions.json").write_text(json.dumps({"a.png": "a photo of a cat", "b.png": "a photo of a cat"}))
    args = [
        "bench",
        "quality",
        "-m",
        str(model_with_clip),
        "--images",
        str(images),
        "--masks",
        str(masks),
        "--task",
        "cat->dog",
        "--captions",
        str(tmp_path / "captions.json"),
        "--clip-model",
        str(model_with_clip / "clip"),
        "--dino-model",
        str(tiny_vit_dir),
        "--method",
        "reference: no edit (VAE round trip)",
        "--steps",
        "3",
        "-o",
        str(out),
        "-q",
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    from pix2pix_zero.bench import metrics

    row = next(r for r in rows if r["id"] == "cat2dog-a")  # the task's example: its input and edit are saved
    given = Image.open(out / "examples" / "cat2dog-a--input.png")
    edit = Image.open(out / "examples" / f"cat2dog-a--{safe_name('reference: no edit (VAE round trip)', 'method')}.png")
    edited = np.asarray(Image.open(masks / "a.png").resize(given.size, Image.NEAREST)) >= 128
    assert 0 < edited.mean() < 1
    assert row["psnr_background"] == pytest.approx(metrics.psnr(given, edit, ~edited), abs=1e-6)
    assert row["psnr_background"] != pytest.approx(metrics.psnr(given, edit), abs=1e-3)
    assert "PSNR background dB" in (out / "table.md").read_text() and (out / "figure.png").stat().st_size > 1000
    assert "by object size" not in (out / "table.md").read_text()  # real images have no ground-truth sizes

    Image.new("L", (64, 64)).save(masks / "a.png")  # square, for a 3:2 image
    rows = quality.run_quality(
        Pix2PixZero.from_pretrained(model_with_clip, cache_dir=cache_dir, progress=False),
        quality.folder_cases(images, ["cat->dog"], {"a.png": "a cat"}, masks)[:1],
        [quality.methods(3)["reference: no edit (VAE round trip)"]],
        quality.RealImageScorer(str(model_with_clip / "clip"), str(tiny_vit_dir)),
        tmp_path / "out2",
        progress=False,
    )
    assert rows[0]["status"] == "error" and "not the shape of its image (48x32)" in rows[0]["error"]
    (masks / "b.png").unlink()
    missing = CliRunner().invoke(main, args[:-2] + [str(tmp_path / "out3"), "-q"])
    assert missing.exit_code != 0 and "no mask" in missing.output and "b.png" in missing.output
    no_images = CliRunner().invoke(main, ["bench", "quality", "--masks", str(masks), "-o", str(tmp_path / "out4")])
    assert no_images.exit_code != 0 and "--images" in no_images.output
    no_masks = CliRunner().invoke(
        main, ["bench", "quality", "--images", str(images), "--task", "cat->dog", "--lpips", "squeeze"]
    )
    assert no_masks.exit_code != 0 and "--masks" in no_masks.output
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:  # LPIPS cannot load here: the command says what it needs
        (masks / "b.png").write_bytes((masks / "a.png").read_bytes())
        no_lpips = CliRunner().invoke(main, args[:-2] + [str(tmp_path / "out5"), "--lpips", "squeeze"])
        assert no_lpips.exit_code == 1 and ("torchvision" in no_lpips.output or "torchmetrics" in no_lpips.output), (
            no_lpips.output
        )


def test_the_by_size_table_counts_landings_and_each_failure_kind():
    cases = quality.shapesworld_cases(["circle->square"], num_scenes=6)
    sizes = [c.scene["objects"][0]["size"] for c in cases]
    outcomes = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0), (0, 0, 1), (1, 0, 0)]
    rows = [
        {
            "method": "m",
            "id": c.id,
            "task": c.task,
            "status": "ok",
            "landed": float(a),
            "kept_source": float(b),
            "other_shape": float(o),
        }
        for c, (a, b, o) in zip(cases, outcomes)
    ]
    rows.append(
        {"method": "m", "id": cases[0].id, "task": cases[0].task, "status": "error", "error": "x"}
    )  # not counted
    rows.append(
        {"method": "m", "id": "elsewhere", "task": "square->circle", "status": "ok", "landed": 1.0}
    )  # other task
    rows.append(
        {"method": "m", "id": cases[1].id, "task": cases[1].task, "status": "ok", "iou_ideal": 0.5}
    )  # no judge: not counted
    text = quality.format_by_size(rows, cases, "circle->square")
    header, _, line = text.splitlines()
    shown = [s for s in ("small", "medium", "large") if s in sizes]
    assert header == "| method | " + " | ".join(f"landed, {s}" for s in shown) + " |"
    cells = line.strip("| ").split(" | ")[1:]
    for size, cell in zip(shown, cells):
        picked = [o for s, o in zip(sizes, outcomes) if s == size]
        landed, kept, other = (sum(o[i] for o in picked) for i in range(3))
        failures = ", ".join(f"{k} {v}" for k, v in (("k", kept), ("o", other)) if v)
        assert cell == f"{landed}/{len(picked)}" + (f" ({failures})" if failures else "")
    assert quality.format_by_size(rows, cases, "heart->circle") is None
    assert (
        quality.format_by_size(
            rows, [quality.Case("x", "circle->square", "circle", "square", "a photo")], "circle->square"
        )
        is None
    )


def test_the_shapesworld_report_splits_each_task_by_object_size(model_with_clip, tmp_path):
    from click.testing import CliRunner

    from pix2pix_zero.cli import main
    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR

    judged, out = tmp_path / "model", tmp_path / "out"
    shutil.copytree(model_with_clip, judged)
    shutil.copytree(BUNDLED_MODEL_DIR / "judge", judged / "judge")  # the bundled judge reads any 64 px scene
    args = [
        "bench",
        "quality",
        "-m",
        str(judged),
        "--task",
        "circle->square",
        "--num-scenes",
        "2",
        "--steps",
        "3",
        "--method",
        "reference: no edit (VAE round trip)",
        "-o",
        str(out),
        "-q",
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    table = (out / "table.md").read_text()
    assert "### circle->square, by object size" in table and "### circle->square, by object size" in result.output
    assert all("landed" in r for r in rows)
    assert table.split("by object size")[1].strip() == quality.format_by_size(
        rows, quality.read_cases(out / "cases.jsonl"), "circle->square"
    )


def test_shape_fidelity_is_near_one_on_clean_renders_and_low_on_concave_or_blobby_shapes():
    import numpy as np

    from pix2pix_zero.bench.metrics import shape_fidelity
    from pix2pix_zero.shapesworld import world

    for shape in world.SHAPES:
        obj = world.SceneObject(shape, "red", "large", "center", 0.7, -1.2, 17.0)
        mask = world.render(world.Scene((obj,))).masks[0]
        assert shape_fidelity(mask, shape) > 0.95, shape
    triangle = world.render(
        world.Scene((world.SceneObject("triangle", "red", "large", "center", rotation=10.0),))
    ).masks[0]
    assert shape_fidelity(triangle, "star") < 0.75 and shape_fidelity(triangle, "square") < 0.8  # another shape
    # a concave three-pointed "triangle": each edge pushed in towards the centre
    corners = world.shape_outline("triangle", (32.0, 32.0), 12.0)
    middles = [(corners[i] + corners[(i + 1) % 3]) / 2 for i in range(3)]
    pinched = np.array([p for i in range(3) for p in (corners[i], 32.0 + 0.45 * (middles[i] - 32.0))])
    concave = world.polygon_coverage(pinched) >= 0.5
    assert shape_fidelity(concave, "triangle") < world_clean_threshold()
    # a blobby square: a square with a round bump on one side
    square = world.render(world.Scene((world.SceneObject("square", "red", "large", "center"),))).masks[0]
    yy, xx = np.mgrid[:64, :64]
    blob = square | ((xx - 44) ** 2 + (yy - 32) ** 2 <= 36)
    assert shape_fidelity(blob, "square") < world_clean_threshold() < shape_fidelity(square, "square")
    assert shape_fidelity(np.zeros((64, 64), bool), "circle") == 0.0


def world_clean_threshold() -> float:
    return quality.CLEAN_FIDELITY


def test_two_object_cases_edit_the_source_object_and_keep_the_other_apart():
    cases = quality.shapesworld_cases(["circle->heart, two objects", "square->triangle, two objects"], num_scenes=6)
    assert [c.id for c in cases[:2]] == ["circle2heart-two-0000", "circle2heart-two-0001"]
    for case in cases:
        objects = case.scene["objects"]
        assert len(objects) == 2 and objects[case.edit_object]["shape"] == case.source
        assert objects[1 - case.edit_object]["shape"] not in (case.source, case.target)
    assert {c.edit_object for c in cases} == {0, 1}  # the edited object is sometimes the second
    stratified = quality.shapesworld_cases(["circle->square"], num_scenes=9, scene_set=2, stratify_sizes=True)
    sizes = [c.scene["objects"][0]["size"] for c in stratified]
    assert sizes == ["small", "medium", "large"] * 3  # in turn: any first 3n cases hold n of each size
    assert all(c.id.startswith("circle2square-set2s-") for c in stratified)


def test_two_object_scoring_names_the_object_that_changed():
    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR, world

    scorer = quality.ShapesWorldScorer(str(BUNDLED_MODEL_DIR / "clip"))
    case = quality.shapesworld_cases(["circle->square, two objects"], num_scenes=1)[0]
    scene, k = world.Scene.from_dict(case.scene), case.edit_object
    other = 1 - k
    source = world.render(scene).image
    right = scorer(case, _Rendered(source, world.render(world.edit_scene(scene, k, shape="square")).image))
    assert right["landed"] == right["right_object"] == right["other_shape_kept"] == right["other_color_kept"] == 1.0
    assert right["wrong_object"] == 0.0 and right["psnr_other"] > 50 and right["fidelity"] > quality.CLEAN_FIDELITY
    assert right["landed_cleanly"] == 1.0 and right["iou_ideal"] > 0.9
    other_shape = next(s for s in world.SHAPES if s not in ("circle", "square", scene.objects[other].shape))
    wrong = scorer(case, _Rendered(source, world.render(world.edit_scene(scene, other, shape=other_shape)).image))
    assert wrong["right_object"] == 0.0 and wrong["wrong_object"] == 1.0 and wrong["other_shape_kept"] == 0.0
    assert wrong["landed"] == 0.0 and wrong["edited_object_changed"] == 0.0 and wrong["psnr_other"] < 30
    recoloured = next(c for c in world.COLORS if c != scene.objects[other].color)
    both = world.edit_scene(world.edit_scene(scene, k, shape="square"), other, color=recoloured)
    painted = scorer(case, _Rendered(source, world.render(both).image))
    assert painted["right_object"] == 1.0 and painted["other_color_kept"] == 0.0  # shape kept, colour not


def test_caption_conditions(model_with_clip, cache_dir):
    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "a red thing", cache_dir=cache_dir, progress=False
    )
    cases = quality.shapesworld_cases(["circle->square"], num_scenes=2)
    assert quality.captioned_cases(editor, cases, "exact") == cases
    captioned = quality.captioned_cases(editor, cases, "captioner")
    assert [c.caption for c in captioned] == ["a red thing"] * 2 and [c.id for c in captioned] == [c.id for c in cases]
    with pytest.raises(ValueError, match="'exact' or 'captioner'"):
        quality.captioned_cases(editor, cases, "blip")
    assert quality.has_word("a red Circle on white", "circle") and not quality.has_word("a red circles", "circle")


def test_a_word_swap_without_its_source_word_keeps_the_image_and_does_not_land(model_with_clip, cache_dir, tmp_path):
    import numpy as np

    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR

    editor = Pix2PixZero.from_pretrained(
        model_with_clip,
        captioner=lambda image: "a red square on a white background",
        cache_dir=cache_dir,
        progress=False,
    )
    cases = quality.captioned_cases(editor, quality.shapesworld_cases(["circle->square"], num_scenes=1), "captioner")
    table = quality.methods(3)
    chosen = [table["DDIM + word swap (no CFG)"], table["prompt-to-prompt (CFG 2)"], table["pix2pix-zero"]]
    scorer = quality.ShapesWorldScorer(str(model_with_clip / "clip"), str(BUNDLED_MODEL_DIR / "judge"))
    rows = {
        r["method"]: r
        for r in quality.run_quality(
            editor, cases, chosen, scorer, tmp_path, progress=False, settings={"steps": 3, "captions": "captioner"}
        )
    }
    for name in ("DDIM + word swap (no CFG)", "prompt-to-prompt (CFG 2)"):
        assert rows[name]["status"] == "ok" and rows[name]["source_word_missing"] == 1.0
        assert rows[name]["landed"] == rows[name]["landed_cleanly"] == 0.0
    assert rows["pix2pix-zero"]["status"] == "ok" and "source_word_missing" not in rows["pix2pix-zero"]  # needs no word
    kept = np.asarray(quality.baselines.no_edit(editor, quality._case_image(cases[0]), "circle", "square", "").image)
    example = tmp_path / "examples" / f"{cases[0].id}--{quality.safe_name('DDIM + word swap (no CFG)', 'method')}.png"
    assert np.array_equal(np.asarray(quality.load_image(example)), kept)
    with pytest.raises(ValueError, match="captions differ"):  # rows under the exact captions are not resumed here
        quality.run_quality(editor, cases, chosen, scorer, tmp_path, progress=False, settings={"steps": 3})


def test_two_object_rows_resume(model_with_clip, cache_dir, tmp_path):
    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    cases = quality.shapesworld_cases(["circle->heart, two objects"], num_scenes=2)
    no_edit = [quality.methods(3)["reference: no edit (VAE round trip)"]]
    scorer = quality.ShapesWorldScorer(str(model_with_clip / "clip"))
    quality.run_quality(editor, cases[:1], no_edit, scorer, tmp_path, progress=False, settings={"steps": 3})
    rows = quality.run_quality(editor, cases, no_edit, scorer, tmp_path, progress=False, settings={"steps": 3})
    assert [r["id"] for r in rows] == [c.id for c in cases]  # the first row was not made again
    assert all("psnr_other" in r and "fidelity" in r for r in rows)
    assert [c.edit_object for c in quality.read_cases(tmp_path / "cases.jsonl")] == [c.edit_object for c in cases]
    text = quality.format_table(quality.summarize(rows))
    assert "PSNR other object dB" in text and "shape fidelity" in text


def test_the_user_mask_row_edits_only_near_the_object(model_with_clip, cache_dir):
    import numpy as np

    from pix2pix_zero.shapesworld import world

    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    case = quality.shapesworld_cases(["circle->heart, two objects"], num_scenes=1)[0]
    mask = np.asarray(quality.user_mask(case)) > 0
    drawn = world.render(world.Scene.from_dict(case.scene)).masks
    assert (
        mask[drawn[case.edit_object]].all() and mask.sum() > drawn[case.edit_object].sum()
    )  # covers it, with a margin
    assert not (mask & drawn[1 - case.edit_object]).any()  # these scenes keep the objects apart
    result = quality.methods(3)["pix2pix-zero, user mask"].run(editor, quality._case_image(case), case)
    small = np.asarray(quality.user_mask(case).resize(result.image.size)) > 0  # the tiny model edits at its own size
    far = ~quality._dilate(small, 2)  # beyond the mask and its soft edge (mask_feather 2) the pixels are the input's
    assert far.sum() > 0.2 * far.size, far.sum()
    assert np.array_equal(np.asarray(result.image)[far], np.asarray(result.input)[far])
    assert not np.array_equal(np.asarray(result.image), np.asarray(result.input))


def test_the_comparison_figure_shows_each_case_with_its_verdicts(model_with_clip, cache_dir, tmp_path):
    from pix2pix_zero.images import load_image

    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    cases = quality.shapesworld_cases(["circle->square"], num_scenes=2)
    table = quality.methods(3)
    chosen = [table["reference: no edit (VAE round trip)"], table["pix2pix-zero, user mask"]]
    quality.run_quality(
        editor,
        cases,
        chosen,
        quality.ShapesWorldScorer(str(model_with_clip / "clip")),
        tmp_path,
        progress=False,
        examples_per_task=2,
    )
    assert (
        tmp_path / "examples" / "masks" / f"{cases[1].id}--{quality.safe_name('pix2pix-zero, user mask', 'method')}.png"
    ).is_file()
    path = quality.comparison_figure(
        tmp_path,
        [c.id for c in cases],
        [("none", chosen[0].name), ("masked", chosen[1].name)],
        chosen[1].name,
        tmp_path / "figure.png",
    )
    figure = load_image(path)
    assert figure.width == 4 * 200 and figure.height == 2 * (200 + 28)  # input, two methods, the mask; a row per case
    with pytest.raises(ValueError, match="no row of 'pix2pix-zero'"):
        quality.comparison_figure(tmp_path, [cases[0].id], [("ours", "pix2pix-zero")], None, tmp_path / "other.png")


def test_dilation_stops_at_the_image_edges():
    import numpy as np

    mask = np.zeros((8, 8), bool)
    mask[0, 3] = True  # an object touching the top edge
    grown = quality._dilate(mask, 2)
    assert grown[:3, 1:6].all() and grown.sum() == 15  # 3 rows (the edge cuts the other 2) x 5 columns
    assert not grown[-2:].any()  # nothing wraps round to the bottom


def test_the_synthetic_mode_row_is_judged_on_its_own_generation(model_with_clip, cache_dir, tmp_path):
    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR

    editor = Pix2PixZero.from_pretrained(
        model_with_clip, captioner=lambda image: "unused", cache_dir=cache_dir, progress=False
    )
    cases = quality.shapesworld_cases(["circle->square"], num_scenes=1)
    method = quality.methods(3)["pix2pix-zero, synthetic mode (generate from the caption)"]
    scorer = quality.ShapesWorldScorer(str(model_with_clip / "clip"), str(BUNDLED_MODEL_DIR / "judge"))
    row = quality.run_quality(editor, cases, [method], scorer, tmp_path, progress=False)[0]
    assert row["status"] == "ok", row.get("error")
    assert row["landed"] + row["kept_source"] + row["other_shape"] == 1.0 and row["generated_scene"] in (0.0, 1.0)
    assert "psnr_outside" not in row and "iou_ideal" not in row  # no rendered input to compare pixels with
    assert row["psnr_generation"] > 0  # the edit against its own generation, the one input it has


def test_iou_over_landed_edits_leaves_out_the_edits_that_did_not_happen():
    def row(method, landed, iou):
        return {"method": method, "task": "circle->square", "status": "ok", "landed": landed, "iou_ideal": iou}

    summary = quality.summarize(
        [row("a", 1.0, 0.80), row("a", 0.0, 0.90), row("a", 1.0, 0.70), row("never", 0.0, 0.85)]
    )
    a, never = summary[("a", "circle->square")], summary[("never", "circle->square")]
    assert a["iou_ideal"] == pytest.approx(0.80) and a["iou_ideal_landed"] == pytest.approx(0.75)
    assert "iou_ideal_landed" not in never  # no landed edit: nothing to average, shown as "–"
    assert "IoU ideal, landed edits" in quality.format_table(summary, "circle->square")


def test_synthetic_landing_is_also_read_over_the_inputs_drawn_as_the_caption_says():
    def row(landed, drawn):
        return {"method": "s", "task": "circle->square", "status": "ok", "landed": landed, "generated_scene": drawn}

    cell = quality.summarize([row(1.0, 1.0), row(0.0, 1.0), row(0.0, 0.0), row(0.0, 0.0)])[("s", "circle->square")]
    assert cell["landed"] == pytest.approx(0.25) and cell["landed_where_drawn"] == pytest.approx(0.5)
    real = quality.summarize([{"method": "r", "task": "t", "status": "ok", "landed": 1.0}])[("r", "t")]
    assert "landed_where_drawn" not in real  # real-image rows have no generation to condition on


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "1001"], "--steps"),
        (["--num-scenes", "0"], "--num-scenes"),
        (["--num-scenes", "-3"], "--num-scenes"),
        (["--examples-per-task", "-1"], "--examples-per-task"),
        (["--scene-set", "-1"], "--scene-set"),
        (["--task", "circle->circle"], "--task"),
        (["--task", "circle->Circle, two objects"], "--task"),
        (["--task", "circle"], "--task"),
    ],
)
def test_bench_quality_refuses_bad_numbers_and_tasks_before_any_work(tmp_path, args, flag):
    from click.testing import CliRunner

    from pix2pix_zero.cli import main

    out = tmp_path / "out"  # a model that does not exist: the refusal must come before loading one
    result = CliRunner().invoke(main, ["bench", "quality", "-m", str(tmp_path / "no-model"), "-o", str(out), *args])
    assert result.exit_code == 2 and f"Invalid value for '{flag}'" in result.output, result.output
    if flag == "--task" and "->" in args[1]:
        assert "same concept" in result.output and repr(args[1]) in result.output
    assert not out.exists()


def test_bench_quality_exits_non_zero_when_every_edit_failed_and_counts_failures_otherwise(
    model_with_clip, cache_dir, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from pix2pix_zero.cli import main

    def broken(editor, image, case):
        raise ValueError("no edit today")

    working = quality.methods(3)["reference: no edit (VAE round trip)"]
    failing = quality.Method("broken", broken, {})
    chosen = {"broken": failing}
    monkeypatch.setattr(quality, "methods", lambda num_steps=50: dict(chosen))

    def run(out):
        args = ["bench", "quality", "-m", str(model_with_clip), "--task", "circle->square", "--num-scenes", "2"]
        return CliRunner().invoke(main, [*args, "--steps", "3", "-o", str(out), "-q"])

    result = run(tmp_path / "all-failed")
    assert result.exit_code == 1, result.output
    rows_file = tmp_path / "all-failed" / "rows.jsonl"
    assert f"all 2 edits failed; their errors are recorded in {rows_file}" in result.output
    assert "no edit today" in result.output.splitlines()[-1]
    assert (tmp_path / "all-failed" / "table.md").is_file()  # the table is still written
    chosen[working.name] = working
    result = run(tmp_path / "some-failed")
    assert result.exit_code == 0, result.output
    assert f"2 of 4 edits failed; their errors are recorded in {tmp_path / 'some-failed' / 'rows.jsonl'}" in (
        result.output
    )
    assert "| broken | 2 (2 failed) |" in result.output
