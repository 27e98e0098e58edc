"""ShapesWorld training: the scene pool, and every trainer running, saving and resuming on the CPU."""

import json

import numpy as np
import pytest
import torch

from pix2pix_zero.shapesworld import world as W
from pix2pix_zero.shapesworld.train import TRAINERS, Batches, ScenePool, TrainArgs, build_pool


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
        return TrainArgs(steps=steps, batch_size=4, lr=1e-3, work_dir=str(tmp_path), pool=str(pool_dir), warmup=1,
                         save_every=1, threads=1, **kw)

    for name in ("vae", "clip", "judge", "unet", "captioner"):  # the UNet needs the VAE and CLIP finals
        extra = {"patch_size": 16} if name in ("clip", "captioner") else {}
        TRAINERS[name](args(1, **extra))
        TRAINERS[name](args(2, **extra))  # resumes from step 1
        log = (tmp_path / name / "train.log").read_text()
        assert "resumed from" in log and f"done {name} at step 2" in log, log
        assert any((tmp_path / name / "final").iterdir())
    clip_config = json.loads((tmp_path / "clip" / "final" / "config.json").read_text())
    assert clip_config["vision_config"]["patch_size"] == 16
