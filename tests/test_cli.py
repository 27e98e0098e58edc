"""The `pix2pix-zero` command line, end to end on a tiny random model."""

import json
import shutil

import pytest
from click.testing import CliRunner
from PIL import Image

from pix2pix_zero.cli import main
from pix2pix_zero.images import read_png_metadata

FAST = ["--steps", "4", "--num-reg-steps", "1", "--num-ac-rolls", "1", "-q"]


@pytest.fixture()
def run(tiny_model_dir, cache_dir):
    def invoke(*args):
        return CliRunner().invoke(main, [*args], catch_exceptions=False)

    return invoke


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "kitty.png"
    Image.new("RGB", (48, 32), (180, 90, 20)).save(path)
    return path


def test_help_explains_every_option(run):
    result = run("edit", "--help")
    assert result.exit_code == 0
    for flag in (
        "--source",
        "--target",
        "--caption",
        "--model",
        "--steps",
        "--xa-guidance",
        "--guidance-scale",
        "--strength",
        "--seed",
        "--preset",
        "--device",
        "--dtype",
        "--output",
        "--inversion-steps",
        "--lambda-ac",
    ):
        assert flag in result.output
    for command in ("edit", "invert", "generate", "direction", "presets"):
        assert command in run("--help").output


def test_edit_writes_outputs_with_metadata(run, tiny_model_dir, photo, tmp_path):
    out = tmp_path / "out"
    result = run(
        "edit",
        str(photo),
        "--source",
        "cat",
        "--target",
        "dog",
        "--target",
        "horse",
        "--caption",
        "a photo of a cat",
        "--model",
        str(tiny_model_dir),
        "--xa-guidance",
        "0.2",
        "--seed",
        "5",
        "-o",
        str(out),
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert "caption 'a photo of a cat'" in result.output
    assert sorted(p.name for p in out.glob("*.png")) == [
        "kitty.edit-dog.png",
        "kitty.edit-horse.png",
        "kitty.grid.png",
        "kitty.input.png",
        "kitty.reconstruction.png",
    ]
    meta = read_png_metadata(out / "kitty.edit-horse.png")
    assert meta["edit_config"]["xa_guidance"] == 0.2 and meta["edit_config"]["num_steps"] == 4
    assert meta["inversion_config"]["num_steps"] == 4 and meta["seed"] == 5 and meta["target"] == "horse"
    sidecar = json.loads((out / "kitty.edit-horse.json").read_text())
    assert (
        set(sidecar.pop("timings_s")) == {"invert", "edit", "decode"} and sidecar == meta
    )  # timings: the sidecar only
    again = run(
        "edit",
        str(photo),
        "-s",
        "cat",
        "-t",
        "dog",
        "--caption",
        "a photo of a cat",
        "--model",
        str(tiny_model_dir),
        "-o",
        str(out),
        *FAST,
    )
    assert again.exit_code == 1 and "exists already" in again.output and "--overwrite" in again.output


def test_invert_then_edit_from_the_saved_inversion(run, tiny_model_dir, photo, tmp_path):
    inversion = tmp_path / "kitty.inversion.safetensors"
    result = run(
        "invert",
        str(photo),
        "--caption",
        "a photo of a cat",
        "--model",
        str(tiny_model_dir),
        "-o",
        str(inversion),
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert inversion.is_file()
    result = run(
        "edit",
        str(inversion),
        "-s",
        "cat",
        "-t",
        "zebra",
        "--model",
        str(tiny_model_dir),
        "-o",
        str(tmp_path / "o"),
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "kitty.edit-zebra.png").is_file()
    edit = ["edit", str(inversion), "-s", "cat", "-t", "dog", "--model", str(tiny_model_dir), "-o", str(tmp_path / "p")]
    for flags, named in (
        (["--caption", "a photo of a dog"], "--caption"),
        (["--size", "32"], "--size"),
        (["--lambda-ac", "3"], "--lambda-ac"),
        (["--seed", "9"], "--seed"),
    ):  # settings of the inversion: refused, not silently dropped
        refused = run(*edit, *FAST, *flags)
        assert refused.exit_code == 2 and f"{named} set how an image is captioned" in refused.output
    assert run(*edit, *FAST, "--caption", "a photo of a cat").exit_code == 0  # what it was made with


def test_generate_synthetic(run, tiny_model_dir, tmp_path):
    result = run(
        "generate",
        "--prompt",
        "a photo of a cat",
        "-s",
        "cat",
        "-t",
        "dog",
        "--seed",
        "3",
        "--model",
        str(tiny_model_dir),
        "--steps",
        "3",
        "-q",
        "-o",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert read_png_metadata(tmp_path / "seed3.edit-dog.png")["edit_config"]["xa_guidance"] == 0.15
    flags = ["--model", str(tiny_model_dir), "--steps", "3", "-q", "--overwrite", "-o", str(tmp_path)]
    common = ["generate", "--prompt", "a photo of a cat", "-s", "cat", "-t", "dog", "--seed", "3", *flags]
    assert run(*common, "--preset", "official").exit_code == 0  # the authors' synthetic edit: CFG against ""
    assert read_png_metadata(tmp_path / "seed3.edit-dog.png")["edit_config"]["negative_prompt"] == "empty"
    assert run(*common, "--preset", "official", "--negative-prompt", "caption").exit_code == 0  # a flag wins
    assert read_png_metadata(tmp_path / "seed3.edit-dog.png")["edit_config"]["negative_prompt"] == "caption"
    large = run(*common, "--size", "128")  # 8 times the tiny model's 16 px: it runs, and says so
    assert large.exit_code == 0 and "warning: --size 128 is 8 times this model's native 16 px" in large.output


def test_edit_along_a_saved_direction(run, tiny_model_dir, photo, tmp_path):
    """`direction build -o` writes what `edit --direction` reads: the edit records it as given, and a file that does
    not fit the model (or the request) is refused."""
    import torch

    from pix2pix_zero.directions import save_direction

    saved, model = tmp_path / "cat2dog.safetensors", ["--model", str(tiny_model_dir)]
    assert run("direction", "build", "-s", "cat", "-t", "cat", *model).exit_code == 1  # the same concept
    assert run("direction", "build", "-s", "cat", "-t", "dog", *model, "-o", str(saved)).exit_code == 0
    edit = ["edit", str(photo), "-s", "cat", "-t", "dog", "--caption", "a photo of a cat", *model, *FAST]
    done = run(*edit, "--direction", str(saved), "-o", str(tmp_path / "o"))
    assert done.exit_code == 0, done.output
    assert read_png_metadata(tmp_path / "o" / "kitty.edit-dog.png")["direction"] == "given"
    built = run(*edit, "-o", str(tmp_path / "b"))  # the caption's own direction: another edit
    assert built.exit_code == 0
    assert (
        Image.open(tmp_path / "o" / "kitty.edit-dog.png").tobytes()
        != Image.open(tmp_path / "b" / "kitty.edit-dog.png").tobytes()
    )
    two = run(*edit, "-t", "horse", "--direction", str(saved), "-o", str(tmp_path / "t"))
    assert two.exit_code == 2 and "one --target" in two.output
    other = tmp_path / "other.safetensors"
    save_direction(other, torch.zeros(5, 7), model="another", model_fingerprint="0" * 16)
    refused = run(*edit, "--direction", str(other), "-o", str(tmp_path / "x"))
    assert refused.exit_code == 1 and "built on the model 'another'" in refused.output
    save_direction(other, torch.zeros(5, 7), overwrite=True)  # no fingerprint: its shape tells
    refused = run(*edit, "--direction", str(other), "-o", str(tmp_path / "y"))
    assert refused.exit_code == 1 and "does not fit this model's text embeddings" in refused.output


def test_direction_build_list_delete(run, tiny_model_dir, cache_dir, tmp_path):
    result = run(
        "direction",
        "build",
        "-s",
        "cat",
        "-t",
        "dog",
        "--model",
        str(tiny_model_dir),
        "-q",
        "-o",
        str(tmp_path / "d.safetensors"),
    )
    assert result.exit_code == 0, result.output
    assert "cat: 1000 sentences (bank:cat.txt)" in result.output and (tmp_path / "d.safetensors").is_file()
    listing = run("direction", "list")
    assert "cat" in listing.output and "dog" in listing.output
    assert "1000 sentences" in run("direction", "list", "--banks").output
    shown = run("direction", "show", "dog", "-n", "3", "--model", str(tiny_model_dir), "-q").output
    assert (
        "bank" in shown
        and "1000 sentences" in shown
        and "cached: 1000 sentences" in shown
        and str(tiny_model_dir) in shown
    )
    assert "template generator" in run("direction", "show", "unicorn", "--model", str(tiny_model_dir), "-q").output
    assert run("direction", "delete", "dog").exit_code == 0
    assert "dog " not in run("direction", "list").output
    assert run("direction", "delete", "dog").exit_code == 1


def test_presets_side_by_side(run):
    result = run("presets")
    assert "official" in result.output and "inversion.grid" in result.output and "mirror" in result.output


def test_a_model_folder_tunes_its_default_preset(run, tiny_model_dir, photo, tmp_path):
    folder = tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, folder)
    tuning = {
        "edit": {"xa_guidance": 0.03, "strength": 1.2},
        "synthetic_xa_guidance": 0.05,
        "synthetic_negative_prompt": "empty",
        "why": "measured on this model",
    }
    (folder / "pix2pix_zero.json").write_text(json.dumps({"presets": {"default": tuning}}))

    def edit_config(*flags):
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        result = run(
            "edit",
            str(photo),
            "-s",
            "cat",
            "-t",
            "dog",
            "--caption",
            "a photo of a cat",
            "--model",
            str(folder),
            "-o",
            str(out),
            *FAST,
            *flags,
        )
        assert result.exit_code == 0, result.output
        return read_png_metadata(out / "kitty.edit-dog.png")

    tuned = edit_config()
    assert (tuned["preset"], tuned["edit_config"]["xa_guidance"], tuned["edit_config"]["strength"]) == (
        "default",
        0.03,
        1.2,
    )
    assert tuned["preset_tuning"] == tuning  # the output says where its settings came from
    assert edit_config("--xa-guidance", "0.2")["edit_config"]["xa_guidance"] == 0.2  # a flag still wins
    official = edit_config("--preset", "official")
    assert official["edit_config"]["xa_guidance"] == 0.1 and official["preset_tuning"] is None
    shown = json.loads(run("presets", "--json", "--model", str(folder)).output)
    assert shown["default"]["edit"]["xa_guidance"] == 0.03 and shown["default"]["synthetic_xa_guidance"] == 0.05
    assert (
        shown["default"]["synthetic_negative_prompt"] == "empty"
        and shown["default"]["edit"]["negative_prompt"] == "caption"
    )
    assert shown["official"]["edit"]["xa_guidance"] == 0.1 and "tuning" not in shown["official"]
    assert "measured on this model" in run("presets", "--model", str(folder)).output
    assert json.loads(run("presets", "--json", "--as-written").output)["default"]["edit"]["xa_guidance"] == 0.1

    (folder / "pix2pix_zero.json").write_text(json.dumps({"presets": {"default": {"edit": {"xa_guidanse": 0.03}}}}))
    broken = run("edit", str(photo), "-s", "cat", "-t", "dog", "--model", str(folder), "-o", str(tmp_path / "x"), *FAST)
    assert broken.exit_code == 1 and "no valid preset tuning" in broken.output and "xa_guidanse" in broken.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["edit", "missing.png", "-s", "cat", "-t", "dog"], "image file not found"),
        (["edit", "{photo}", "-s", "cat", "-t", "dog", "--model", "./nowhere/model"], "does not exist"),
        (
            ["edit", "{photo}", "-s", "cat", "-t", "dog", "--steps", "0", "--model", "{model}"],
            "'--steps': must be a finite number from 1 to 1000",
        ),
        (
            ["edit", "{photo}", "-s", "cat", "-t", "dog", "--add", "cat:dog", "--model", "{model}"],
            "SOURCE:TARGET:WEIGHT",
        ),
        (["edit", "{corrupt}", "-s", "cat", "-t", "dog", "--model", "{model}"], "corrupt or truncated"),
    ],
)
def test_bad_input_gives_a_clear_error(run, tiny_model_dir, photo, tmp_path, args, message):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(photo.read_bytes()[:60])
    args = [a.format(photo=photo, model=tiny_model_dir, corrupt=corrupt) for a in args]
    result = run(*args, "--caption", "a cat", "-q")
    assert result.exit_code in (1, 2)
    assert message in result.output


