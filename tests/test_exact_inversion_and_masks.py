"""Exact inversion, self-attention injection, masks and the edit's options object, on a tiny random SD model."""

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pix2pix_zero import EditConfig, EditOptions, Inversion, InversionConfig, Pix2PixZero
from pix2pix_zero.api import _options_from
from pix2pix_zero.attention import AttentionRecorder, SelfAttentionSharer, hooked_cross_attention, shared_self_attention
from pix2pix_zero.batch import read_items, run_batch
from pix2pix_zero.cli import main
from pix2pix_zero.config import override
from pix2pix_zero.editing import AutoMask, edit
from pix2pix_zero.guidance import Conditioning
from pix2pix_zero.images import pil_to_tensor, tensor_to_pil

FAST_INV = InversionConfig(num_steps=6, num_reg_steps=1, num_ac_rolls=1)
FAST_EDIT = EditConfig(num_steps=6)


class FixedCaptioner:
    def __call__(self, image):
        return "a photo of a cat"


@pytest.fixture()
def editor(tiny_model_dir, cache_dir):
    return Pix2PixZero.from_pretrained(tiny_model_dir, captioner=FixedCaptioner(), cache_dir=cache_dir, progress=False)


@pytest.fixture(scope="module")
def image():
    pixels = torch.linspace(0, 255, 40 * 30 * 3).reshape(30, 40, 3).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def _pixels(picture):
    return np.asarray(picture.convert("RGB"), dtype=np.int16)


def _zero_direction(editor):
    return torch.zeros_like(editor.components.encode_text(["a photo of a cat"]))


# -- exact inversion ------------------------------------------------------------------------------


def test_exact_inversion_with_a_zero_edit_returns_the_vae_round_trip(editor, image):
    inversion = editor.invert(image, config=FAST_INV)
    c = editor.components
    round_trip = c.decode_latents(c.encode_image(pil_to_tensor(inversion.image).to(c.device)))
    zero = _zero_direction(editor)
    exact = EditConfig(num_steps=6, xa_guidance=0.0, exact_inversion=True)
    # latents: both branches end on z*_0, the input's own latent, to float precision
    reference, target = Conditioning(cond=c.encode_text(["a photo of a cat"])), None
    target = Conditioning(cond=reference.cond + zero, uncond=reference.cond, scale=5.0)
    recorder = AttentionRecorder()
    with hooked_cross_attention(c.unet, recorder):
        edited, reconstructed = edit(
            c.eps_model, recorder, c.schedule, inversion.x_T, reference, target, exact, trajectory=inversion.trajectory
        )
        plain, plain_ref = edit(
            c.eps_model,
            recorder,
            c.schedule,
            inversion.x_T,
            reference,
            target,
            FAST_EDIT.__class__(num_steps=6, xa_guidance=0.0),
        )
    assert torch.allclose(edited, inversion.latents, atol=1e-5) and torch.allclose(
        reconstructed, inversion.latents, atol=1e-6
    )
    assert (plain_ref - inversion.latents).abs().max() > 1e-3  # plain DDIM on this random model does not come back
    # images: the decoded edit is the VAE round trip of the input
    result = editor.edit(inversion, "cat", "dog", EditOptions(config=exact, direction=zero))
    expected = _pixels(tensor_to_pil(round_trip)[0])
    assert np.abs(_pixels(result.image) - expected).max() <= 1
    assert np.abs(_pixels(result.reconstruction) - expected).max() <= 1
    assert result.metadata()["edit_config"]["exact_inversion"] is True


def test_trajectory_round_trips_through_save_load_and_the_cache(editor, image, tmp_path):
    inversion = editor.invert(image, config=FAST_INV)
    assert inversion.trajectory.shape == (7, 1, 4, 6, 8)  # steps + 1 points of (1, 4, h, w)
    assert torch.equal(inversion.trajectory[-1], inversion.x_T) and torch.equal(
        inversion.trajectory[0], inversion.latents
    )
    loaded = Inversion.load(inversion.save(tmp_path / "inv.safetensors"))
    assert torch.equal(loaded.trajectory, inversion.trajectory)
    calls = editor.components.eps_model.num_calls
    cached = editor.invert(image, config=FAST_INV)
    assert editor.components.eps_model.num_calls == calls and torch.equal(cached.trajectory, inversion.trajectory)


