"""The public API end to end on a tiny random model: invert once/edit many, caching, metadata, errors."""

from dataclasses import replace

import pytest
import torch
from PIL import Image

from pix2pix_zero import EditConfig, Inversion, InversionConfig, ModelNotAvailableError, Pix2PixZero
from pix2pix_zero.api import EditOptions
from pix2pix_zero.captioning import BlipCaptioner
from pix2pix_zero.images import OutputExistsError, read_png_metadata

FAST_INV = InversionConfig(num_steps=6, num_reg_steps=1, num_ac_rolls=1)
FAST_EDIT = EditConfig(num_steps=6)


class FixedCaptioner:
    def __init__(self, text="a photo of a cat"):
        self.text, self.calls = text, 0

    def __call__(self, image):
        self.calls += 1
        return self.text


@pytest.fixture()
def editor(tiny_model_dir, cache_dir):
    return Pix2PixZero.from_pretrained(tiny_model_dir, captioner=FixedCaptioner(), cache_dir=cache_dir, progress=False)


@pytest.fixture(scope="module")
def image():
    pixels = torch.linspace(0, 255, 40 * 30 * 3).reshape(30, 40, 3).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def test_edit_returns_images_reconstruction_caption_and_config(editor, image):
    result = editor.edit(image, source="cat", target=["dog", "horse"], config=FAST_EDIT, inversion_config=FAST_INV)
    assert result.caption == "a photo of a cat"
    assert len(result.images) == 2 and result.images[0].size == result.reconstruction.size == result.input.size
    assert result.input.size == (16, 12)  # long side = native 16 px, sides multiples of 4
    meta = result.metadata(1)
    assert meta["target"] == "horse" and meta["source"] == "cat" and meta["preset"] == "default"
    assert meta["edit_config"]["num_steps"] == 6 and meta["inversion_config"]["num_steps"] == 6
    assert meta["sentences"]["target"][0] == "bank:horse.txt" and meta["versions"]["torch"] == torch.__version__
    assert result.images[0].tobytes() != result.images[1].tobytes()


def test_invert_once_edit_many_does_not_repeat_the_inversion(editor, image):
    inversion = editor.invert(image, config=FAST_INV)
    calls = editor.components.eps_model.num_calls
    editor.edit(inversion, source="cat", target="dog", config=FAST_EDIT)
    # edit only: the first reference, then guidance + CFG (with the next reference in its batch) per step
    assert editor.components.eps_model.num_calls - calls == 1 + 6 * 2
    calls = editor.components.eps_model.num_calls
    again = editor.invert(image, config=FAST_INV)  # from the disk cache
    assert editor.components.eps_model.num_calls == calls
    assert torch.equal(again.x_T, inversion.x_T)


def test_inversion_round_trips_through_a_file(editor, image, tmp_path):
    inversion = editor.invert(image, config=FAST_INV, use_cache=False)
    loaded = Inversion.load(inversion.save(tmp_path / "cat.inversion.safetensors"))
    assert torch.equal(loaded.x_T, inversion.x_T) and loaded.caption == inversion.caption
    assert loaded.config == FAST_INV and loaded.image.tobytes() == inversion.image.tobytes()


def test_inversion_file_from_before_reg_loss_scale_loads_as_the_mean_losses_it_used(editor, image, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = editor.invert(image, config=FAST_INV, use_cache=False).save(tmp_path / "new.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        meta, tensors = handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}
    config = json.loads(meta["config"])
    del config["reg_loss_scale"]  # as written by earlier versions
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata={**meta, "config": json.dumps(config)})
    assert Inversion.load(tmp_path / "old.safetensors").config.reg_loss_scale == "mean"
    assert Inversion.load(path).config.reg_loss_scale == FAST_INV.reg_loss_scale == "sd512"


def test_same_seed_same_bytes_other_seed_differs(editor, image):
    official = InversionConfig(num_steps=6, num_reg_steps=1, num_ac_rolls=2, latent_sampling="sample", grid="official")
    first = editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=official, seed=3, use_cache=False)
    second = editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=official, seed=3, use_cache=False)
    third = editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=official, seed=4, use_cache=False)
    assert first.image.tobytes() == second.image.tobytes()
    assert first.image.tobytes() != third.image.tobytes()