def test_unknown_flag_is_a_usage_error(run):
    result = run("edit", "x.png", "-s", "cat", "-t", "dog", "--xa-guidence", "0.2")
    assert result.exit_code == 2 and "No such option" in result.output


def test_the_bundled_model_is_discoverable(run):
    """Without --model, `presets`, `direction list --banks`, `direction show` and `edit --help` answer for the
    model `edit` loads by default, the bundled one."""
    shown = json.loads(run("presets", "--json").output)
    assert shown["default"]["edit"]["xa_guidance"] == 0.03 and shown["official"]["edit"]["xa_guidance"] == 0.1
    assert "presets for the model shapesworld" in run("presets").output
    banks = run("direction", "list", "--banks").output
    assert "banks of the model shapesworld" in banks and "shipped banks" in banks
    assert banks.index("circle ") < banks.index("shipped banks") < banks.index("cat ")
    circle = run("direction", "show", "circle", "-n", "2").output
    assert "bank circle.txt, 750 sentences (model shapesworld)" in circle and "shipped with the model" in circle
    help_text = " ".join(run("edit", "--help").output.split())
    assert "default 0.03 on shapesworld, 0.1 on other models; official 0.1" in help_text
    assert "pix2pix-zero presets -m MODEL" in help_text


def test_shapesworld_info_lists_words_palette_and_sizes(run):
    from pix2pix_zero.shapesworld import world

    facts = json.loads(run("shapesworld", "info", "--json").output)
    assert facts["shapes"] == list(world.SHAPES) and facts["object_colors"]["yellow"] == list(
        world.OBJECT_COLORS["yellow"]
    )
    assert set(facts["sizes"]) == set(world.SIZES) and facts["image_size"] == [world.IMAGE_SIZE] * 2
    assert "circle" in facts["sentence_banks"] and "triangle" in facts["words"]
    text = run("shapesworld", "info").output
    assert "yellow     (250, 220, 30)" in text and "large (radius 12 px)" in text