def test_exact_inversion_refuses_what_it_cannot_retrace(editor, image):
    exact = EditConfig(num_steps=6, exact_inversion=True)
    official = editor.invert(
        image, config=InversionConfig(num_steps=6, num_reg_steps=1, num_ac_rolls=1, grid="official")
    )
    with pytest.raises(ValueError, match="mirror"):
        editor.edit(official, "cat", "dog", EditOptions(config=exact))
    inversion = editor.invert(image, config=FAST_INV)
    old = Inversion(
        inversion.x_T,
        inversion.latents,
        inversion.caption,
        inversion.image,
        inversion.config,
        inversion.model,
        inversion.seed,
        inversion.image_sha256,
    )
    with pytest.raises(ValueError, match="no stored trajectory"):
        editor.edit(old, "cat", "dog", EditOptions(config=exact))


def test_baselines_run_with_exact_inversion(editor, image):
    from pix2pix_zero.baselines import ddim_word_swap, plain_inversion_config, prompt_to_prompt_word_swap

    inversion = editor.invert(image, "a photo of a cat", plain_inversion_config(6))
    plain = ddim_word_swap(editor, inversion, "cat", "dog", "a photo of a cat", num_steps=6)
    exact = ddim_word_swap(editor, inversion, "cat", "dog", "a photo of a cat", num_steps=6, exact_inversion=True)
    assert plain.image.tobytes() != exact.image.tobytes()
    p2p = prompt_to_prompt_word_swap(
        editor, inversion, "cat", "dog", "a photo of a cat", num_steps=6, exact_inversion=True
    )
    c = editor.components
    round_trip = tensor_to_pil(c.decode_latents(inversion.latents))[0]
    assert np.abs(_pixels(p2p.reconstruction) - _pixels(round_trip)).max() <= 1  # its reference is back on the input


# -- self-attention injection ---------------------------------------------------------------------


def test_self_attention_injection_changes_the_edit_and_matches_with_and_without_the_fused_call(editor, image):
    inversion = editor.invert(image, config=FAST_INV)
    before = dict(editor.components.unet.attn_processors)
    plain = editor.edit(inversion, "cat", "dog", EditOptions(config=FAST_EDIT))
    injected = editor.edit(
        inversion, "cat", "dog", EditOptions(config=EditConfig(num_steps=6, self_attention_injection=0.5))
    )
    unfused = editor.edit(
        inversion,
        "cat",
        "dog",
        EditOptions(config=EditConfig(num_steps=6, self_attention_injection=0.5, fuse_reference=False)),
    )
    assert plain.image.tobytes() != injected.image.tobytes()
    assert np.abs(_pixels(injected.image) - _pixels(unfused.image)).max() <= 1  # the same reference step is shared
    assert dict(editor.components.unet.attn_processors) == before
    assert injected.metadata()["edit_config"]["self_attention_injection"] == 0.5


