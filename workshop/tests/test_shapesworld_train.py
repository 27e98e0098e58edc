"""ShapesWorld training: the scene pool, and every trainer running, saving and resuming on the CPU."""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from pix2pix_zero_workshop import builders as M
from pix2pix_zero_workshop.train import (
    ATTRIBUTES,
    TRAINERS,
    AttributeHead,
    Batches,
    ScenePool,
    TrainArgs,
    attribute_targets,
    build_pool,
    clip_caption,
    clip_loss,
    twin_captions,
)

from pix2pix_zero.shapesworld import world as W


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    return build_pool(tmp_path_factory.mktemp("pool") / "pool", 48, seed=3, workers=2)


def test_pool_is_deterministic_atomic_and_made_of_shape_twins(pool_dir, tmp_path):
    again = build_pool(tmp_path / "pool", 48, seed=3, workers=1)
    assert np.array_equal(np.load(pool_dir / "images.npy"), np.load(again / "images.npy"))
    assert (pool_dir / "scenes.json").read_text() == (again / "scenes.json").read_text()
    assert not (tmp_path / "pool.tmp").exists()
    pool = ScenePool(pool_dir, "cpu")
    assert len(pool) == 48 and pool.images.shape == (48, 64, 64, 3) and pool.images.dtype == torch.uint8
    for k in range(0, 48, 2):
        a, b = pool.scenes[k], pool.scenes[k + 1]
        changed = [i for i, (x, y) in enumerate(zip(a.objects, b.objects)) if x != y]
        assert len(changed) == 1 and a.objects[changed[0]].shape != b.objects[changed[0]].shape
        assert W.edit_scene(a, changed[0], shape=b.objects[changed[0]].shape) == b
    assert np.array_equal(pool.images[5].numpy(), W.render(pool.scenes[5]).image)  # the pixels are the scenes' renders
    with pytest.raises(FileNotFoundError, match="shapesworld pool"):
        ScenePool(tmp_path / "missing", "cpu")


@pytest.mark.parametrize("use_pool", [True, False])
def test_batches_are_seeded_by_step_and_start_with_twin_pairs(pool_dir, use_pool):
    batches = Batches(TrainArgs(steps=1, batch_size=8, lr=1e-3, seed=1, pool=str(pool_dir) if use_pool else None))
    scenes, _, pixels, idx = batches(7, 8, twins=2)
    again, _, _, _ = batches(7, 8, twins=2)
    assert scenes == again and pixels.shape == (8, 3, 64, 64) and -1 <= float(pixels.min()) <= float(pixels.max()) <= 1
    assert (idx is not None) == use_pool
    for k in (0, 2):  # the first two pairs are shape twins
        assert scenes[k] != scenes[k + 1] and scenes[k].background == scenes[k + 1].background
    assert batches(8, 8)[0] != scenes


@pytest.mark.slow
def test_every_trainer_runs_saves_and_resumes(pool_dir, tmp_path):
    def args(steps, **kw):
        return TrainArgs(
            steps=steps,
            batch_size=4,
            lr=1e-3,
            work_dir=str(tmp_path),
            pool=str(pool_dir),
            warmup=1,
            save_every=1,
            threads=1,
            **kw,
        )

    for name in ("vae", "clip", "judge", "unet", "captioner"):  # the UNet needs the VAE and CLIP finals
        extra = {"patch_size": 16} if name in ("clip", "captioner") else {}
        TRAINERS[name](args(1, **extra))
        TRAINERS[name](args(2, **extra))  # resumes from step 1
        log = (tmp_path / name / "train.log").read_text()
        assert "resumed from" in log and f"done {name} at step 2" in log, log
        assert any((tmp_path / name / "final").iterdir())
    clip_config = json.loads((tmp_path / "clip" / "final" / "config.json").read_text())
    assert clip_config["vision_config"]["patch_size"] == 16


def test_attribute_targets_name_every_object():
    rng = np.random.default_rng(0)
    scenes = [W.sample_scene(rng, num_objects=n) for n in (1, 2, 2)]
    t = attribute_targets(scenes)
    for row, sc in zip(t, scenes):
        on = {ATTRIBUTES[i] for i in torch.nonzero(row).flatten().tolist()}
        assert on == {o.shape for o in sc.objects} | {o.color for o in sc.objects}


