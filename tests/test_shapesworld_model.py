"""The bundled ShapesWorld model folder: loads offline with stock classes and works."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pix2pix_zero import shapesworld as sw
from pix2pix_zero.shapesworld import judge as M
from pix2pix_zero.shapesworld import world as W

FOLDER = Path(sw.BUNDLED_MODEL_DIR)


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(str(FOLDER), torch_dtype=torch.float32)


def test_bundle_layout_and_size():
    idx = json.loads((FOLDER / "model_index.json").read_text())
    assert idx["_class_name"] == "StableDiffusionPipeline"
    for k in ("safety_checker", "feature_extractor", "image_encoder"):
        assert idx[k] == [None, None]
    assert idx["requires_safety_checker"] is False
    for sub in ("vae", "unet", "text_encoder", "tokenizer", "scheduler", "clip", "captioner", "judge", "sentences"):
        assert (FOLDER / sub).is_dir(), sub
    total = sum(p.stat().st_size for p in FOLDER.rglob("*") if p.is_file())
    assert total <= 50 * 1024 * 1024, total
    sch = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    assert sch["_class_name"] == "DDIMScheduler"
    assert (sch["beta_schedule"], sch["beta_start"], sch["beta_end"], sch["num_train_timesteps"]) == (
        "scaled_linear",
        0.00085,
        0.012,
        1000,
    )
    assert (sch["steps_offset"], sch["set_alpha_to_one"], sch["clip_sample"], sch["prediction_type"]) == (
        1,
        False,
        False,
        "epsilon",
    )


def test_pipeline_loads_offline_and_generates(pipe):
    assert pipe.unet.dtype == torch.float32  # fp16 weights on disk load back as fp32
    assert (
        pipe.unet.config.sample_size == 16
        and pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    )
    assert pipe.vae.config.block_out_channels and len(pipe.vae.config.block_out_channels) == 3
    assert pipe.tokenizer.model_max_length >= 24
    assert pipe.tokenizer.model_max_length == pipe.text_encoder.config.max_position_embeddings
    g = torch.Generator().manual_seed(0)
    out = pipe(
        "a large red circle in the center on a white background",
        num_inference_steps=4,
        guidance_scale=5.0,
        height=64,
        width=64,
        generator=g,
        output_type="np",
    )
    img = out.images[0]
    assert img.shape == (64, 64, 3) and np.isfinite(img).all()
    assert img.std() > 0.02  # not a blank image


def test_tokenizers_load_offline():
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    slow = CLIPTokenizer.from_pretrained(str(FOLDER / "tokenizer"))
    fast = CLIPTokenizerFast.from_pretrained(str(FOLDER / "tokenizer"))
    cap = "a small red circle in the top left and a large blue star in the center on a striped gray background"
    assert slow(cap).input_ids == fast(cap).input_ids
    assert slow.tokenize(cap) == [w + "</w>" for w in cap.split()]


def test_clip_text_tower_equals_text_encoder():
    from transformers import CLIPModel, CLIPTextModel

    clip = CLIPModel.from_pretrained(str(FOLDER / "clip"))
    te = CLIPTextModel.from_pretrained(str(FOLDER / "text_encoder"))
    a = {k.replace("text_model.", ""): v for k, v in clip.text_model.state_dict().items()}
    b = {k.replace("text_model.", ""): v for k, v in te.state_dict().items()}
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ids = torch.tensor([[te.config.bos_token_id, 320, te.config.eos_token_id]])
    with torch.no_grad():
        assert torch.allclose(clip.text_model(ids).last_hidden_state, te(ids).last_hidden_state)


def test_clip_zero_shot_on_shipped_example():
    from transformers import CLIPModel, CLIPProcessor

    clip = CLIPModel.from_pretrained(str(FOLDER / "clip")).eval()
    proc = CLIPProcessor.from_pretrained(str(FOLDER / "clip"))
    img, scene, _ = sw.load_example("red_circle_white")
    texts = [f"a red {s}" for s in W.SHAPES] + [f"a blue {s}" for s in W.SHAPES]
    inputs = proc(
        text=texts, images=[img], return_tensors="pt", padding="max_length", max_length=proc.tokenizer.model_max_length
    )
    with torch.no_grad():
        logits = clip(**inputs).logits_per_image[0]
    assert texts[int(logits.argmax())] == "a red circle"


def test_vae_reconstructs_shipped_example():
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(FOLDER / "vae")).eval()
    for name in sw.list_examples():
        img, _, _ = sw.load_example(name)
        x = M.images_to_tensor([img])
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
            rec = M.tensor_to_uint8(vae.decode(z).sample)[0]
        assert z.shape == (1, 4, 16, 16)
        assert _psnr(rec, np.asarray(img)) > 32.0, name  # the 32 dB target, on every example
    # scaling factor gives roughly unit-variance latents
    xs = M.images_to_tensor([sw.render(s).image for s in sw.eval_scenes(32, seed=99)])
    with torch.no_grad():
        z = vae.encode(xs).latent_dist.mode() * vae.config.scaling_factor
    assert 0.7 < float(z.std()) < 1.4


def test_captioner_names_the_shape():
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(str(FOLDER / "captioner"))
    model = BlipForConditionalGeneration.from_pretrained(str(FOLDER / "captioner")).eval()
    for name in ("red_circle_white", "yellow_star_striped_black"):
        pil_image, scene, _ = sw.load_example(name)
        inputs = processor(images=[pil_image], return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=40)
        text = processor.batch_decode(out, skip_special_tokens=True)[0]
        p = sw.parse_caption(text)
        assert p["shapes"] == [scene.objects[0].shape], text
        assert p["colors"] == [scene.objects[0].color], text


def test_judge_reads_renders():
    judge = M.Judge.load(FOLDER / "judge")
    scenes = sw.eval_scenes(40, seed=98)
    preds = judge.predict([sw.render(s).image for s in scenes])
    bg = np.mean([p["background"] == s.background for p, s in zip(preds, scenes)])
    shp = np.mean([p["shapes"] == sorted({o.shape for o in s.objects}) for p, s in zip(preds, scenes)])
    col = np.mean([p["colors"] == sorted({o.color for o in s.objects}) for p, s in zip(preds, scenes)])
    assert bg >= 0.95 and shp >= 0.9 and col >= 0.9, (bg, shp, col)