def test_late_guidance_is_recorded_per_edit_and_changes_only_what_it_strengthens(editor, image):
    inversion = editor.invert(image, config=FAST_INV)
    plain = editor.edit(inversion, "cat", ["dog", "bird"], EditOptions(config=FAST_EDIT))
    off_threshold = override(FAST_EDIT, late_guidance_factor=3.0, late_guidance_area=0.0, late_guidance_movement=0.0)
    unmoved = editor.edit(inversion, "cat", ["dog", "bird"], EditOptions(config=off_threshold))
    every = override(FAST_EDIT, late_guidance_factor=3.0, late_guidance_area=0.0, late_guidance_movement=100.0)
    strengthened = editor.edit(inversion, "cat", ["dog", "bird"], EditOptions(config=every))
    assert [e["late_guidance"] for e in plain.edits] == [None, None]
    assert [e["late_guidance"]["strengthened"] for e in unmoved.edits] == [False, False]
    assert [e["late_guidance"]["strengthened"] for e in strengthened.edits] == [True, True]
    assert all(e["late_guidance"]["moved"] > 0 and e["late_guidance"]["area"] is None for e in strengthened.edits)
    by_area = override(FAST_EDIT, late_guidance_factor=3.0, late_guidance_area=1.0)  # the caption names the cat
    covered = editor.edit(inversion, "cat", "dog", EditOptions(config=by_area)).edits[0]["late_guidance"]
    assert 0 < covered["area"] <= 1.0 and covered["strengthened"] == (covered["area"] < 1.0)
    assert [a.tobytes() for a in unmoved.images] == [a.tobytes() for a in plain.images]
    assert all(a.tobytes() != b.tobytes() for a, b in zip(strengthened.images, plain.images))
    meta = strengthened.metadata(1)
    assert meta["edit_config"]["late_guidance_factor"] == 3.0 and meta["late_guidance"]["strengthened"] is True
    # the cross-attention guidance alone weakened for the small edits: judged small, CFG as it was, images changed
    weakened_xa = override(FAST_EDIT, late_guidance_xa=0.0, late_guidance_area=0.0, late_guidance_movement=100.0)
    weakened = editor.edit(inversion, "cat", ["dog", "bird"], EditOptions(config=weakened_xa))
    assert [(e["late_guidance"]["small"], e["late_guidance"]["strengthened"]) for e in weakened.edits] == [
        (True, False),
        (True, False),
    ]
    assert all(a.tobytes() != b.tobytes() for a, b in zip(weakened.images, plain.images))
    assert weakened.metadata(0)["edit_config"]["late_guidance_xa"] == 0.0


def test_shared_self_attention_restores_processors_after_an_exception(editor):
    unet = editor.components.unet
    before = dict(unet.attn_processors)
    with pytest.raises(RuntimeError, match="boom"):
        with shared_self_attention(unet, SelfAttentionSharer()):
            assert dict(unet.attn_processors) != before
            raise RuntimeError("boom")
    assert dict(unet.attn_processors) == before


def test_injecting_the_reference_into_itself_changes_nothing(editor):
    """A row that takes its own queries and keys computes what it computed: the processor is exact attention."""
    c = editor.components
    x = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(1))
    emb = c.encode_text(["a photo of a cat"])
    expected = c.eps_model(x, 500, emb)
    sharer = SelfAttentionSharer()
    with shared_self_attention(c.unet, sharer):
        with sharer.sharing(capture_last=1):
            captured = c.eps_model(x, 500, emb)
        with sharer.sharing(inject=torch.tensor([0])):
            injected = c.eps_model(x, 500, emb)
    assert torch.allclose(captured, expected, atol=1e-5) and torch.allclose(injected, expected, atol=1e-5)


# -- masks ----------------------------------------------------------------------------------------