def test_zero_strength_and_zero_guidance_reproduce_the_reconstruction(editor, image):
    result = editor.edit(
        image, "cat", "dog", config=EditConfig(num_steps=6, strength=0.0, xa_guidance=0.0), inversion_config=FAST_INV
    )
    diff = torch.tensor(list(result.image.tobytes()), dtype=torch.int16) - torch.tensor(
        list(result.reconstruction.tobytes()), dtype=torch.int16
    )
    assert diff.abs().max() <= 1


def test_caption_direction_swaps_the_named_word_and_falls_back_to_the_sentences(editor, image):
    caption_cfg = EditConfig(num_steps=6, direction_from="caption")
    sentences_cfg = replace(caption_cfg, direction_from="sentences")
    inversion = editor.invert(image, config=FAST_INV)
    named = editor.edit(inversion, "cat", "dog", EditOptions(config=caption_cfg))
    meta = named.metadata()
    assert meta["direction"] == "caption" and meta["edited_caption"] == "a photo of a dog" and "sentences" not in meta
    swap = editor.word_swap_direction("a photo of a cat", "cat", "dog")
    given = editor.edit(inversion, "cat", "dog", EditOptions(config=sentences_cfg, direction=swap))
    assert named.image.tobytes() == given.image.tobytes()
    banks = editor.edit(inversion, "cat", "dog", EditOptions(config=sentences_cfg))
    assert banks.image.tobytes() != named.image.tobytes() and banks.metadata()["direction"] == "sentences"
    # a caption that does not name the source: the sentence banks, and the record says why
    unnamed = editor.edit(inversion, "horse", "dog", EditOptions(config=caption_cfg))
    assert unnamed.metadata()["direction"] == "sentences (the caption does not name 'horse')"
    same = editor.edit(inversion, "horse", "dog", EditOptions(config=sentences_cfg))
    assert unnamed.image.tobytes() == same.image.tobytes()
    synthetic = editor.generate_and_edit("a photo of a Cat", "cat", "dog", config=caption_cfg)
    assert synthetic.metadata()["edited_caption"] == "a photo of a dog"


def test_concept_embeddings_are_cached_on_disk(editor, cache_dir, monkeypatch):
    editor.direction("cat", "dog")
    files = sorted((cache_dir / "concepts").glob("*.safetensors"))
    assert len(files) == 2
    monkeypatch.setattr(
        editor.components, "encode_text", lambda *a, **k: pytest.fail("cached embedding was recomputed")
    )
    assert torch.equal(editor.direction("cat", "dog"), editor.direction("cat", "dog"))


def test_sentence_file_generated_sentences_and_weighted_extra_directions(editor, image, tmp_path):
    bank = tmp_path / "felines.txt"
    bank.write_text("a photo of a cat\na cat on the grass\n")
    sentences, origin = editor.sentences(str(bank))
    assert sentences == ["a photo of a cat", "a cat on the grass"] and origin.startswith("file:")
    generated, origin = editor.sentences("unicorn")
    assert origin == "generated" and all("unicorn" in s for s in generated)
    base = editor.edit(image, str(bank), "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    zero_extra = editor.edit(
        image, str(bank), "dog", config=FAST_EDIT, inversion_config=FAST_INV, extra=[("cat", "horse", 0.0)]
    )
    extra = editor.edit(
        image, str(bank), "dog", config=FAST_EDIT, inversion_config=FAST_INV, extra=[("cat", "horse", 2.0)]
    )
    assert zero_extra.image.tobytes() == base.image.tobytes()
    assert extra.image.tobytes() != base.image.tobytes()


def test_save_writes_png_with_metadata_and_never_overwrites(editor, image, tmp_path):
    result = editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    written = result.save(tmp_path, stem="pet")
    names = sorted(p.name for p in written)
    assert names == ["pet.edit-dog.png", "pet.grid.png", "pet.input.png", "pet.reconstruction.png"]
    assert (tmp_path / "pet.edit-dog.json").is_file()
    meta = read_png_metadata(tmp_path / "pet.edit-dog.png")
    assert meta["target"] == "dog" and meta["caption"] == "a photo of a cat" and meta["seed"] == 0
    before = (tmp_path / "pet.edit-dog.png").read_bytes()
    with pytest.raises(OutputExistsError, match="exists already"):
        result.save(tmp_path, stem="pet")
    assert (tmp_path / "pet.edit-dog.png").read_bytes() == before


