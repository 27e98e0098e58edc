"""`pix2pix-zero demo` on the bundled ShapesWorld model: offline, a labelled grid, nothing overwritten."""

import json
import re

from click.testing import CliRunner
from PIL import Image

from pix2pix_zero.cli import main
from pix2pix_zero.demo import find_shape, next_run_folder
from pix2pix_zero.images import read_png_metadata


def test_demo_captions_edits_and_writes_a_grid(tmp_path, cache_dir):
    args = ["demo", "--steps", "8", "-q", "-o", str(tmp_path), "--cache-dir", str(cache_dir)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    caption = re.search(r"caption:\s+(.*)", result.output).group(1)
    edits = re.search(r"edits:\s+(.*)", result.output).group(1).split(", ")
    assert len(edits) == 3 and all("->" in e for e in edits)
    source = edits[0].split(" -> ")[0]
    assert source in caption  # the edit starts from the shape the caption names
    grid_path = tmp_path / "run-001" / re.search(r"grid:\s+.*/(\S+\.grid\.png)", result.output).group(1)
    grid = Image.open(grid_path)
    # input, reconstruction and three edits side by side, then the automatic masks of the bundled model's default
    # (one file when the three are the same, else one per target)
    masks = sorted((tmp_path / "run-001").glob("*.mask*.png"))
    assert len(masks) in (1, 3) and grid.width == (5 + len(masks)) * (grid.height - 28)
    meta = read_png_metadata(grid_path)
    assert meta["caption"] == caption and len(meta["edits"]) == 3 and meta["edit_config"]["num_steps"] == 8
    sidecar = json.loads(grid_path.with_suffix(".json").read_text())
    assert (
        sidecar["timings_s"]["invert"] > 0
    )  # the demo inverts before editing and records how long it took (sidecar only)
    assert "timings_s" not in meta  # the PNG carries no wall-clock time: the same run gives the same bytes
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0 and (tmp_path / "run-002").is_dir()  # a second run never overwrites the first


def test_demo_says_when_a_target_is_the_shape_it_found(tmp_path, cache_dir):
    args = ["demo", "--example", "blue_square_gray_gradient", "-t", "square", "--steps", "2", "-q"]
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path), "--cache-dir", str(cache_dir)])
    assert result.exit_code == 1 and "the shape edited when --source is not given" in result.output


def test_demo_on_a_given_image_with_a_given_source(tmp_path, cache_dir):
    from pix2pix_zero.shapesworld import world

    scene = world.Scene(objects=(world.SceneObject("square", "red", "large", "center"),), background="white")
    path = tmp_path / "mine.png"
    world.render_pil(scene).save(path)
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--image",
            str(path),
            "-s",
            "square",
            "-t",
            "circle",
            "--steps",
            "4",
            "-q",
            "-o",
            str(tmp_path / "out"),
            "--cache-dir",
            str(cache_dir),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "square -> circle" in result.output
    assert (tmp_path / "out" / "run-001" / "mine.edit-circle.png").is_file()


def test_demo_errors_and_helpers(tmp_path):
    missing_model = ["-m", str(tmp_path / "no-model")]  # the picture is checked before any model loads
    result = CliRunner().invoke(main, ["demo", "--example", "no-such-scene", "-o", str(tmp_path), *missing_model])
    assert result.exit_code == 1 and "unknown example" in result.output
    result = CliRunner().invoke(main, ["demo", "--image", str(tmp_path / "nope.png"), *missing_model])
    assert result.exit_code == 1 and "nope.png" in result.output and "model" not in result.output
    assert find_shape("a large red circle in the center", ("circle", "square")) == "circle"
    assert find_shape("a photo of a cat", ("circle",)) is None
    (tmp_path / "run-007").mkdir()
    assert next_run_folder(tmp_path).name == "run-008"