def _left_half_mask(path, size=(80, 60), mode="L"):
    mask = Image.new(mode, size, 0)
    mask.paste(255 if mode == "L" else (255, 255, 255), (0, 0, size[0] // 2, size[1]))
    mask.save(path)
    return path


def test_pixels_outside_a_mask_are_the_inputs_beyond_the_soft_edge(editor, image, tmp_path):
    inversion = editor.invert(image, config=FAST_INV)
    mask = _left_half_mask(tmp_path / "mask.png", mode="RGB")  # any size and mode: resized to the 16x12 image
    cfg = EditConfig(num_steps=6, mask_feather=1)
    masked = editor.edit(inversion, "cat", "dog", EditOptions(config=cfg, mask=mask))
    free = editor.edit(inversion, "cat", "dog", EditOptions(config=cfg))
    got, original = _pixels(masked.image), _pixels(inversion.image)
    assert np.array_equal(got[:, 8 + 1 :], original[:, 8 + 1 :])  # right of the edge (8) and its 1-pixel soft band
    assert not np.array_equal(got[:, :7], original[:, :7])
    assert not np.array_equal(_pixels(free.image)[:, 9:], original[:, 9:])  # without the mask the right side changes
    assert masked.metadata()["mask"] == f"file:{mask}"
    written = masked.save(tmp_path / "out", stem="cat")
    assert (tmp_path / "out/cat.mask.png") in written
    saved = np.asarray(Image.open(tmp_path / "out/cat.mask.png"))
    assert saved[:, :8].min() == 255 and saved[:, 8:].max() == 0


def test_all_white_mask_equals_no_mask_and_black_or_unreadable_masks_are_errors(editor, image, tmp_path):
    inversion = editor.invert(image, config=FAST_INV)
    Image.new("L", (5, 5), 255).save(tmp_path / "white.png")
    Image.new("RGBA", (9, 7), (255, 255, 255, 0)).save(tmp_path / "clear.png")  # transparent counts as black
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    white = editor.edit(inversion, "cat", "dog", EditOptions(config=FAST_EDIT, mask=tmp_path / "white.png"))
    none = editor.edit(inversion, "cat", "dog", EditOptions(config=FAST_EDIT))
    assert white.image.tobytes() == none.image.tobytes() and white.masks is None
    with pytest.raises(ValueError, match="all black: nothing may change"):
        editor.edit(inversion, "cat", "dog", EditOptions(config=FAST_EDIT, mask=tmp_path / "clear.png"))
    with pytest.raises(ValueError, match="not an image"):
        editor.edit(inversion, "cat", "dog", EditOptions(config=FAST_EDIT, mask=tmp_path / "broken.png"))
    with pytest.raises(ValueError, match="not found"):
        editor.edit(inversion, "cat", "dog", EditOptions(config=FAST_EDIT, mask=tmp_path / "missing.png"))


def test_a_bad_mask_fails_before_the_image_is_inverted(editor, image, tmp_path, monkeypatch):
    Image.new("L", (40, 30), 0).save(tmp_path / "black.png")

    def inverted(*args, **kwargs):
        raise AssertionError("the image was inverted before its mask was checked")

    monkeypatch.setattr(editor, "invert", inverted)
    cases = [
        (tmp_path / "black.png", "all black"),
        (tmp_path / "missing.png", "not found"),
        (tmp_path, "is a folder"),
        ("AUTO", "not found: AUTO \\(for the automatic mask, write 'auto'\\)"),
    ]
    for mask, error in cases:
        with pytest.raises(ValueError, match=error):
            editor.edit(image, "cat", "dog", EditOptions(config=FAST_EDIT, mask=mask))


def test_auto_mask_is_written_shown_in_the_grid_and_keeps_the_input_outside(editor, image, tmp_path):
    inversion = editor.invert(image, config=FAST_INV)
    cfg = EditConfig(num_steps=6, auto_mask_threshold=0.6, mask_feather=0)
    result = editor.edit(inversion, "cat", ["dog", "horse"], EditOptions(config=cfg, mask="auto"))
    plain = editor.edit(inversion, "cat", ["dog", "horse"], EditOptions(config=cfg))
    assert result.metadata(1)["mask"] == "auto" and len(result.masks) == 2
    for edited, mask in zip(result.images, result.masks):
        outside = np.asarray(mask) == 0
        assert 0 < outside.sum() < outside.size  # the threshold left part of the image out
        assert np.array_equal(_pixels(edited)[outside], _pixels(inversion.image)[outside])
    assert result.grid().width > plain.grid().width or result.grid().height > plain.grid().height
    written = {p.name for p in result.save(tmp_path, stem="cat")}
    masks = {n for n in written if ".mask" in n}
    assert masks == {"cat.mask.png"} or masks == {"cat.mask-dog.png", "cat.mask-horse.png"}


def test_the_auto_mask_field_edits_as_mask_auto_and_a_given_mask_wins(editor, image):
    inversion = editor.invert(image, config=FAST_INV)
    cfg = EditConfig(num_steps=6, auto_mask_threshold=0.6, mask_feather=0)
    asked = editor.edit(inversion, "cat", "dog", EditOptions(config=cfg, mask="auto"))
    by_config = editor.edit(inversion, "cat", "dog", EditOptions(config=override(cfg, auto_mask=True)))
    assert by_config.metadata()["mask"] == "auto" and by_config.metadata()["edit_config"]["auto_mask"] is True
    assert by_config.image.tobytes() == asked.image.tobytes()
    assert by_config.masks[0].tobytes() == asked.masks[0].tobytes()
    white = Image.new("L", image.size, 255)  # a given mask (here all white: the whole image) overrides the field
    given = editor.edit(inversion, "cat", "dog", EditOptions(config=override(cfg, auto_mask=True), mask=white))
    plain = editor.edit(inversion, "cat", "dog", EditOptions(config=cfg))
    assert given.metadata()["mask"] == "none" and given.image.tobytes() == plain.image.tobytes()


def test_synthetic_mode_keeps_the_generation_outside_the_auto_mask(editor, tmp_path):
    cfg = EditConfig(num_steps=6, auto_mask=True, auto_mask_threshold=0.6, mask_feather=0)
    masked = editor.generate_and_edit("a photo of a cat", "cat", ["dog", "horse"], seed=3, config=cfg)
    free = editor.generate_and_edit(
        "a photo of a cat", "cat", ["dog", "horse"], seed=3, config=override(cfg, auto_mask=False)
    )
    assert masked.metadata(1)["mask"] == "auto" and masked.metadata()["edit_config"]["auto_mask"] is True
    assert free.metadata()["mask"] == "none" and free.masks is None
    assert masked.input.tobytes() == free.input.tobytes()  # the same generation: the mask only bounds the edit
    for edited, unmasked, mask in zip(masked.images, free.images, masked.masks):
        outside = np.asarray(mask) == 0
        assert 0 < outside.sum() < outside.size
        assert np.array_equal(_pixels(edited)[outside], _pixels(masked.input)[outside])
        assert not np.array_equal(_pixels(unmasked)[outside], _pixels(masked.input)[outside])
    assert any(".mask" in p.name for p in masked.save(tmp_path, stem="seed3"))


def test_auto_mask_reads_where_the_edit_changes_the_maps():
    auto = AutoMask((4, 4), threshold=0.5, start=0.0)
    ref = {"layer": torch.full((1, 2, 16, 3), 1 / 3)}
    changed = ref["layer"].clone()
    changed[..., 5, :] = torch.tensor([1.0, 0.0, 0.0])  # pixel (1, 1) of the 4x4 grid attends elsewhere
    auto.add({"layer": changed}, ref, 0, 10)
    mask = auto.current()[0, 0]
    assert mask[1, 1] == 1 and mask[3, 3] == 0 and mask.sum() < 16


def test_auto_mask_with_the_edited_words_reads_where_they_attend():
    """Prompt-to-prompt's local blend: the source word's maps in the reference plus the target word's in the edit."""
    ref = {"layer": torch.full((1, 2, 16, 4), 0.25)}
    ref["layer"][..., 5, :] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # pixel (1, 1) attends to the source word (token 1)
    edit = ref["layer"].clone().expand(2, -1, -1, -1).clone()
    edit[1, :, 10, :] = torch.tensor([0.0, 0.0, 0.0, 1.0])  # in the second edit pixel (2, 2) attends to its target
    edit[:, :, 15, :] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # pixel (3, 3) moves to another token: not a word edited
    auto = AutoMask((4, 4), threshold=0.9, start=0.0, words=[([1], [2]), ([1], [3])])
    auto.add({"layer": edit}, ref, 0, 10)
    first, second = auto.current()[:, 0]
    assert first[1, 1] == 1 and first[3, 3] == 0 and first.sum() == 9  # the source word's pixel, widened by a cell
    assert second[2, 2] == 1 and second[0, 0] == 0
    by_change = AutoMask((4, 4), threshold=0.9, start=0.0)  # without words: where the maps moved, (3, 3) included
    by_change.add({"layer": edit}, ref, 0, 10)
    assert by_change.current()[0, 0, 3, 3] == 1


def test_the_caption_direction_gives_the_auto_mask_the_edited_words(editor, image, monkeypatch):
    from pix2pix_zero import api

    cat = editor.components.token_positions("a photo of a cat", "cat")
    tokenizer = editor.components.tokenizer
    ids = tokenizer("a photo of a cat").input_ids
    assert cat and tokenizer.decode([ids[i] for i in cat]).strip() == "cat"
    assert editor.components.token_positions("a photo of a cat", "horse") == []
    dog = editor.components.token_positions("a photo of a dog", "dog")
    edits = [{"direction": "caption", "source": "cat", "target": "dog", "edited_caption": "a photo of a dog"}]
    assert editor._edited_words("a photo of a cat", edits) == [(cat, dog)]
    assert (
        editor._edited_words("a photo of a cat", [{"direction": "sentences", "source": "cat", "target": "dog"}]) is None
    )
    made = []  # the words each automatic mask is made with

    class RecordingAutoMask(AutoMask):
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("words"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api, "AutoMask", RecordingAutoMask)
    inversion = editor.invert(image, config=FAST_INV)
    cfg = EditConfig(num_steps=6, direction_from="caption", auto_mask=True)
    assert editor.edit(inversion, "cat", "dog", EditOptions(config=cfg)).metadata()["mask"] == "auto"
    editor.edit(inversion, "cat", "dog", EditOptions(config=override(cfg, direction_from="sentences")))
    assert made == [[(cat, dog)], None]


def test_batch_manifest_column_mask(editor, tmp_path, image):
    image.save(tmp_path / "a.png")
    _left_half_mask(tmp_path / "a-mask.png")
    (tmp_path / "m.csv").write_text(
        "image,source,target,caption,mask,id\na.png,cat,dog,a photo of a cat,a-mask.png,a\n"
        "a.png,cat,horse,a photo of a cat,auto,second\n"
    )
    (tmp_path / "m2.csv").write_text("image,source,target,caption,id,mask\na.png,cat,dog,a photo of a cat,plain,\n")
    items = read_items(tmp_path / "m.csv")
    assert items[0].mask == str(tmp_path / "a-mask.png") and items[1].mask == "auto"
    assert read_items(tmp_path / "m2.csv")[0].mask is None
    assert read_items(tmp_path / "m2.csv", mask="auto")[0].mask == "auto"
    summary = run_batch(editor, items, tmp_path / "out", progress=False, config=FAST_EDIT, inversion_config=FAST_INV)
    assert summary.done == 2 and summary.failed == 0
    assert (tmp_path / "out/images/a.mask.png").is_file() and (tmp_path / "out/images/second.mask.png").is_file()
    records = [json.loads(line) for line in (tmp_path / "out/results.jsonl").read_text().splitlines()]
    assert records[0]["mask"].endswith("a-mask.png") and records[1]["mask"] == "auto"


def test_cli_edit_with_mask_and_new_flags(tmp_path, image, tiny_model_dir, cache_dir):
    image.save(tmp_path / "a.png")
    _left_half_mask(tmp_path / "mask.png")
    args = [
        "edit",
        str(tmp_path / "a.png"),
        "-s",
        "cat",
        "-t",
        "dog",
        "-o",
        str(tmp_path / "out"),
        "--model",
        str(tiny_model_dir),
        "--steps",
        "4",
        "--num-reg-steps",
        "1",
        "--num-ac-rolls",
        "1",
        "--caption",
        "a photo of a cat",
        "--mask",
        str(tmp_path / "mask.png"),
        "--exact-inversion",
        "--self-attention-injection",
        "0.5",
        "-q",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out/a.edit-dog.json").read_text())
    assert meta["edit_config"]["exact_inversion"] is True and meta["edit_config"]["self_attention_injection"] == 0.5
    assert (tmp_path / "out/a.mask.png").is_file()
    Image.new("L", (4, 4), 0).save(tmp_path / "black.png")
    at = args.index("--mask") + 1
    bad = CliRunner().invoke(main, args[:at] + [str(tmp_path / "black.png")] + args[at + 1 :] + ["--overwrite"])
    assert bad.exit_code != 0 and "all black" in bad.output and "Traceback" not in bad.output


# -- the edit's options object --------------------------------------------------------------------


def test_deprecated_edit_keywords_still_work_and_warn(editor, image):
    inversion = editor.invert(image, config=FAST_INV)
    new = editor.edit(inversion, "cat", "dog", EditOptions(config=EditConfig(num_steps=6, xa_guidance=0.2), seed=3))
    with pytest.warns(DeprecationWarning, match="EditOptions"):
        old = editor.edit(inversion, "cat", "dog", config=FAST_EDIT, xa_guidance=0.2, seed=3)
    assert old.image.tobytes() == new.image.tobytes()
    assert old.metadata()["edit_config"] == new.metadata()["edit_config"]
    assert old.metadata()["seed"] == new.metadata()["seed"] == inversion.seed  # an inversion's edit: its own seed
    with pytest.warns(DeprecationWarning):
        assert _options_from(None, {"seed": 3, "caption": "a cat"}, editor.preset.edit).seed == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        editor.edit(inversion, "cat", "dog", EditOptions(config=FAST_EDIT))  # the new form does not warn
    with pytest.raises(ValueError, match="unknown EditConfig fields"), pytest.warns(DeprecationWarning):
        editor.edit(inversion, "cat", "dog", xa_guidence=0.2)


# -- synthetic mode -------------------------------------------------------------------------------


def test_generate_uses_and_records_its_negative_prompt(editor):
    caption = editor.generate_and_edit("a photo of a cat", "cat", "dog", seed=1, config=EditConfig(num_steps=4))
    empty = editor.generate_and_edit(
        "a photo of a cat", "cat", "dog", seed=1, config=EditConfig(num_steps=4, negative_prompt="empty")
    )
    assert caption.metadata()["edit_config"]["negative_prompt"] == "caption"
    assert empty.metadata()["edit_config"]["negative_prompt"] == "empty"
    assert caption.input.tobytes() == empty.input.tobytes()  # the same generation (the reference branch)
    assert caption.image.tobytes() != empty.image.tobytes()  # a different edit: the negative prompt ran
    exact = editor.generate_and_edit(
        "a photo of a cat", "cat", "dog", seed=1, config=EditConfig(num_steps=4, exact_inversion=True)
    )
    assert exact.metadata()["edit_config"]["exact_inversion"] is False  # nothing inverted: recorded as what ran


def test_official_synthetic_mode_edits_against_the_empty_prompt_as_the_authors_do(tiny_model_dir, cache_dir):
    """edit_synthetic.py runs CFG against "" for the edit as well; `default` keeps its edit's negative prompt."""
    from pix2pix_zero.config import get_preset

    official = get_preset("official")
    assert official.synthetic_edit().negative_prompt == "empty" and official.edit.negative_prompt == "caption"
    assert official.synthetic_edit().xa_guidance == 0.15
    assert get_preset("default").synthetic_edit().negative_prompt == get_preset("default").edit.negative_prompt
    steps = {"num_steps": 4}
    editor = Pix2PixZero.from_pretrained(tiny_model_dir, preset="official", cache_dir=cache_dir, progress=False)
    ran = editor.generate_and_edit("a photo of a cat", "cat", "dog", seed=1, **steps)
    assert ran.metadata()["edit_config"]["negative_prompt"] == "empty"
    empty = editor.generate_and_edit(
        "a photo of a cat", "cat", "dog", seed=1, config=override(official.synthetic_edit(), **steps)
    )
    caption = editor.generate_and_edit(
        "a photo of a cat",
        "cat",
        "dog",
        seed=1,
        config=override(official.synthetic_edit(), negative_prompt="caption", **steps),
    )
    assert ran.image.tobytes() == empty.image.tobytes() != caption.image.tobytes()