def test_official_preset_runs_and_records_itself(tiny_model_dir, cache_dir, image):
    editor = Pix2PixZero.from_pretrained(
        tiny_model_dir, captioner=FixedCaptioner(), cache_dir=cache_dir, progress=False, preset="official"
    )
    inv = InversionConfig(num_steps=6, grid="official", latent_sampling="sample", num_reg_steps=1, num_ac_rolls=1)
    result = editor.edit(image, "cat", "dog", num_steps=6, inversion_config=inv)
    assert result.input.size == (16, 16)  # square, as the authors' CLI
    meta = result.metadata()
    assert meta["preset"] == "official" and meta["edit_config"]["guidance_mode"] == "official"


def test_synthetic_generation_and_edit_is_deterministic(editor):
    a = editor.generate_and_edit("a photo of a cat", "cat", "dog", seed=1, num_steps=5)
    b = editor.generate_and_edit("a photo of a cat", "cat", "dog", seed=1, num_steps=5)
    c = editor.generate_and_edit("a photo of a cat", "cat", "dog", seed=2, num_steps=5)
    assert a.image.tobytes() == b.image.tobytes() and a.input.tobytes() == a.reconstruction.tobytes()
    assert a.input.tobytes() != c.input.tobytes()
    assert a.metadata()["edit_config"]["xa_guidance"] == 0.15 and a.metadata()["mode"] == "synthetic"


def test_v_prediction_model_edits(tiny_vpred_model_dir, cache_dir, image):
    editor = Pix2PixZero.from_pretrained(
        tiny_vpred_model_dir, captioner=FixedCaptioner(), cache_dir=cache_dir, progress=False
    )
    assert editor.components.schedule.prediction_type == "v_prediction"
    result = editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    assert result.image.size == (16, 12)


def test_captioner_runs_only_when_no_caption_is_given(editor, image):
    editor.edit(image, "cat", "dog", caption="a cat", config=FAST_EDIT, inversion_config=FAST_INV)
    assert editor._captioner.calls == 0
    editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    assert editor._captioner.calls == 1


def test_blip_is_loaded_lazily_and_missing_blip_says_how_to_recover(tiny_model_dir, cache_dir, image):
    editor = Pix2PixZero.from_pretrained(tiny_model_dir, cache_dir=cache_dir, progress=False)
    assert isinstance(editor._captioner, BlipCaptioner) and editor._captioner._model is None
    editor.edit(image, "cat", "dog", caption="a photo of a cat", config=FAST_EDIT, inversion_config=FAST_INV)
    assert editor._captioner._model is None
    with pytest.raises(ModelNotAvailableError, match="--caption") as error:
        editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    assert "Salesforce/blip-image-captioning-large" in str(error.value)
    assert "--captioner ./blip-image-captioning-large" in str(error.value)  # the option that takes the folder


@pytest.mark.parametrize(
    "model,message",
    [
        ("CompVis/stable-diffusion-v1-4", "local folder"),
        ("./no/such/folder", "does not exist"),
    ],
)
def test_missing_models_name_themselves_and_the_fix(model, message):
    with pytest.raises(ModelNotAvailableError, match=message) as error:
        Pix2PixZero.from_pretrained(model)
    assert model in str(error.value)


def test_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="no unet/"):
        Pix2PixZero.from_pretrained(tmp_path)