def test_twin_pairs_share_one_phrasing_so_only_the_shape_word_differs():
    rng = np.random.default_rng(4)
    scenes = []
    for _ in range(3):
        sc = W.sample_scene(rng)
        i = 0
        other = next(s for s in W.SHAPES if s != sc.objects[i].shape)
        scenes += [sc, W.edit_scene(sc, i, shape=other)]
    caps = twin_captions(scenes, np.random.default_rng(1), 3, clip_caption)
    for k in range(0, 6, 2):
        a, b = caps[k].split(), caps[k + 1].split()
        diff = [(x, y) for x, y in zip(a, b) if x != y]
        assert len(a) == len(b) and len(diff) == 1 and diff[0][0] in W.SHAPES and diff[0][1] in W.SHAPES, (
            caps[k],
            caps[k + 1],
        )


def test_attribute_head_adds_a_loss_whose_gradient_reaches_both_towers():
    from pix2pix_zero_workshop.train import _load_clip_tokenizer, scenes_to_tensor, tokenize

    torch.manual_seed(0)
    clip = M.build_clip(patch_size=16)
    head = AttributeHead(clip.config.projection_dim)
    rng = np.random.default_rng(2)
    scenes = [W.sample_scene(rng) for _ in range(4)]
    tok = _load_clip_tokenizer(Path(tempfile.mkdtemp()))
    ids, x = tokenize(tok, [W.canonical_caption(s) for s in scenes]), scenes_to_tensor(scenes)
    plain = clip_loss(clip, head, ids, x, scenes, 0.0)
    with_head = clip_loss(clip, head, ids, x, scenes, 1.0)
    assert float(with_head) > float(plain)  # the BCE of a random probe is positive
    (with_head - plain).backward()  # the attribute loss alone
    assert head.linear.weight.grad.abs().sum() > 0
    assert clip.text_projection.weight.grad.abs().sum() > 0 and clip.visual_projection.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_joint_unet_training_updates_the_clip_and_init_loads_a_pipeline_folder(pool_dir, tmp_path):
    from transformers import CLIPModel

    def args(steps, work, **kw):
        return TrainArgs(
            steps=steps,
            batch_size=4,
            lr=1e-3,
            work_dir=str(work),
            pool=str(pool_dir),
            warmup=1,
            save_every=1,
            threads=1,
            **kw,
        )

    base = tmp_path / "base"
    for name in ("vae", "clip", "unet"):
        TRAINERS[name](args(1, base, **({"patch_size": 16} if name == "clip" else {})))
    init = tmp_path / "init"  # the pipeline layout: <init>/clip, <init>/unet
    for name in ("clip", "unet"):
        shutil.copytree(base / name / "final", init / name)
    with pytest.raises(FileNotFoundError, match="no vae/config.json"):
        from pix2pix_zero_workshop.train import _init_folder

        _init_folder(str(init), "vae")

    work = tmp_path / "joint"
    shutil.copytree(base / "vae" / "final", work / "vae" / "final")
    shutil.copytree(base / "clip" / "final", work / "clip" / "final")
    TRAINERS["unet"](args(0, work, init=str(init)))  # no steps: the final UNet is exactly the init
    from diffusers import UNet2DConditionModel

    a = UNet2DConditionModel.from_pretrained(str(init / "unet")).state_dict()
    b = UNet2DConditionModel.from_pretrained(str(work / "unet" / "final")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    shutil.rmtree(work / "unet")
    res = TRAINERS["unet"](args(2, work, init=str(init), joint_clip=0.5, twin_fraction=0.5))
    assert "shape_acc" in res["clip"]
    before = CLIPModel.from_pretrained(str(base / "clip" / "final")).state_dict()
    after = CLIPModel.from_pretrained(str(work / "clip" / "final")).state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("text_model.") for k in moved) and any(k.startswith("vision_model.") for k in moved)
    res = TRAINERS["unet"](args(3, work, init=str(init), joint_clip=0.5))  # resumes the joint state
    assert "resumed from" in (work / "unet" / "train.log").read_text() and res["steps"] == 3

    bf16 = tmp_path / "bf16"  # bf16 autocast: forward passes in bf16, weights and the saved model stay fp32
    shutil.copytree(base / "vae" / "final", bf16 / "vae" / "final")
    shutil.copytree(base / "clip" / "final", bf16 / "clip" / "final")
    TRAINERS["unet"](args(1, bf16, init=str(init), joint_clip=0.5, bf16=True))
    trained = UNet2DConditionModel.from_pretrained(str(bf16 / "unet" / "final")).state_dict()
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in trained.values())
    assert any(not torch.equal(a[k], trained[k]) for k in a)
    assert '"bf16": true' in (bf16 / "unet" / "train.log").read_text()


