"""A non-square input to a model that knows square images only (the bundled one): padded with its border colour,
never stretched, and every output cropped back to the input's aspect ratio; the captioner's loops are caught."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from pix2pix_zero.api import Pix2PixZero
from pix2pix_zero.captioning import BlipCaptioner, repeated_phrase
from pix2pix_zero.config import override
from pix2pix_zero.images import crop_to_box, pad_to_square
from pix2pix_zero.shapesworld import world


def _wide_scene(width=200, height=130):
    """A red circle on the bundled world's white, in a wide frame."""
    image = Image.new("RGB", (width, height), world.BACKGROUND_COLORS["white"])
    ImageDraw.Draw(image).ellipse((70, 35, 130, 95), fill=world.OBJECT_COLORS["red"])
    return image


def _red_extent(image):
    red = np.asarray(image, dtype=int)
    mask = (red[..., 0] > 150) & (red[..., 1] < 110) & (red[..., 2] < 110)
    ys, xs = np.nonzero(mask)
    return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def test_pad_to_square_uses_the_border_colour_and_crop_to_box_undoes_it():
    image = _wide_scene()
    square, box = pad_to_square(image)
    assert square.size == (200, 200) and square.getpixel((100, 5)) == world.BACKGROUND_COLORS["white"]
    assert box == (0.0, 35 / 200, 1.0, 165 / 200)
    assert np.array_equal(np.asarray(crop_to_box(square, box)), np.asarray(image))
    tall, tall_box = pad_to_square(image.transpose(Image.Transpose.ROTATE_90))
    assert tall.size == (200, 200) and tall_box == (35 / 200, 0.0, 165 / 200, 1.0)
    assert pad_to_square(square) == (square, (0.0, 0.0, 1.0, 1.0))
    small = crop_to_box(square.resize((64, 64)), box)
    assert small.size == (64, 42)  # the input's aspect ratio at the model's size


@pytest.fixture(scope="module")
def bundled():
    return Pix2PixZero.from_pretrained("shapesworld", progress=False)


def test_the_bundled_model_pads_a_wide_input_and_crops_the_edit_back(bundled, tmp_path):
    assert bundled.pads_to_square
    prepared = bundled.prepare_image(_wide_scene())
    assert prepared.size == (64, 64)
    width, height = _red_extent(prepared)
    assert abs(width - height) <= 1  # the circle stays round
    fast_inversion = override(bundled.preset.inversion, num_steps=4, num_reg_steps=1, num_ac_rolls=1)
    result = bundled.edit(
        _wide_scene(),
        "circle",
        "square",
        caption="a red circle in the center on a white background",
        config=override(bundled.preset.edit, num_steps=4),
        inversion_config=fast_inversion,
        use_cache=False,
    )
    assert result.input.size == result.reconstruction.size == result.image.size == (64, 42)
    assert result.config["padded_to_square"] == {"content_box": [0.0, 35 / 200, 1.0, 165 / 200]}
    inversion = bundled.invert(_wide_scene(), caption="a red circle", config=fast_inversion, use_cache=False)
    inversion.save(tmp_path / "wide.safetensors")
    from pix2pix_zero.api import Inversion

    assert Inversion.load(tmp_path / "wide.safetensors").content_box == inversion.content_box


def test_a_model_without_the_setting_keeps_resizing(tiny_model_dir):
    editor = Pix2PixZero.from_pretrained(str(tiny_model_dir), captioner=lambda image: "x", progress=False)
    assert not editor.pads_to_square
    assert editor.prepare_image(_wide_scene()).size[0] != editor.prepare_image(_wide_scene()).size[1]


def test_the_bundled_captioner_describes_a_padded_wide_scene_like_its_training_captions(bundled):
    caption = bundled.caption(bundled.prepare_image(_wide_scene()))
    found = world.parse_caption(caption)
    assert found["shapes"] == ["circle"] and found["colors"] == ["red"], caption
    assert caption.endswith("background") and not repeated_phrase(caption)


def test_repeated_phrase():
    loop = "a large red circle in the center and a medium red circle in the center and a small red circle in the center"
    assert repeated_phrase(loop)
    assert not repeated_phrase("a red circle in the top left and a red circle in the center on a white background")


class _FakeBlip:
    """Greedy decoding that loops unless phrases may not repeat: the captioner must retry, then warn if still cut
    off."""

    def __init__(self, loops_on_retry):
        self.loops_on_retry, self.calls = loops_on_retry, []
        self.generation_config = type("Config", (), {"eos_token_id": 3})()
        self.dtype = torch.float32

    def generate(self, max_new_tokens, no_repeat_ngram_size=None, **inputs):
        self.calls.append(no_repeat_ngram_size)
        if no_repeat_ngram_size is None or self.loops_on_retry:
            return torch.tensor([[5] + [7] * max_new_tokens])  # never ends
        return torch.tensor([[5, 8, 3]])


class _FakeProcessor:
    def __call__(self, images, text, return_tensors):
        class Inputs(dict):
            def to(self, device):
                return self

        return Inputs(pixel_values=torch.zeros(1, 3, 4, 4))

    def batch_decode(self, out, skip_special_tokens):
        return [
            " ".join(
                {5: "", 7: "red circle", 8: "a red circle on a white background", 3: ""}[int(t)] for t in out[0]
            ).strip()
        ]


@pytest.mark.parametrize("loops_on_retry", [False, True])
def test_a_cut_off_caption_is_generated_again_without_loops(loops_on_retry):
    captioner = BlipCaptioner("fake", max_new_tokens=6)
    captioner._model, captioner._processor = _FakeBlip(loops_on_retry), _FakeProcessor()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        caption = captioner(Image.new("RGB", (8, 8)))
    assert captioner._model.calls == [None, 5]
    if loops_on_retry:
        assert len(caught) == 1 and "cut off" in str(caught[0].message) and "--caption" in str(caught[0].message)
    else:
        assert caption == "a red circle on a white background" and not caught