def test_bad_requests_give_clear_errors(editor, image):
    with pytest.raises(ValueError, match="same concept"):
        editor.edit(image, "cat", "cat", config=FAST_EDIT, inversion_config=FAST_INV)
    with pytest.raises(ValueError, match="non-empty"):
        editor.edit(image, "  ", "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    with pytest.raises(ValueError, match="unknown EditConfig fields"):
        editor.edit(image, "cat", "dog", xa_guidence=0.2)
    with pytest.raises(ValueError, match="num_steps must be a finite number from 1 to 1000, got 0"):
        EditConfig(num_steps=0)
    with pytest.raises(FileNotFoundError):
        editor.sentences("missing-bank.txt")
    with pytest.raises(TypeError, match="PIL.Image.fromarray"):  # not a path: a numpy array
        editor.edit(torch.zeros(8, 8, 3).numpy(), "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    with pytest.raises(TypeError, match="target is a concept"):
        editor.edit(image, "cat", None, config=FAST_EDIT, inversion_config=FAST_INV)
    with pytest.raises(ValueError, match="at least one target"):
        editor.edit(image, "cat", [], config=FAST_EDIT, inversion_config=FAST_INV)


def test_concepts_without_words_and_sentence_file_targets_are_never_pasted_into_the_caption(editor, image, tmp_path):
    """The caption's word swap needs words: an empty or wordless target is refused before any work, and a target
    given as a sentence file takes the banks' direction (its sentences read, a missing file an error)."""
    words = replace(FAST_EDIT, direction_from="caption")
    for target in ("", "   ", "🐶", "--"):
        with pytest.raises(ValueError, match="non-empty word"):
            editor.edit(image, "cat", target, config=words, inversion_config=FAST_INV)
    assert editor.components.eps_model.num_calls == 0  # refused before the inversion
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        editor.edit(image, "cat", str(tmp_path / "missing.txt"), config=words, inversion_config=FAST_INV)
    sentences = tmp_path / "dogs.txt"
    sentences.write_text("a photo of a dog\na dog on a sofa\n")
    result = editor.edit(image, "cat", ["dog", str(sentences)], config=words, inversion_config=FAST_INV)
    assert [m["direction"] for m in (result.metadata(0), result.metadata(1))] == [
        "sentences (a target is a sentence file)"
    ] * 2
    assert result.metadata(1)["sentences"]["target"] == [f"file:{sentences}", 2]
    assert editor.uses_caption_direction("a photo of a cat", "cat") and not editor.uses_caption_direction(
        "a photo of a cat", "cat", targets=[str(sentences)]
    )
    long_phrase = "dog " * 300  # longer than any file name: a phrase, not a path
    assert (
        editor.edit(image, "cat", long_phrase, config=words, inversion_config=FAST_INV).metadata()["direction"]
        == "caption"
    )


def test_a_source_word_past_what_the_text_encoder_reads_takes_the_banks_direction(editor, image):
    """A word swap the text encoder cannot see would edit toward nothing: the banks' direction does the edit, and the
    output says why."""
    words = replace(FAST_EDIT, direction_from="caption")
    limit = editor.components.tokenizer.model_max_length
    long_caption = "a photo of a sofa " * limit + "and a cat"
    late = editor.edit(image, "cat", "dog", EditOptions(config=words, inversion=FAST_INV, caption=long_caption))
    assert (
        late.metadata()["direction"]
        == f"sentences (the caption names 'cat' after the {limit} tokens the text encoder reads)"
    )
    assert not editor.uses_caption_direction(long_caption, "cat", words)
    early = "a cat on " + "a photo of a sofa " * limit  # named before the cut: the word swap
    assert (
        editor.edit(image, "cat", "dog", EditOptions(config=words, inversion=FAST_INV, caption=early)).metadata()[
            "direction"
        ]
        == "caption"
    )


def test_a_saved_inversion_keeps_its_caption_and_settings(editor, image):
    """Caption, inversion and image settings act when an image is inverted: given with an inversion they are refused,
    not silently dropped, and the edit records the inversion's own seed."""
    inversion = editor.invert(image, caption="a photo of a cat", config=FAST_INV, seed=3)
    for options, message in (
        (EditOptions(config=FAST_EDIT, caption="a photo of a dog"), "caption"),
        (EditOptions(config=FAST_EDIT, inversion=replace(FAST_INV, lambda_ac=3.0)), "lambda_ac"),
        (EditOptions(config=FAST_EDIT, image=editor.preset.image), "image settings"),
    ):
        with pytest.raises(ValueError, match=message):
            editor.edit(inversion, "cat", "dog", options)
    same = EditOptions(config=FAST_EDIT, caption="a photo of a cat", inversion=FAST_INV)  # what it was made with
    meta = editor.edit(inversion, "cat", "dog", same).metadata()
    assert meta["seed"] == 3 and meta["image_config"] is None


def test_a_save_that_fails_halfway_leaves_the_folder_as_it_was(editor, image, tmp_path, monkeypatch):
    """A full disk on the third file: the files this save had added are removed, so a rerun is not refused by
    "exists already"; a file that was there before stays."""
    from pix2pix_zero import api

    result = editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    real, calls = api.save_png, []

    def fails_third(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "save_png", fails_third)
    with pytest.raises(OSError, match="No space left"):
        result.save(out, stem="cat")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    monkeypatch.setattr(api, "save_png", real)
    assert len(result.save(out, stem="cat")) == 4  # the rerun writes everything


def test_mistyped_options_are_one_clear_error(editor, image, tmp_path):
    """A swapped or mistyped argument names itself, before any work (not an AttributeError deep in the edit)."""
    for options, message in (
        (dict(config=FAST_INV), "EditOptions.config is a EditConfig or None, got InversionConfig"),
        (dict(config={"num_steps": 4}), "EditOptions.config is a EditConfig or None, got dict"),
        (dict(caption=5), "EditOptions.caption is a str or None, got int"),
        (dict(direction=[0.0]), "EditOptions.direction is a Tensor or None, got list"),
        (dict(mask=torch.ones(4, 4).numpy()), "PIL.Image.fromarray"),
        (dict(extra=[("cat", "dog")]), r"\(source, target, weight\) triples"),
        (dict(extra=[("cat", "dog", "x")]), r"\(source, target, weight\) triples"),
        (dict(use_cache="no"), "use_cache is True or False"),
    ):
        with pytest.raises(TypeError, match=message):
            EditOptions(**options)
    with pytest.raises(ValueError, match="caption is empty"):
        EditOptions(caption="   ")
    with pytest.raises(ValueError, match="seed"):
        EditOptions(seed=-1)
    with pytest.raises(TypeError, match="config is a InversionConfig or None, got EditConfig"):
        editor.invert(image, config=FAST_EDIT)
    with pytest.raises(TypeError, match="prompt is a str or None, got NoneType|prompt is a str"):
        editor.generate_and_edit(5, "cat", "dog", config=FAST_EDIT)
    ran = editor.generate_and_edit("a photo of a cat", "cat", "dog", config=FAST_EDIT, exact_inversion=True)
    assert ran.metadata()["edit_config"]["exact_inversion"] is False  # nothing inverted: asked for, recorded as off
    saved = editor.invert(image, config=FAST_INV).save(tmp_path / "cat.inversion.safetensors")
    by_path = editor.edit(str(saved), "cat", "dog", EditOptions(config=FAST_EDIT))  # a saved inversion's path
    assert by_path.caption == "a photo of a cat"
    for stem in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="must be a file name"):
            by_path.save(tmp_path / "out", stem=stem)
    assert not (tmp_path / "escape.input.png").exists() and not (tmp_path / "out").exists()


def test_edit_refuses_an_inversion_made_with_other_steps(editor, image):
    inversion = editor.invert(image, config=FAST_INV)
    with pytest.raises(ValueError, match="same number"):
        editor.edit(inversion, "cat", "dog", num_steps=8)


def test_named_captioners_are_cached_per_image(tiny_model_dir, cache_dir, image):
    class NamedCaptioner(FixedCaptioner):
        cache_key = "some/blip"

    captioner = NamedCaptioner("a photo of a cat")
    editor = Pix2PixZero.from_pretrained(tiny_model_dir, captioner=captioner, cache_dir=cache_dir, progress=False)
    first = editor.invert(image, config=FAST_INV)
    second = editor.invert(image, config=FAST_INV)
    assert captioner.calls == 1 and first.caption == second.caption == "a photo of a cat"
    editor.invert(image.rotate(90), config=FAST_INV)
    assert captioner.calls == 2


def test_caption_cache_follows_the_captioner_folders_files(tmp_path):
    from pix2pix_zero.captioning import BlipCaptioner

    folder = tmp_path / "blip"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"old weights")
    captioner = BlipCaptioner(str(folder))
    before = captioner.cache_key
    assert before == captioner.cache_key  # stable while nothing changes
    (folder / "model.safetensors").write_bytes(b"new weights, other size")
    assert captioner.cache_key != before
    assert BlipCaptioner("Salesforce/blip-image-captioning-large").cache_key == "Salesforce/blip-image-captioning-large"