@pytest.mark.slow
def test_vae_judge_and_captioner_continue_from_a_pipeline_folder(pool_dir, tmp_path):
    """--init starts every model from the bundled weights; the VAE's continuations keep the latent space."""
    from diffusers import AutoencoderKL
    from transformers import BlipForConditionalGeneration

    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR as bundle

    def args(steps, work, **kw):
        return TrainArgs(
            steps=steps,
            batch_size=4,
            lr=1e-3,
            work_dir=str(tmp_path / work),
            pool=str(pool_dir),
            warmup=1,
            save_every=1,
            threads=1,
            **kw,
        )

    def weights(folder, cls=AutoencoderKL):
        return cls.from_pretrained(str(folder)).state_dict()

    shipped = weights(bundle / "vae")
    TRAINERS["vae"](args(0, "same", init=str(bundle), decoder_only=True))  # no steps: exactly the shipped VAE
    assert all(torch.equal(v, weights(tmp_path / "same" / "vae" / "final")[k]) for k, v in shipped.items())

    TRAINERS["vae"](args(1, "dec", init=str(bundle), decoder_only=True))
    after = weights(tmp_path / "dec" / "vae" / "final")
    moved = {k for k in shipped if not torch.equal(shipped[k], after[k])}
    assert moved and all(k.startswith(("decoder.", "post_quant_conv.")) for k in moved)  # the encoder is frozen
    sf = AutoencoderKL.from_pretrained(str(bundle / "vae")).config.scaling_factor
    assert AutoencoderKL.from_pretrained(str(tmp_path / "dec" / "vae" / "final")).config.scaling_factor == sf

    ev = TRAINERS["vae"](args(2, "wide", teacher=str(bundle / "vae"), vae_channels=(32, 64, 128)))
    wide = AutoencoderKL.from_pretrained(str(tmp_path / "wide" / "vae" / "final"))
    assert tuple(wide.config.block_out_channels) == (32, 64, 128) and wide.config.scaling_factor == sf
    assert 0 < ev["teacher_latent_rel_rmse"] < float("inf")
    with pytest.raises(ValueError, match="multiple of the 16 norm groups"):
        M.build_vae((24, 48, 96))
    with pytest.raises(ValueError, match="use one of them"):  # a new VAE cannot also keep its own encoder
        TRAINERS["vae"](args(1, "both", teacher=str(bundle / "vae"), decoder_only=True))
    with pytest.raises(ValueError, match="channels are fixed"):  # a continued VAE keeps its shape
        TRAINERS["vae"](args(1, "wider", init=str(bundle), vae_channels=(32, 64, 128)))

    judge = M.Judge.load(bundle / "judge").state_dict()
    TRAINERS["judge"](args(0, "judge0", init=str(bundle)))
    assert all(
        torch.equal(v, M.Judge.load(tmp_path / "judge0" / "judge" / "final").state_dict()[k]) for k, v in judge.items()
    )
    ev = TRAINERS["judge"](args(1, "judge1", init=str(bundle), through_vae=str(bundle / "vae")))
    assert set(ev["through_vae"]) == {"background_acc", "count_acc", "shapes_acc", "colors_acc"}
    assert "through_vae" not in TRAINERS["judge"](args(1, "judge2", init=str(bundle)))

    cap = weights(bundle / "captioner", BlipForConditionalGeneration)
    TRAINERS["captioner"](args(0, "cap", init=str(bundle)))
    again = weights(tmp_path / "cap" / "captioner" / "final", BlipForConditionalGeneration)
    assert all(torch.equal(v, again[k]) for k, v in cap.items())


class _RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (Path.write_text, (Path(tempfile.gettempdir()) / "pix2pix-zero-unpickled-code-ran", "ran"))


def test_resuming_never_unpickles_code_from_a_checkpoint(tmp_path):
    """A checkpoint holds tensors and numbers only: one carrying a pickled call is refused, and the call never runs."""
    from pix2pix_zero_workshop.train import _Loop

    marker = Path(tempfile.gettempdir()) / "pix2pix-zero-unpickled-code-ran"
    marker.unlink(missing_ok=True)
    model = torch.nn.Linear(2, 2)
    (tmp_path / "tiny").mkdir()
    torch.save(
        {"model": model.state_dict(), "opt": {}, "step": 1, "elapsed": 0.0, "extra": _RunsCodeWhenUnpickled()},
        tmp_path / "tiny" / "checkpoint.pt",
    )
    with pytest.raises(Exception, match="Weights only load failed"):
        _Loop("tiny", TrainArgs(steps=1, batch_size=1, lr=1e-3, work_dir=str(tmp_path), threads=1), model)
    assert not marker.exists()
