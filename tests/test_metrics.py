"""Quality metrics: pure functions against known answers, model-backed scorers on tiny random models."""

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_zero.bench import metrics
from pix2pix_zero.shapesworld import world


def test_psnr_matches_its_definition_and_respects_the_mask():
    a = np.zeros((8, 8, 3))
    b = a.copy()
    b[:4] = 0.1  # top half differs by 0.1: MSE 0.01 there, 0.005 overall
    assert metrics.psnr(a, a) == float("inf")
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(1 / 0.005))
    bottom = np.zeros((8, 8), bool)
    bottom[4:] = True
    assert metrics.psnr(a, b, mask=bottom) == float("inf")
    assert metrics.psnr(a, b, mask=~bottom) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="differ in size"):
        metrics.psnr(a, np.zeros((4, 4, 3)))


def test_iou_and_centroid_shift():
    a = np.zeros((10, 10), bool)
    b = a.copy()
    a[2:6, 2:6] = True
    b[2:6, 4:8] = True
    assert metrics.mask_iou(a, b) == pytest.approx(8 / 24)
    assert metrics.centroid_shift(a, b) == pytest.approx(2.0)
    assert metrics.mask_iou(a, a) == 1.0


def test_object_mask_and_colour_recover_shapesworld_ground_truth():
    scene = world.Scene(objects=(world.SceneObject("star", "blue", "large", "center"),), background="white")
    rendering = world.render(scene)
    plain = np.full_like(rendering.image, world.BACKGROUND_COLORS["white"])
    mask = metrics.object_mask(rendering.image, plain)
    assert metrics.mask_iou(mask, rendering.masks[0]) > 0.9
    assert metrics.nearest_color(rendering.image, mask, world.OBJECT_COLORS) == "blue"
    assert metrics.nearest_color(rendering.image, np.zeros_like(mask), world.OBJECT_COLORS) is None


def test_clip_accuracy_compares_target_and_source_similarity():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]])
    result = metrics.clip_accuracy(images, source_text=torch.tensor([1.0, 0.0]), target_text=torch.tensor([0.0, 1.0]))
    assert result.tolist() == [False, True, False]


def test_structure_distance_is_zero_for_identical_and_symmetric():
    keys = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(metrics.structure_distance(keys, keys), torch.zeros(2))
    d_ab, d_ba = metrics.structure_distance(keys[:1], keys[1:]), metrics.structure_distance(keys[1:], keys[:1])
    assert d_ab.item() > 0 and torch.allclose(d_ab, d_ba)
    assert torch.allclose(metrics.structure_distance(keys, 3 * keys), torch.zeros(2), atol=1e-6)  # cosine: scale-free


def test_clip_scorer_and_its_vision_structure_on_a_tiny_clip(tiny_clip_dir):
    scorer = metrics.ClipScorer(str(tiny_clip_dir), templates=("a {}",))
    red, blue = Image.new("RGB", (40, 40), "red"), Image.new("RGB", (40, 40), "blue")
    result = scorer.accuracy([red, blue], "circle", "square")
    assert result.dtype == torch.bool and result.shape == (2,)
    expected = metrics.clip_accuracy(
        scorer.image_embeds([red, blue]), scorer.text_embed("circle"), scorer.text_embed("square")
    )
    assert torch.equal(result, expected)
    structure = scorer.structure()
    assert structure.distance([red], [red]).item() == pytest.approx(0.0, abs=1e-6)
    striped = Image.fromarray((np.indices((40, 40)).sum(0) % 8 < 4).astype(np.uint8)[..., None].repeat(3, -1) * 255)
    assert structure.distance([red], [striped]).item() > 0


def test_dino_structure_conventions_on_a_tiny_vit(tmp_path):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    ViTModel(
        ViTConfig(
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            image_size=224,
            patch_size=32,
        ),
        add_pooling_layer=False,
    ).save_pretrained(str(tmp_path / "vit"))
    splice = metrics.dino_structure(str(tmp_path / "vit"), "splice")
    piebench = metrics.dino_structure(str(tmp_path / "vit"), "piebench")
    a = Image.fromarray((np.indices((224, 224)).sum(0) % 64 < 32).astype(np.uint8)[..., None].repeat(3, -1) * 200)
    b = a.transpose(Image.FLIP_LEFT_RIGHT)
    assert splice.distance([a], [a]).item() == pytest.approx(0.0, abs=1e-6)
    assert splice.distance([a], [b]).item() > 0
    assert splice.distance([a], [b]).item() != pytest.approx(piebench.distance([a], [b]).item())
    wide = Image.fromarray(np.asarray(a)[:150])  # resized to 224x335: position embeddings are interpolated
    assert splice.distance([wide], [wide]).item() == pytest.approx(0.0, abs=1e-6)
    assert splice.distance([wide], [wide.transpose(Image.FLIP_LEFT_RIGHT)]).item() > 0
    with pytest.raises(ValueError, match="convention"):
        metrics.dino_structure(str(tmp_path / "vit"), "other")


def test_background_lpips_blacks_out_the_edited_region_as_piebench_does():
    a = np.random.default_rng(0).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    edited = np.zeros((16, 24), bool)
    edited[4:12, 6:18] = True
    b = a.copy()
    b[edited] = 255 - b[edited]  # changed only where the edit may change it
    seen = []

    def squared_difference(x, y):
        seen.append((x, y))
        return ((x - y) ** 2).mean()

    assert metrics.background_lpips(a, b, edited, squared_difference) == 0.0
    x, y = seen[0]
    assert x.shape == (1, 3, 16, 24) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert float(x[0, :, 4:12, 6:18].abs().max()) == 0.0 and float(y[0, :, 4:12, 6:18].abs().max()) == 0.0
    assert torch.allclose(x[0, :, 0, 0], torch.from_numpy(a[0, 0] / 255.0).float())
    c = a.copy()
    c[0, 0] = 255 - c[0, 0]  # one background pixel changed
    assert metrics.background_lpips(a, c, edited, squared_difference) > 0.0
    assert np.isnan(metrics.background_lpips(a, c, np.ones((16, 24), bool), squared_difference))


def test_lpips_says_what_it_needs_where_torchvision_is_missing():
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed: LPIPS may load")
    with pytest.raises(ModuleNotFoundError, match="torchvision|torchmetrics"):
        metrics.lpips_distance("squeeze")