# -- hardening: inversions from other weights, corrupt caches, byte-identical PNGs ---------------------------------


def test_an_inversion_made_with_other_weights_is_refused(editor, image, tmp_path):
    from dataclasses import replace

    inversion = editor.invert(image, config=FAST_INV, use_cache=False)
    assert inversion.model_fingerprint == editor.components.fingerprint()
    saved = Inversion.load(inversion.save(tmp_path / "inv.safetensors"))
    assert saved.model_fingerprint == inversion.model_fingerprint
    editor.edit(saved, "cat", "dog", config=FAST_EDIT)  # the same weights: accepted
    with pytest.raises(ValueError, match="invert the image again"):
        editor.edit(replace(saved, model_fingerprint="0123456789abcdef"), "cat", "dog", config=FAST_EDIT)
    old = replace(saved, model_fingerprint="")  # files of earlier versions: judged by the model id
    editor.edit(old, "cat", "dog", config=FAST_EDIT)
    with pytest.raises(ValueError, match="not with"):
        editor.edit(replace(old, model="someone/other-model"), "cat", "dog", config=FAST_EDIT)
    legacy = replace(saved, model_fingerprint=editor.components.legacy_fingerprint())  # an earlier version's file
    editor.edit(legacy, "cat", "dog", config=FAST_EDIT)


