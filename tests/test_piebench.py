"""PIE-Bench: its mask decoding, its seven metrics against independent implementations, its layout, the command."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pix2pix_zero.bench import pie_metrics, piebench
from pix2pix_zero.cli import main

NO_EDIT = "reference: no edit (VAE round trip)"


# -- masks -------------------------------------------------------------------------------------------


def test_rle_masks_decode_to_the_masks_drawn_by_hand():
    # a 4×6 image; runs [start, length] over the row-major flattened pixels
    drawn = np.array([[0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]], bool)
    rle = [1, 2, 10, 3, 23, 5]  # the last run passes the end and is cut there
    assert np.array_equal(pie_metrics.decode_mask(rle, (4, 6), border=False), drawn)
    framed = drawn.copy()
    framed[0, :] = framed[-1, :] = framed[:, 0] = framed[:, -1] = True  # PIE-Bench marks the 1-pixel border as edited
    assert np.array_equal(pie_metrics.decode_mask(rle, (4, 6)), framed)
    assert pie_metrics.encode_mask(drawn) == [1, 2, 10, 3, 23, 1]
    inner = np.zeros((5, 5), bool)
    inner[1:4, 2] = True  # a vertical bar: one run per row
    assert pie_metrics.encode_mask(inner) == [7, 1, 12, 1, 17, 1]
    assert np.array_equal(pie_metrics.decode_mask([7, 1, 12, 1, 17, 1], (5, 5), border=False), inner)
    assert pie_metrics.decode_mask([], (512, 512)).sum() == 4 * 511  # the border alone
    random_mask = np.random.default_rng(0).random((512, 512)) > 0.7
    assert np.array_equal(pie_metrics.decode_mask(pie_metrics.encode_mask(random_mask), border=False), random_mask)
    with pytest.raises(ValueError, match="odd length"):
        pie_metrics.decode_mask([3, 4, 5])


# -- background preservation against torchmetrics and scikit-image --------------------------------------


@pytest.fixture(scope="module")
def image_pair():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    edited = np.zeros((48, 40), bool)
    edited[10:30, 5:25] = True
    return a, b, ~edited


def _masked_tensors(a, b, keep):
    weight = keep.astype(np.float32)[..., None]
    return [torch.from_numpy(v.astype(np.float32) / 255 * weight).permute(2, 0, 1)[None] for v in (a, b)]


def test_psnr_mse_ssim_of_the_background_match_torchmetrics(image_pair):
    torchmetrics = pytest.importorskip("torchmetrics")
    a, b, keep = image_pair
    x, y = _masked_tensors(a, b, keep)
    assert pie_metrics.masked_psnr(a, b, keep) == pytest.approx(
        float(torchmetrics.image.PeakSignalNoiseRatio(data_range=1.0)(x, y)), abs=1e-4
    )
    assert pie_metrics.masked_mse(a, b, keep) == pytest.approx(
        float(torchmetrics.regression.MeanSquaredError()(x[0].contiguous(), y[0].contiguous())), rel=1e-5
    )
    # torchmetrics before 1.5 (PIE-Bench's) averaged the SSIM map without the 5 reflect-padded pixels of each edge;
    # later releases keep them (Lightning-AI/torchmetrics#2721): the map's inner part is the number PIE-Bench reported
    _, ssim_map = torchmetrics.functional.image.structural_similarity_index_measure(
        x, y, data_range=1.0, return_full_image=True
    )
    assert pie_metrics.masked_ssim(a, b, keep) == pytest.approx(float(ssim_map[..., 5:-5, 5:-5].mean()), abs=1e-5)
    # the mask matters: the whole image scores differently
    assert pie_metrics.masked_psnr(a, b) != pytest.approx(pie_metrics.masked_psnr(a, b, keep), abs=0.1)
    assert pie_metrics.masked_ssim(a, b) != pytest.approx(pie_metrics.masked_ssim(a, b, keep), abs=1e-3)


def test_psnr_mse_ssim_of_the_background_match_scikit_image(image_pair):
    metrics = pytest.importorskip("skimage.metrics")
    a, b, keep = image_pair
    x, y = (v.astype(np.float64) / 255 * keep[..., None] for v in (a, b))
    assert pie_metrics.masked_psnr(a, b, keep) == pytest.approx(
        metrics.peak_signal_noise_ratio(x, y, data_range=1.0), abs=1e-4
    )
    assert pie_metrics.masked_mse(a, b, keep) == pytest.approx(metrics.mean_squared_error(x, y), rel=1e-5)
    expected = metrics.structural_similarity(
        x, y, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert pie_metrics.masked_ssim(a, b, keep) == pytest.approx(expected, abs=1e-5)
    assert pie_metrics.masked_psnr(a, a, keep) == float("inf")
    assert pie_metrics.masked_ssim(a, a, keep) == pytest.approx(1.0)


def test_lpips_of_the_background_sees_both_images_masked():
    from pix2pix_zero.bench.metrics import background_lpips

    a, b = np.full((8, 8, 3), 200, np.uint8), np.full((8, 8, 3), 100, np.uint8)
    edited = np.zeros((8, 8), bool)
    edited[2:5, 2:5] = True
    seen = []
    background_lpips(a, b, edited, lambda x, y: seen.append((x, y)) or torch.tensor(0.5))
    x, y = seen[0]
    assert x.shape == (1, 3, 8, 8) and float(x[0, 0, 3, 3]) == 0 and float(y[0, 0, 3, 3]) == 0  # edited region black
    assert float(x[0, 0, 0, 0]) == pytest.approx(200 / 255) and float(y[0, 0, 0, 0]) == pytest.approx(100 / 255)


def test_lpips_of_the_background_matches_torchmetrics_on_minus_one_to_one(image_pair):
    pytest.importorskip("torchvision")
    from pix2pix_zero.bench.metrics import background_lpips, lpips_distance

    try:
        distance = lpips_distance("squeeze")
    except OSError as error:
        pytest.skip(f"no SqueezeNet weights here: {error}")
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    a, b, keep = image_pair
    x, y = _masked_tensors(a, b, keep)
    theirs = LearnedPerceptualImagePatchSimilarity(net_type="squeeze")(x * 2 - 1, y * 2 - 1)  # PIE-Bench's call
    assert background_lpips(a, b, ~keep, distance) == pytest.approx(float(theirs), abs=1e-5)


# -- CLIP and DINO with tiny models built in code ----------------------------------------------------


def test_clip_score_follows_torchmetrics_clipscore(tiny_clip_dir):
    torchmetrics = pytest.importorskip("torchmetrics.multimodal")
    from transformers import CLIPModel, CLIPProcessor

    class Features(torch.nn.Module):  # torchmetrics expects tensors from get_*_features, as transformers 4 returned
        def __init__(self, model):
            super().__init__()
            self.model, self.config = model, model.config

        def get_image_features(self, *args, **kwargs):
            out = self.model.get_image_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

        def get_text_features(self, *args, **kwargs):
            out = self.model.get_text_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

    score = pie_metrics.ClipScore(str(tiny_clip_dir))
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    reference = torchmetrics.CLIPScore(
        model_name_or_path=lambda: (
            Features(CLIPModel.from_pretrained(str(tiny_clip_dir))),
            CLIPProcessor.from_pretrained(str(tiny_clip_dir), use_fast=False),
        )
    )
    for text in ("a photo of a cat", "a red circle on a white background"):
        expected = float(reference(torch.from_numpy(image).permute(2, 0, 1), text).detach())
        reference.reset()
        assert score(image, text) == pytest.approx(expected, abs=1e-4)
    edited = np.zeros((64, 64), bool)
    edited[8:40, 16:48] = True
    masked = (image * edited[..., None]).astype(np.uint8)
    assert score.edited_region(image, "a photo of a cat", edited) == pytest.approx(score(masked, "a photo of a cat"))
    assert score.edited_region(image, "a photo of a cat", edited) != pytest.approx(
        score(image, "a photo of a cat"), abs=1e-3
    )


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-dino")
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
    ).save_pretrained(str(folder))
    return folder


def test_structure_distance_is_their_key_self_similarity_on_0_255_pixels(tiny_vit_dir):
    from transformers import ViTModel

    structure = pie_metrics.DinoStructure(str(tiny_vit_dir))
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 61, a.shape), 0, 255).astype(np.uint8)

    # independently: the last block's key projection applied to its normalized input, heads concatenated, as their
    # VitExtractor reads the qkv output; pixels 0-255 resized bilinearly then ImageNet-normalized
    vit = ViTModel.from_pretrained(str(tiny_vit_dir), add_pooling_layer=False).eval()
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]

    def keys(image):
        pixels = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
        pixels = (
            torch.nn.functional.interpolate(pixels, size=(224, 224), mode="bilinear", align_corners=False) - mean
        ) / std
        with torch.no_grad():
            hidden = vit(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
            last = vit.layers[-1] if hasattr(vit, "layers") else vit.encoder.layer[-1]  # transformers 5 / 4 names
            key = last.attention.k_proj if hasattr(last.attention, "k_proj") else last.attention.attention.key
            return key(last.layernorm_before(hidden))[0]

    def self_similarity(k):
        return torch.nn.functional.cosine_similarity(k[:, None, :], k[None, :, :], dim=-1)

    expected = torch.nn.functional.mse_loss(self_similarity(keys(b)), self_similarity(keys(a)))
    assert structure(a, b) == pytest.approx(float(expected), rel=1e-4)
    assert structure(a, a) == pytest.approx(0.0, abs=1e-9)
    assert structure(a, b) > 0
    # Resize(224, max_size=480): the short side to 224, the long side capped at 480
    assert pie_metrics.piebench_vit_input(np.zeros((512, 768, 3), np.uint8)).shape == (1, 3, 224, 336)
    assert pie_metrics.piebench_vit_input(np.zeros((300, 1000, 3), np.uint8)).shape == (1, 3, 144, 480)


def test_outputs_are_read_at_512_with_a_strip_cropped_to_its_rightmost_square():
    strip = np.zeros((512, 1536, 3), np.uint8)
    strip[:, 1024:] = 200  # [source | reconstruction | edit]
    read = pie_metrics.read_output(Image.fromarray(strip))
    assert read.size == (512, 512) and np.asarray(read).min() == 200
    assert pie_metrics.read_output(Image.new("RGB", (64, 64), (9, 9, 9))).size == (512, 512)


def test_missing_models_name_the_option_to_pass_a_folder(tmp_path):
    with pytest.raises(OSError, match="--dino"):
        pie_metrics.DinoStructure(str(tmp_path / "no-such-dino"))
    with pytest.raises(
        OSError, match="no-such-clip is a local path and does not exist: check the path given to --clip"
    ):
        pie_metrics.ClipScore(str(tmp_path / "no-such-clip"))
    with pytest.raises(OSError, match="holds no complete checkpoint: check the path given to --clip") as error:
        pie_metrics.ClipScore(str(tmp_path))  # a folder without the model in it
    assert "hf download" not in str(error.value)
    with pytest.raises(OSError, match="hf download openai/no-such-clip --local-dir ./no-such-clip"):
        pie_metrics.ClipScore("openai/no-such-clip")  # a hub id: how to get it where the hub is reachable


# -- rows: prompts, concepts, layout ----------------------------------------------------------------


def _row(original, editing, blended, type_id="1"):
    return piebench.PieRow("x", "x.jpg", original, editing, "", type_id, blended, ())


def test_word_swaps_turn_the_original_prompt_into_the_editing_prompt():
    from pix2pix_zero.api import swap_word

    pairs = [
        ("a cat sitting on a chair.", "a dog sitting on a chair.", ("cat", "dog")),
        ("a photo of a cat", "a watercolor painting of a cat", ("photo", "watercolor painting")),
        ("a cat sitting", "a cat wearing a hat sitting", ("cat sitting", "cat wearing a hat sitting")),  # added words
        ("a cat and a cat", "a dog and a cat", ("a cat and", "a dog and")),
    ]  # 'cat' alone would swap both
    for source, target, expected in pairs:
        assert piebench.prompt_swap(source, target) == expected
        assert swap_word(source, *expected) == target
    with pytest.raises(ValueError, match="same"):
        piebench.prompt_swap("a cat", "a cat")
    assert _row("a [cat] on grass", "a [dog] on grass", "").target_prompt == "a dog on grass"


def test_concepts_come_from_blended_word_else_from_the_words_that_differ():
    assert piebench.concepts(_row("a cat on grass", "a [dog] on grass", "cat dog")) == ("cat", "dog", "blended_word")
    assert piebench.concepts(_row("a red cake", "a [blue] cake", "cake cake", "6")) == (
        "red",
        "blue",
        "prompt difference",
    )
    assert piebench.concepts(_row("a photo of a cat", "a [watercolor painting] of a cat", "", "9")) == (
        "photo",
        "watercolor painting",
        "prompt difference",
    )
    assert piebench.concepts(_row("a cat", "a cat [with a hat]", "", "2")) == (
        "cat",
        "cat with a hat",
        "prompt difference",
    )


def test_method_kinds():
    table = piebench.methods(3)
    assert table["pix2pix-zero"][1] == "concepts" and table["ablation: no xa guidance"][1] == "concepts"
    assert table["ablation: word swap for the direction"][1] == "prompts"
    assert table["prompt-to-prompt (CFG 7.5)"][1] == "prompts" and table[NO_EDIT][1] == "prompts"
    assert table["pix2pix-zero (official), prompt-pair direction"][1] == "prompt pair"
    assert set(piebench.DEFAULT_METHODS) <= set(table)


def test_the_example_is_in_piebench_layout_and_bad_data_is_refused(tmp_path):
    data = piebench.write_shapesworld_example(tmp_path / "pie", num_scenes=3)
    mapping = json.loads((data / "mapping_file.json").read_text())
    assert len(mapping) == 3
    for key, entry in mapping.items():
        assert set(entry) == set(piebench.FIELDS) and len(key) == 12
        folder, kind, subject, name = entry["image_path"].split("/")
        assert (
            folder == piebench.TYPE_FOLDERS[entry["editing_type_id"]]
            and kind == "1_artificial"
            and name == f"{key}.jpg"
        )
        assert Image.open(data / "annotation_images" / entry["image_path"]).size == (512, 512)
        assert "[" in entry["editing_prompt"]
    rows = piebench.read_benchmark(data)
    assert [r.editing_type_id for r in rows] == ["1", "6", "9"] and rows[2].blended_word == ""
    assert pie_metrics.decode_mask(rows[2].mask).all() and 0 < pie_metrics.decode_mask(rows[0].mask).mean() < 0.5
    assert [r.id for r in piebench.read_benchmark(data, types=["6"])] == [rows[1].id]

    with pytest.raises(FileNotFoundError, match="mapping_file.json"):
        piebench.read_benchmark(tmp_path)
    broken = dict(mapping)
    first = next(iter(broken))
    broken[first] = {**mapping[first], "image_path": "../../outside.jpg"}
    (data / "mapping_file.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="leaves annotation_images"):
        piebench.read_benchmark(data)
    broken[first] = {k: v for k, v in mapping[first].items() if k != "blended_word"}
    (data / "mapping_file.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="lacks blended_word"):
        piebench.read_benchmark(data)
    with pytest.raises(ValueError, match="unknown edit types"):
        piebench.read_benchmark(data, types=["12"])
    for change, message in (
        ({"mask": [1, 2, 3]}, "mask: .*odd length"),
        ({"mask": [-5, 10]}, "mask: .*negative start"),
        ({"editing_type_id": "42"}, "editing_type_id '42' is not one of PIE-Bench's"),
        ({"editing_prompt": mapping[first]["original_prompt"].upper()}, "prompts are the same"),
    ):  # every entry checked before any model loads, not failed row by row
        broken[first] = {**mapping[first], **change}
        (data / "mapping_file.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=message):
            piebench.read_benchmark(data)


# -- the command ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_with_clip(tiny_model_dir, tiny_clip_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-with-clip") / "model"
    shutil.copytree(tiny_model_dir, folder)
    shutil.copytree(tiny_clip_dir, folder / "clip")
    return folder


@pytest.mark.slow
def test_the_command_scores_each_row_with_the_seven_metrics_and_resumes(
    model_with_clip, tiny_vit_dir, cache_dir, tmp_path
):
    data = piebench.write_shapesworld_example(tmp_path / "pie", num_scenes=3)
    out = tmp_path / "out"
    methods = [NO_EDIT, "pix2pix-zero", "pix2pix-zero, prompt-pair direction", "DDIM + word swap (CFG 5)"]
    args = [
        "bench",
        "piebench",
        str(data),
        "-m",
        str(model_with_clip),
        "--clip",
        str(model_with_clip / "clip"),
        "--dino",
        str(tiny_vit_dir),
        "--no-lpips",
        "--captions",
        "prompt",
        "--steps",
        "2",
        "-o",
        str(out),
        "-q",
        "--cache-dir",
        str(cache_dir),
    ] + [a for m in methods for a in ("--method", m)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    benchmark = {r.id: r for r in piebench.read_benchmark(data)}
    by = {(r["method"], benchmark[r["id"]].editing_type_id): r for r in rows}
    assert (by[("pix2pix-zero", "1")]["edit_source"], by[("pix2pix-zero", "1")]["edit_target"]) == tuple(
        benchmark[by[("pix2pix-zero", "1")]["id"]].blended_word.split()
    )
    color = by[("pix2pix-zero", "6")]
    assert (
        color["edit_source"] in benchmark[color["id"]].source_prompt.split()
        and color["edit_source"] != color["edit_target"]
    )
    pair = by[("pix2pix-zero, prompt-pair direction", "9")]
    assert pair["edit_source"].startswith("a photo of") and pair["edit_target"].startswith("a drawing of")
    for row in rows:
        for key, *_ in piebench.METRICS:
            if key == "lpips_unedit":
                assert key not in row
            elif benchmark[row["id"]].editing_type_id == "9" and key in ("psnr_unedit", "mse_unedit", "ssim_unedit"):
                assert row[key] != row[key]  # nan: the whole image may change, there is no background
            else:
                assert np.isfinite(row[key]), (key, row)

    # the saved example of each row recomputes to the same numbers
    scorer = piebench.PieBenchScorer(
        list(benchmark.values()),
        data,
        pie_metrics.ClipScore(str(model_with_clip / "clip")),
        pie_metrics.DinoStructure(str(tiny_vit_dir)),
    )
    from pix2pix_zero.files import safe_name

    row = by[(NO_EDIT, "1")]
    source = scorer.source_image(benchmark[row["id"]])
    edited = pie_metrics.read_output(Image.open(out / "examples" / f"{row['id']}--{safe_name(NO_EDIT, 'method')}.png"))
    keep = ~pie_metrics.decode_mask(benchmark[row["id"]].mask)
    assert row["psnr_unedit"] == pytest.approx(pie_metrics.masked_psnr(source, edited, keep), abs=1e-6)
    assert row["ssim_unedit"] == pytest.approx(pie_metrics.masked_ssim(source, edited, keep), abs=1e-6)
    assert row["structure_distance"] == pytest.approx(scorer.dino(source, edited), abs=1e-7)
    assert row["clip_whole"] == pytest.approx(scorer.clip(edited, benchmark[row["id"]].target_prompt), abs=1e-4)

    table = (out / "table.md").read_text()
    assert "Structure: Distance ×10³" in table and "*DDIM + pix2pix-zero*" in table and "61.68" in table
    assert "## 9 change style" in table and "## 1 change object" in table
    assert f"{rows[0]['structure_distance'] * 1e3:.2f}" in table or len(rows) > 1
    assert (out / "table.png").stat().st_size > 1000

    again = CliRunner().invoke(main, args, catch_exceptions=False)  # resumes: nothing to redo
    assert again.exit_code == 0 and len((out / "rows.jsonl").read_text().splitlines()) == 12
    other = CliRunner().invoke(main, [a if a != "2" else "3" for a in args])
    assert other.exit_code == 1 and "steps differ" in other.output
    prompts = CliRunner().invoke(main, [a if a != "prompt" else "captioner" for a in args])
    assert prompts.exit_code == 1 and "captions differ" in prompts.output


def test_another_tools_outputs_are_scored_from_their_strips(tiny_clip_dir, tiny_vit_dir, tmp_path):
    data = piebench.write_shapesworld_example(tmp_path / "pie", num_scenes=3)
    rows = piebench.read_benchmark(data)
    outputs = tmp_path / "theirs" / "annotation_images"
    for row in rows[:2]:  # the third has no output: an error row, not the end of the run
        source = np.asarray(Image.open(data / "annotation_images" / row.image_path).convert("RGB"))
        edited = source.copy()
        edited[pie_metrics.decode_mask(row.mask)] = 255  # changed only inside the edited region
        strip = np.concatenate([np.zeros_like(source), edited], axis=1)  # [something else | edit], as theirs are
        (outputs / row.image_path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(strip).save(outputs / row.image_path.replace(".jpg", ".png"))
        (outputs / row.image_path).write_bytes((outputs / row.image_path.replace(".jpg", ".png")).read_bytes())
    out = tmp_path / "out"
    args = [
        "bench",
        "piebench",
        str(data),
        "--score-outputs",
        str(outputs),
        "--label",
        "theirs",
        "--clip",
        str(tiny_clip_dir),
        "--dino",
        str(tiny_vit_dir),
        "--no-lpips",
        "-o",
        str(out),
        "-q",
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["status"] for r in scored] == ["ok", "ok", "error"] and all(r["method"] == "theirs" for r in scored)
    for r in scored[:2]:  # the background is untouched: the crop found the edit, not the strip's left part
        assert r["mse_unedit"] == 0 and r["psnr_unedit"] == float("inf") and r["ssim_unedit"] == pytest.approx(1.0)
        assert r["structure_distance"] > 0
    assert "| theirs | 3 (1 failed) |" in (out / "table.md").read_text()
    again = CliRunner().invoke(main, args, catch_exceptions=False)  # resumes: nothing is scored twice; as in
    assert again.exit_code == 0 and len((out / "rows.jsonl").read_text().splitlines()) == 3  # bench quality, a failure
    # is a data point, not retried


def test_the_command_refuses_what_it_cannot_read(tmp_path):
    missing = CliRunner().invoke(main, ["bench", "piebench", str(tmp_path), "--no-lpips"])
    assert missing.exit_code == 1 and "mapping_file.json" in missing.output
    listed = CliRunner().invoke(main, ["bench", "piebench", "--list-methods"])
    assert listed.exit_code == 0 and "[reads prompt pair]" in listed.output and "[reads concepts]" in listed.output
    no_dir = CliRunner().invoke(main, ["bench", "piebench"])
    assert no_dir.exit_code != 0 and "DATA_DIR" in no_dir.output
    data = piebench.write_shapesworld_example(tmp_path / "pie", num_scenes=1)
    few = ["bench", "piebench", str(data), "--no-lpips", "--steps", "2", "-m", "nobody/no-such-model"]
    official = CliRunner().invoke(main, few)  # the default methods include the authors' preset
    assert official.exit_code == 2 and "needs at least 3 steps" in official.output  # before the model is looked for
    assert CliRunner().invoke(main, [*few, "--method", "pix2pix-zero"]).exit_code == 1  # then: the missing model


@pytest.mark.slow
def test_the_bundled_model_runs_the_whole_benchmark(tiny_vit_dir, cache_dir, tmp_path):
    data = tmp_path / "pie"
    assert CliRunner().invoke(main, ["bench", "piebench", "--write-example", str(data)]).exit_code == 0
    bundled = Path(__import__("pix2pix_zero").__file__).parent / "assets" / "shapesworld"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "piebench",
            str(data),
            "--clip",
            str(bundled / "clip"),
            "--dino",
            str(tiny_vit_dir),
            "--no-lpips",
            "--steps",
            "5",
            "-o",
            str(out),
            "-q",
            "--cache-dir",
            str(cache_dir),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * len(piebench.DEFAULT_METHODS) and all(r["status"] == "ok" for r in rows), rows
    captioned = next(r for r in rows if r["method"] == "pix2pix-zero")
    assert captioned["caption"]  # pix2pix-zero inverted with the bundled captioner's caption
    assert "| pix2pix-zero | 3 |" in (out / "table.md").read_text()