def test_invert_inversion_steps_is_a_hidden_deprecated_alias_of_steps(run, tiny_model_dir, photo, tmp_path):
    from pix2pix_zero.api import Inversion

    help_text = run("invert", "--help").output
    assert "--steps" in help_text and "--inversion-steps" not in help_text
    common = [
        "--caption",
        "a photo of a cat",
        "--model",
        str(tiny_model_dir),
        "--num-reg-steps",
        "1",
        "--num-ac-rolls",
        "1",
        "-q",
    ]
    result = CliRunner().invoke(
        main,
        ["invert", str(photo), "--inversion-steps", "3", "-o", str(tmp_path / "a.safetensors"), *common],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "deprecated" in result.stderr and "--steps" in result.stderr
    assert Inversion.load(tmp_path / "a.safetensors").config.num_steps == 3
    run("invert", str(photo), "--steps", "3", "-o", str(tmp_path / "b.safetensors"), *common)
    assert Inversion.load(tmp_path / "b.safetensors").config.num_steps == 3
    clash = run(
        "invert", str(photo), "--steps", "4", "--inversion-steps", "3", "-o", str(tmp_path / "c.safetensors"), *common
    )
    assert clash.exit_code == 2 and "disagree" in clash.output


def test_loading_is_quiet_unless_verbose(run):
    """No weight-loading bars by default (the bundled model loads in a second); -v brings them back."""
    quiet = CliRunner().invoke(main, ["direction", "show", "circle", "-n", "1"], catch_exceptions=False)
    assert quiet.exit_code == 0 and "Loading weights" not in quiet.stderr
    verbose = CliRunner().invoke(main, ["direction", "show", "circle", "-n", "1", "-v"], catch_exceptions=False)
    assert verbose.exit_code == 0 and "Loading weights" in verbose.stderr
    CliRunner().invoke(main, ["direction", "show", "circle", "-n", "1"], catch_exceptions=False)  # quiet again