def test_the_fingerprint_sees_a_change_to_any_weight(tiny_model_dir, tmp_path):
    """A merged LoRA moves attention weights in the middle of the UNet: another model, for the caches and the
    inversion files' check (a sample of three tensors, the earlier fingerprint, did not see it)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from pix2pix_zero.components import load_components

    changed = shutil.copytree(tiny_model_dir, tmp_path / "merged")
    [weights] = (changed / "unet").glob("*.safetensors")
    tensors = load_file(weights)
    names = [n for n in tensors if "attn" in n and n.endswith("to_q.weight")]
    assert names, sorted(tensors)
    tensors[names[0]] = tensors[names[0]] + 0.01
    save_file(tensors, weights)
    original, merged = load_components(tiny_model_dir), load_components(changed)
    assert merged.fingerprint() != original.fingerprint()
    assert load_components(shutil.copytree(tiny_model_dir, tmp_path / "copy")).fingerprint() == original.fingerprint()


def test_corrupt_cache_files_are_misses_and_get_replaced(editor, image, cache_dir):
    first = editor.invert(image, config=FAST_INV)
    [inversion_file] = (cache_dir / "inversions").glob("*.safetensors")
    inversion_file.write_bytes(b"\x00" * 100)  # a disk error, a kill from an older version, a hostile write
    for concept_file in (cache_dir / "concepts").glob("*.safetensors"):
        concept_file.write_bytes(b"garbage")
    again = editor.invert(image, config=FAST_INV)
    assert torch.equal(again.x_T, first.x_T)
    assert torch.equal(Inversion.load(inversion_file).x_T, first.x_T)  # replaced by a good file
    editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV)  # reads the concept files again
    assert editor.concepts.entries() and all(
        entry.shape[0] == 1 for entry in editor.concepts.entries()
    )  # the concept files were rebuilt


def test_the_same_run_gives_byte_identical_pngs(editor, image, tmp_path):
    runs = []
    for folder in ("one", "two"):
        result = editor.edit(image, "cat", "dog", config=FAST_EDIT, inversion_config=FAST_INV, seed=3, use_cache=False)
        written = result.save(tmp_path / folder)
        runs.append({p.name: p.read_bytes() for p in written})
    assert runs[0] == runs[1]  # the wall-clock timings live in the .json sidecars only
    sidecar = (tmp_path / "one" / "image.grid.json").read_text()
    assert "timings_s" in sidecar and "timings_s" not in read_png_metadata(tmp_path / "one" / "image.grid.png")


def test_outputs_are_written_all_or_none(editor, image, tmp_path):
    result = editor.edit(image, "cat", ["dog", "horse"], config=FAST_EDIT, inversion_config=FAST_INV)
    out = tmp_path / "out"
    out.mkdir()
    (out / "image.edit-horse.png").write_bytes(b"earlier")
    with pytest.raises(OutputExistsError, match="image.edit-horse.png"):
        result.save(out)
    assert sorted(p.name for p in out.iterdir()) == ["image.edit-horse.png"]  # nothing new beside the stale file
    assert (out / "image.edit-horse.png").read_bytes() == b"earlier"
    with pytest.raises(ValueError, match="same output file name"):
        result.output_paths(tmp_path, "image", ["Dog", "dog!"])


def test_api_refuses_bad_seeds_and_sizes(editor, image):
    for seed in (-1, 2**63, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            editor.invert(image, config=FAST_INV, seed=seed)
    for size in (0, -64, 100_000):
        with pytest.raises(ValueError, match="size"):
            editor.generate_and_edit("a cat", "cat", "dog", size=size, config=FAST_EDIT)
    factor = editor.components.vae_scale_factor
    with pytest.raises(
        ValueError, match=f"size must be a multiple of {factor} pixels on this model, e.g. {4 * factor}"
    ):
        editor.generate_and_edit("a cat", "cat", "dog", size=4 * factor + 1, config=FAST_EDIT)  # not silently cut
