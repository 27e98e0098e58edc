"""What each preset does, dtype handling, the optional safety checker and language-model sentences."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_zero import PRESETS, EditConfig, InversionConfig, Pix2PixZero, get_preset
from pix2pix_zero.ddim import Schedule, inversion_steps

FAST_INV = InversionConfig(num_steps=4, num_reg_steps=1, num_ac_rolls=1)


def test_official_preset_follows_the_authors_code():
    official = get_preset("official")
    assert official.inversion.grid == "official" and official.inversion.latent_sampling == "sample"
    assert (
        len(inversion_steps(official.inversion.num_steps, Schedule.stable_diffusion(), official.inversion.grid)) == 48
    )
    assert (official.inversion.lambda_ac, official.inversion.lambda_kl) == (20.0, 20.0)
    assert official.inversion.reg_loss_scale == "mean"
    assert (official.inversion.num_reg_steps, official.inversion.num_ac_rolls, official.inversion.ac_min_roll) == (
        5,
        5,
        1,
    )
    assert official.edit == EditConfig(
        num_steps=50, guidance_scale=5.0, xa_guidance=0.1, strength=1.0, guidance_mode="official", xa_loss_scale="sum"
    )
    assert official.image.keep_aspect is False and official.synthetic_xa_guidance == 0.15


def test_default_preset_is_the_documented_best_version():
    default = get_preset("default")
    assert default.inversion.grid == "mirror" and default.inversion.latent_sampling == "mean"
    assert len(inversion_steps(default.inversion.num_steps, Schedule.stable_diffusion(), default.inversion.grid)) == 50
    assert (
        default.edit.guidance_mode == "edited"
        and default.edit.guidance_scale == 5.0
        and default.edit.xa_guidance == 0.1
    )
    assert default.edit.xa_loss_scale == "sd512" and default.inversion.reg_loss_scale == "sd512"
    assert default.edit.exact_inversion is True and default.edit.direction_from == "caption"
    assert default.image.keep_aspect is True
    # the presets differ only where the table in the README says they do
    differing = {
        f"{section}.{k}"
        for section in ("inversion", "edit", "image")
        for k, v in dataclasses.asdict(getattr(default, section)).items()
        if v != dataclasses.asdict(getattr(PRESETS["official"], section))[k]
    }
    assert differing == {
        "inversion.grid",
        "inversion.latent_sampling",
        "inversion.reg_loss_scale",
        "edit.guidance_mode",
        "edit.xa_loss_scale",
        "edit.exact_inversion",
        "edit.direction_from",
        "image.keep_aspect",
    }


def test_the_bundled_model_tunes_only_the_default_preset_and_says_why():
    import json

    from pix2pix_zero.components import BUNDLED_MODELS, PRESET_TUNING_FILE, preset_for
    from pix2pix_zero.config import tuned

    recorded = json.loads((BUNDLED_MODELS["shapesworld"] / PRESET_TUNING_FILE).read_text())["presets"]
    assert set(recorded) == {"default"} and "docs/quality.md" in recorded["default"]["why"]
    default = preset_for("default", "shapesworld")
    assert default.edit == dataclasses.replace(get_preset("default").edit, **recorded["default"]["edit"])
    assert default.inversion == get_preset("default").inversion and default.tuning == recorded["default"]
    assert preset_for("official", "shapesworld") == get_preset("official")  # the authors' code stays step for step
    assert preset_for("default", "CompVis/stable-diffusion-v1-4") == get_preset(
        "default"
    )  # hub ids: the preset as written
    with pytest.raises(ValueError, match="unknown preset tuning keys"):
        tuned(get_preset("default"), {"edits": {"xa_guidance": 0.03}})
    with pytest.raises(ValueError, match="synthetic_negative_prompt must be 'caption' or 'empty', got 'none'"):
        tuned(get_preset("default"), {"synthetic_negative_prompt": "none"})


def test_a_model_folder_cannot_tune_official(tiny_model_dir, tmp_path):
    import json
    import shutil

    from pix2pix_zero.components import PRESET_TUNING_FILE, preset_for

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (folder / PRESET_TUNING_FILE).write_text(json.dumps({"presets": {"official": {"edit": {"xa_guidance": 0.03}}}}))
    for name in ("official", "default"):  # the file is wrong whichever preset a run asks for
        with pytest.raises(ValueError, match="'official' is the authors' method and takes no tuning"):
            preset_for(name, str(folder))


def test_unknown_preset_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("fast")
    with pytest.raises(ValueError, match=r"lambda_ac must be a finite number from 0 to 1e\+06, got -1"):
        InversionConfig(lambda_ac=-1)
    with pytest.raises(ValueError, match="official"):
        InversionConfig(grid="official", num_steps=2)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_weights_edit_with_float32_latents(tiny_model_dir, cache_dir, dtype):
    editor = Pix2PixZero.from_pretrained(
        tiny_model_dir, dtype=dtype, captioner=lambda image: "a photo of a cat", cache_dir=cache_dir, progress=False
    )
    assert editor.components.unet.dtype == getattr(torch, dtype)
    result = editor.edit(Image.new("RGB", (16, 16), "red"), "cat", "dog", num_steps=4, inversion_config=FAST_INV)
    assert result.image.size == (16, 16) and result.metadata()["dtype"] == f"torch.{dtype}"


def test_unknown_dtype_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="unknown dtype"):
        Pix2PixZero.from_pretrained(tiny_model_dir, dtype="int8")


def test_safety_checker_is_off_by_default_and_blanks_flagged_images(tiny_model_dir, cache_dir):
    editor = Pix2PixZero.from_pretrained(
        tiny_model_dir, captioner=lambda image: "a photo of a cat", cache_dir=cache_dir, progress=False
    )
    assert editor.components.safety_checker is None
    editor.components.flag_unsafe = lambda images: (
        [True] + [False] * (images.shape[0] - 1)
    )  # the first (edited) image flagged
    result = editor.edit(Image.new("RGB", (16, 16), "red"), "cat", "dog", num_steps=4, inversion_config=FAST_INV)
    assert result.unsafe == [True, False]
    assert np.asarray(result.image).max() == 0 and np.asarray(result.reconstruction).max() > 0


def test_missing_safety_checker_is_a_clear_error(tiny_model_dir):
    from pix2pix_zero import ModelNotAvailableError

    with pytest.raises(ModelNotAvailableError, match="safety checker"):
        Pix2PixZero.from_pretrained(tiny_model_dir, safety_checker=True)


def test_language_model_writes_sentences_for_concepts_without_a_bank(tiny_model_dir, cache_dir, tmp_path, monkeypatch):
    from test_sentences import _tiny_lm

    lm = _tiny_lm(tmp_path / "lm", "unicorn")
    editor = Pix2PixZero.from_pretrained(
        tiny_model_dir, captioner=lambda image: "a photo", cache_dir=cache_dir, progress=False, sentence_model=lm
    )
    sentences, origin = editor.sentences("unicorn")
    assert origin == f"lm:{lm}" and sentences and all("unicorn" in s for s in sentences)
    assert editor.sentences("cat")[1] == "bank:cat.txt"  # banks still win
    from pix2pix_zero import sentences as banks

    monkeypatch.setattr(banks, "generate_with_language_model", lambda *a, **k: pytest.fail("not cached"))
    assert editor.sentences("unicorn")[0] == sentences
