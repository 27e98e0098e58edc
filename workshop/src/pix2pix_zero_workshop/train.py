"""Training loops for the ShapesWorld models (VAE, CLIP, UNet, captioner, judge).

Data is rendered on the fly, or drawn from a pre-rendered scene pool
(``--pool``, see :func:`build_pool`) when rendering would starve a GPU.  Either
way the batch at step ``s`` comes from ``numpy.random.default_rng([seed, s])``
so a resumed run sees exactly the data it would have seen without interruption.  Each model writes into
``<work_dir>/<name>/``: ``train.log``, ``checkpoint.pt`` (model + optimizer +
step + elapsed seconds, for ``--resume``) and ``final/`` (save_pretrained).

Learning rates follow linear warm-up then cosine decay.  With a time limit the
cosine progress is ``max(step / steps, elapsed / time_limit)`` so the decay
finishes when either budget runs out.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pix2pix_zero.shapesworld import world as W

from . import builders as M
from .tokenizer import MODEL_MAX_LENGTH, write_bert_tokenizer, write_clip_tokenizer

DEFAULT_WORK_DIR = "runs/shapesworld"


@dataclass
class TrainArgs:
    steps: int
    batch_size: int
    lr: float
    seed: int = 0
    device: str = "cpu"
    work_dir: str = DEFAULT_WORK_DIR
    resume: bool = True
    threads: int | None = None
    time_limit: float | None = None  # minutes
    warmup: int = 100
    save_every: int = 200
    log_every: int = 25
    freeze_text: bool = False  # CLIP only: keep the text tower fixed (continue after the UNet started)
    decoder_only: bool = False  # VAE only: keep the encoder (latent space, scaling factor) fixed
    pool: str | None = None  # folder of a pre-rendered scene pool (build_pool); None = render on the fly
    patch_size: int | None = None  # CLIP / captioner: ViT patch size (None = the model's default)
    twin_fraction: float = 0.5  # CLIP: share of each batch made of shape twins (hard negatives for shape)
    attribute_weight: float = 1.0  # CLIP: weight of the training-only attribute head's loss (0 = contrastive only)
    init: str | None = None  # start from <init>/<model> (a pipeline folder) instead of random weights
    through_vae: str | None = None  # judge: a VAE folder; half of each batch is read through it (encode, decode)
    teacher: str | None = None  # VAE: a VAE folder whose latent space a new VAE learns (the UNet stays valid)
    vae_channels: tuple[int, ...] | None = None  # VAE: block_out_channels of a new VAE (None = the default)
    joint_clip: float = 0.0  # UNet: > 0 trains the CLIP jointly (text tower unfrozen), with this weight on its loss
    bf16: bool = (
        False  # forward passes under bf16 autocast (fp32 weights and optimizer): more samples per second on a GPU
    )


DEFAULTS = {
    "vae": dict(steps=1500, batch_size=16, lr=1e-3, warmup=50),
    "clip": dict(steps=1200, batch_size=128, lr=5e-4, warmup=100),
    "unet": dict(steps=3000, batch_size=32, lr=5e-4, warmup=100),
    "captioner": dict(steps=2000, batch_size=64, lr=5e-4, warmup=100),
    "judge": dict(steps=800, batch_size=64, lr=2e-3, warmup=50),
}


# ----------------------------------------------------------------------------- helpers
def _logger(folder: Path, name: str) -> logging.Logger:
    folder.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"shapesworld.{name}.{folder}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):  # the folder was removed since: reopen the log
        if not Path(h.baseFilename).exists():
            log.removeHandler(h)
            h.close()
    if not log.handlers:
        fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        fh = logging.FileHandler(folder / "train.log")
        fh.setFormatter(fmt)
        log.addHandler(fh)
    return log


def _lr_factor(step: int, a: TrainArgs, elapsed: float) -> float:
    if step < a.warmup:
        return (step + 1) / a.warmup
    prog = (step - a.warmup) / max(1, a.steps - a.warmup)
    if a.time_limit:
        prog = max(prog, elapsed / (a.time_limit * 60.0))
    prog = min(1.0, prog)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * prog))


def scenes_to_tensor(scenes) -> torch.Tensor:
    return M.images_to_tensor([W.render(s).image for s in scenes])


def shape_twin(scene: W.Scene, rng: np.random.Generator) -> W.Scene:
    """The same scene with one object's shape changed: a hard negative for shape."""
    i = int(rng.integers(len(scene.objects)))
    others = [s for s in W.SHAPES if s != scene.objects[i].shape]
    return W.edit_scene(scene, i, shape=others[int(rng.integers(len(others)))])


# ----------------------------------------------------------------------------- scene pool
POOL_SEED_TAG = 9_000_000  # pool seeds are [seed, tag, chunk]: disjoint from step, eval and bank seeds
POOL_CHUNK = 2048


def _render_pool_chunk(job: tuple[int, int, int]) -> tuple[list, np.ndarray]:
    """Scenes ``2k`` and ``2k + 1`` of the chunk are shape twins of each other."""
    seed, chunk, n = job
    rng = np.random.default_rng([seed, POOL_SEED_TAG, chunk])
    scenes = []
    while len(scenes) < n:
        sc = W.sample_scene(rng)
        scenes += [sc, shape_twin(sc, rng)]
    scenes = scenes[:n]
    return [s.to_dict() for s in scenes], W.render_batch(scenes)


def build_pool(folder, size: int, seed: int = 0, workers: int | None = None) -> Path:
    """Render ``size`` scenes (pairs of shape twins) into ``folder``: ``images.npy``
    (uint8, N×64×64×3) and ``scenes.json``.  Deterministic in ``seed`` whatever
    ``workers`` is; written to a temporary folder and renamed, so a half-built
    pool is never read."""
    import multiprocessing as mp
    import shutil

    folder = Path(folder)
    if (folder / "scenes.json").exists():
        return folder
    size += size % 2
    jobs = [(seed, c, min(POOL_CHUNK, size - c * POOL_CHUNK)) for c in range(math.ceil(size / POOL_CHUNK))]
    workers = workers or os.cpu_count() or 1
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    images = np.lib.format.open_memmap(
        tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(size, W.IMAGE_SIZE, W.IMAGE_SIZE, 3)
    )
    scenes: list = []
    with mp.get_context("spawn").Pool(workers) as pool:
        for (_, c, n), (sc, im) in zip(
            jobs, tqdm(pool.imap(_render_pool_chunk, jobs), total=len(jobs), desc="render pool")
        ):
            images[c * POOL_CHUNK : c * POOL_CHUNK + n] = im
            scenes += sc
    images.flush()
    del images
    (tmp / "scenes.json").write_text(json.dumps({"seed": seed, "size": size, "scenes": scenes}))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


class ScenePool:
    """A pre-rendered pool held on the training device; batches are index draws."""

    def __init__(self, folder, device):
        folder = Path(folder)
        if not (folder / "scenes.json").exists():
            raise FileNotFoundError(
                f"no scene pool in {folder}: build one with `pix2pix-zero shapesworld pool {folder}`"
            )
        self.scenes = [W.Scene.from_dict(d) for d in json.loads((folder / "scenes.json").read_text())["scenes"]]
        self.images = torch.from_numpy(np.load(folder / "images.npy")).to(device)

    def __len__(self) -> int:
        return len(self.scenes)

    def draw(self, rng: np.random.Generator, n: int, twins: int = 0) -> np.ndarray:
        """``n`` indices: ``twins`` pairs of shape twins first, then independent scenes."""
        pairs = rng.integers(len(self) // 2, size=twins)
        rest = rng.integers(len(self), size=n - 2 * twins)
        return np.concatenate([np.stack([2 * pairs, 2 * pairs + 1], 1).reshape(-1), rest])

    def pixels(self, idx: np.ndarray) -> torch.Tensor:
        x = self.images[torch.from_numpy(idx).to(self.images.device)]
        return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


class Batches:
    """The data of step ``s``: scenes, the step's rng and the images on the device,
    from a :class:`ScenePool` or rendered on the fly."""

    def __init__(self, a: TrainArgs):
        self.a = a
        self.pool = ScenePool(a.pool, a.device) if a.pool else None

    def __call__(self, step: int, n: int, twins: int = 0, pixels: bool = True):
        """(scenes, rng, images or None, pool indices or None); `pixels=False` skips the images of pool draws
        (for a caller that has its own per-index table, such as the UNet's pre-encoded latents)."""
        a = self.a
        rng = np.random.default_rng([a.seed, step])
        if self.pool is not None:
            idx = self.pool.draw(rng, n, twins)
            return [self.pool.scenes[i] for i in idx], rng, self.pool.pixels(idx) if pixels else None, idx
        scenes = []
        for _ in range(twins):
            sc = W.sample_scene(rng)
            scenes += [sc, shape_twin(sc, rng)]
        scenes += [W.sample_scene(rng) for _ in range(n - 2 * twins)]
        return scenes, rng, scenes_to_tensor(scenes).to(a.device), None


class _Loop:
    """Shared bookkeeping: threads, seeding, checkpoint/resume, logging, progress."""

    def __init__(self, name: str, a: TrainArgs, model: torch.nn.Module, params=None, clip_groups=None):
        """``clip_groups``: modules whose gradient norms are clipped separately (default: the whole model),
        so one loss's large gradients do not shrink another module's updates."""
        self.name, self.a = name, a
        self.clip_groups = [list(m.parameters()) for m in (clip_groups or [model])]
        if a.threads:
            torch.set_num_threads(a.threads)
        if str(a.device).startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matmuls/convs: fp32 weights, tensor-core speed
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(a.seed)
        self.dir = Path(a.work_dir) / name
        self.log = _logger(self.dir, name)
        self.model = model.to(a.device)
        # fused: one kernel per step on CUDA instead of several per parameter (small models are launch-bound)
        self.opt = torch.optim.AdamW(
            params if params is not None else model.parameters(),
            lr=a.lr,
            weight_decay=0.01,
            betas=(0.9, 0.99),
            fused=str(a.device).startswith("cuda"),
        )
        self.step, self.elapsed = 0, 0.0
        ck = self.dir / "checkpoint.pt"
        if a.resume and ck.exists():
            state = torch.load(
                ck, map_location=a.device, weights_only=True
            )  # tensors and numbers only: never runs pickled code
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.step, self.elapsed = state["step"], state["elapsed"]
            torch.manual_seed(a.seed + self.step)
            self.log.info(f"resumed from {ck} at step {self.step} ({self.elapsed:.0f}s elapsed)")
        self.log.info(
            f"start {name}: {json.dumps(a.__dict__)} params={M.count_parameters(model)} "
            f"threads={torch.get_num_threads()}"
        )

    def _maybe_change_threads(self):
        """``echo 2 > <work_dir>/<model>/threads`` changes the thread count of a running job."""
        f = self.dir / "threads"
        try:
            n = int(f.read_text().strip()) if f.exists() else 0
        except ValueError:
            n = 0
        if n > 0 and n != torch.get_num_threads():
            torch.set_num_threads(n)
            self.log.info(f"threads -> {n}")

    def save(self):
        tmp = self.dir / "checkpoint.pt.tmp"
        torch.save(
            {
                "model": self.model.state_dict(),
                "opt": self.opt.state_dict(),
                "step": self.step,
                "elapsed": self.elapsed,
            },
            tmp,
        )
        os.replace(tmp, self.dir / "checkpoint.pt")

    def run(self, step_fn):
        a = self.a
        bar = tqdm(total=a.steps, initial=self.step, desc=f"train {self.name}", dynamic_ncols=True)
        t_last, run_loss, n = time.time(), 0.0, 0
        self.model.train()
        while self.step < a.steps:
            if a.time_limit and self.elapsed >= a.time_limit * 60:
                self.log.info(f"time limit {a.time_limit} min reached at step {self.step}")
                break
            t0 = time.time()
            f = _lr_factor(self.step, a, self.elapsed)
            for g in self.opt.param_groups:
                g["lr"] = a.lr * f
            with torch.autocast(torch.device(a.device).type, dtype=torch.bfloat16, enabled=a.bf16):
                loss = step_fn(self.step)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            for group in self.clip_groups:
                torch.nn.utils.clip_grad_norm_(group, 1.0)
            self.opt.step()
            self.step += 1
            self.elapsed += time.time() - t0
            run_loss += loss.detach()  # no host sync per step; read at log time
            n += 1
            bar.update(1)
            if self.step % a.log_every == 0 or self.step == a.steps:
                dt = (time.time() - t_last) / max(1, n)
                mean_loss = float(run_loss) / n
                self.log.info(
                    f"step {self.step} loss {mean_loss:.5f} lr {a.lr * f:.2e} {dt:.3f}s/step "
                    f"elapsed {self.elapsed:.0f}s"
                )
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                t_last, run_loss, n = time.time(), 0.0, 0
            if self.step % a.save_every == 0:
                self.save()
            if self.step % a.log_every == 0:
                self._maybe_change_threads()
        bar.close()
        self.save()
        self.model.eval()
        self.log.info(f"done {self.name} at step {self.step}, {self.elapsed:.0f}s training time")


def _load_clip_tokenizer(work_dir: Path):
    from transformers import CLIPTokenizer

    folder = write_clip_tokenizer(work_dir / "tokenizer")
    return CLIPTokenizer.from_pretrained(str(folder))


def tokenize(tok, texts) -> torch.Tensor:
    return tok(
        list(texts), padding="max_length", max_length=MODEL_MAX_LENGTH, truncation=True, return_tensors="pt"
    ).input_ids


# ----------------------------------------------------------------------------- VAE
@torch.no_grad()
def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of two (B,3,H,W) tensors in [-1,1] after uint8 quantisation."""
    qa = ((a.clamp(-1, 1) + 1) * 127.5).round()
    qb = ((b.clamp(-1, 1) + 1) * 127.5).round()
    mse = ((qa - qb) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(255.0**2 / mse)


@torch.no_grad()
def vae_eval(vae, num: int = 256, seed: int = 0, device="cpu", teacher=None) -> dict:
    """PSNR of encode-decode on held-out scenes; with a ``teacher``, also how far the latents are from its
    (RMS of the posterior means' difference over the teacher's latent std: 0 = the same latent space)."""
    scenes = W.eval_scenes(num, seed=seed)
    ps, zs, tzs = [], [], []
    for i in range(0, num, 32):
        x = scenes_to_tensor(scenes[i : i + 32]).to(device)
        z = vae.encode(x).latent_dist.mode()
        r = vae.decode(z).sample
        ps.append(psnr(r, x))
        zs.append(z)
        if teacher is not None:
            tzs.append(teacher.encode(x).latent_dist.mode())
    z = torch.cat(zs)
    ev = {
        "psnr": float(torch.cat(ps).mean()),
        "psnr_min": float(torch.cat(ps).min()),
        "latent_std": float(z.std()),
        "latent_mean": float(z.mean()),
    }
    if tzs:
        tz = torch.cat(tzs)
        ev["teacher_latent_rel_rmse"] = float((z - tz).pow(2).mean().sqrt() / tz.std())
    return ev


VAE_TEACHER_WEIGHT = 10.0  # latent regression next to the pixel loss: the UNet needs the teacher's latents closely


def train_vae(a: TrainArgs):
    """Three ways: from scratch; ``decoder_only`` (the encoder and its latent space frozen); or with a
    ``teacher``, a new (e.g. wider) VAE that learns the teacher's latent space. The last two keep the
    scaling factor, so a UNet trained on the old latents stays valid."""
    from diffusers import AutoencoderKL

    if a.teacher and a.decoder_only:
        raise ValueError(
            "--teacher trains a new VAE (encoder and decoder); --decoder-only continues an existing one: "
            "use one of them"
        )
    if a.vae_channels and (a.init or a.decoder_only) and not a.teacher:
        raise ValueError(
            "--vae-channels shapes a new VAE (from scratch or with --teacher); --init and --decoder-only "
            "continue an existing one, whose channels are fixed"
        )
    teacher = None
    if a.teacher:
        teacher = AutoencoderKL.from_pretrained(a.teacher, torch_dtype=torch.float32).to(a.device)
        teacher.eval().requires_grad_(False)
        vae = M.build_vae(a.vae_channels)
    elif a.init:
        vae = AutoencoderKL.from_pretrained(str(_init_folder(a.init, "vae")), torch_dtype=torch.float32)
    elif a.decoder_only:
        vae = AutoencoderKL.from_pretrained(str(_load_final(Path(a.work_dir), "vae")), torch_dtype=torch.float32)
    else:
        vae = M.build_vae(a.vae_channels)
    keep_sf = teacher.config.scaling_factor if teacher is not None else None
    if a.decoder_only:
        keep_sf = vae.config.scaling_factor
        for m in (vae.encoder, vae.quant_conv):
            if m is not None:
                m.requires_grad_(False)
    loop = _Loop("vae", a, vae)
    if keep_sf is not None:
        loop.log.info(
            f"{'teacher ' + a.teacher if teacher is not None else 'decoder-only'}: "
            f"latent space and scaling_factor {keep_sf} kept"
        )
    batches = Batches(a)

    def step_fn(step):
        _, _, x, _ = batches(step, a.batch_size)
        if teacher is not None or a.decoder_only:
            # decode the (teacher's) posterior mean: the latents the UNet was trained on and the default inversion
            # encodes; decoding samples (std ~0.33 next to a latent std ~0.9) teaches the decoder to blur
            with torch.no_grad():
                target = (teacher if teacher is not None else vae).encode(x).latent_dist
            rec = vae.decode(target.mode()).sample
            loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x)
            if teacher is not None:  # the encoder regresses the teacher's posterior, mean and log-variance
                post = vae.encode(x).latent_dist
                loss = loss + VAE_TEACHER_WEIGHT * (
                    F.mse_loss(post.mean, target.mean) + 0.1 * F.mse_loss(post.logvar, target.logvar)
                )
            return loss
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        return F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 1e-6 * post.kl().mean()

    loop.run(step_fn)
    ev = vae_eval(vae, device=a.device, teacher=teacher)
    vae.register_to_config(scaling_factor=keep_sf if keep_sf is not None else round(1.0 / ev["latent_std"], 5))
    vae.save_pretrained(str(loop.dir / "final"))
    loop.log.info(f"eval {json.dumps(ev)} scaling_factor={vae.config.scaling_factor}")
    return ev


# ----------------------------------------------------------------------------- CLIP
@torch.no_grad()
def clip_zero_shot(clip, tok, num: int = 300, seed: int = 1, device="cpu") -> dict:
    prompts = [(c, s) for c in W.COLORS for s in W.SHAPES]
    ids = tokenize(tok, [f"a {c} {s}" if c[0] not in "aeiou" else f"an {c} {s}" for c, s in prompts]).to(device)
    temb = F.normalize(_as_tensor(clip.get_text_features(input_ids=ids)), dim=-1)
    scenes = W.eval_scenes(num, seed=seed, num_objects=1)
    ok_s = ok_c = 0
    for i in range(0, num, 100):
        ch = scenes[i : i + 100]
        iemb = F.normalize(_as_tensor(clip.get_image_features(pixel_values=scenes_to_tensor(ch).to(device))), dim=-1)
        pred = (iemb @ temb.T).argmax(1).tolist()
        for sc, p in zip(ch, pred):
            ok_c += prompts[p][0] == sc.objects[0].color
            ok_s += prompts[p][1] == sc.objects[0].shape
    return {"shape_acc": ok_s / num, "color_acc": ok_c / num}


def _as_tensor(x):
    return x if torch.is_tensor(x) else x.pooler_output


ATTRIBUTES = W.SHAPES + W.COLORS


def attribute_targets(scenes) -> torch.Tensor:
    """(B, 11) multi-hot: the shapes and object colours present.  Every caption names
    every object's shape and colour, so the same targets hold for a scene's captions."""
    t = torch.zeros(len(scenes), len(ATTRIBUTES))
    for i, sc in enumerate(scenes):
        for o in sc.objects:
            t[i, ATTRIBUTES.index(o.shape)] = 1.0
            t[i, ATTRIBUTES.index(o.color)] = 1.0
    return t


class AttributeHead(torch.nn.Module):
    """Training-only linear probe shared by both CLIP towers: it reads the shapes and
    colours present off the normalized joint embedding.  Its loss makes both towers
    put shape on the same directions from the first step, where the contrastive loss
    alone learnt mostly object area (v1: text cosine circle/square 0.993)."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = torch.nn.Linear(dim, len(ATTRIBUTES))

    def loss(self, image_embeds, text_embeds, targets) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(
            self.linear(image_embeds), targets
        ) + F.binary_cross_entropy_with_logits(self.linear(text_embeds), targets)


def clip_loss(clip, head: AttributeHead | None, ids, x, scenes, weight: float) -> torch.Tensor:
    """Contrastive loss plus ``weight`` times the attribute head's loss."""
    out = clip(input_ids=ids, pixel_values=x, return_loss=True)
    if head is None or weight <= 0:
        return out.loss
    targets = attribute_targets(scenes).to(x.device)
    return out.loss + weight * head.loss(out.image_embeds, out.text_embeds, targets)


def twin_captions(scenes, rng, twins: int, caption) -> list[str]:
    """``caption(scene, rng)`` per scene; the first ``twins`` pairs of shape twins share one
    phrasing (one sub-rng per pair), so only the shape word tells their captions apart."""
    caps = []
    for k, sc in enumerate(scenes):
        if k < 2 * twins and k % 2 == 0:
            sub = int(rng.integers(2**31))
        caps.append(caption(sc, np.random.default_rng(sub) if k < 2 * twins else rng))
    return caps


def clip_caption(sc, rng) -> str:
    r = rng.random()
    if r < 0.15:
        return W.short_caption(sc)
    if r < 0.3:
        return W.canonical_caption(sc)
    if r < 0.4 and len(sc.objects) == 1:
        o = sc.objects[0]
        return f"{'an' if o.color[0] in 'aeiou' else 'a'} {o.color} {o.shape}"
    return W.random_caption(sc, rng)


def _init_clip(a: TrainArgs):
    """A fresh CLIP, or the one in ``<init>/clip``."""
    if a.init:
        from transformers import CLIPModel

        return CLIPModel.from_pretrained(str(_init_folder(a.init, "clip")))
    return M.build_clip(patch_size=a.patch_size)


def _init_folder(init: str, name: str) -> Path:
    folder = Path(init) / name
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"--init {init}: no {name}/config.json there (expected a ShapesWorld pipeline folder)")
    return folder


def train_clip(a: TrainArgs):
    work = Path(a.work_dir)
    tok = _load_clip_tokenizer(work)
    clip = _init_clip(a)
    if a.freeze_text:  # params without grads are skipped by AdamW (no update, no weight decay)
        clip.text_model.requires_grad_(False)
    head = AttributeHead(clip.config.projection_dim)
    loop = _Loop("clip", a, torch.nn.ModuleDict({"clip": clip, "head": head}), clip_groups=[clip, head])
    if a.freeze_text:
        loop.log.info("text tower frozen")
    batches = Batches(a)
    twins = int(a.batch_size * a.twin_fraction) // 2

    def step_fn(step):
        # hard negatives for shape: the first ``twins`` pairs are scenes that differ only in one
        # object's shape, each pair captioned with the same phrasing; colour and background alone
        # cannot tell them apart
        scenes, rng, x, _ = batches(step, a.batch_size, twins=twins)
        ids = tokenize(tok, twin_captions(scenes, rng, twins, clip_caption)).to(a.device)
        return clip_loss(clip, head, ids, x, scenes, a.attribute_weight)

    loop.run(step_fn)
    return _finish_clip(clip, tok, loop.dir, loop.log, a.device)


def _finish_clip(clip, tok, folder: Path, log, device) -> dict:
    with torch.no_grad():
        clip.logit_scale.clamp_(max=math.log(100.0))
    ev = clip_zero_shot(clip, tok, device=device)
    clip.save_pretrained(str(folder / "final"))
    log.info(f"eval {json.dumps(ev)}")
    return ev


# ----------------------------------------------------------------------------- UNet
OFFSET_NOISE = 0.1
P_UNCOND = 0.1


def _load_final(work: Path, name: str):
    folder = work / name / "final"
    if not folder.exists():
        raise FileNotFoundError(f"{folder} missing: train {name} first")
    return folder


def unet_caption(sc, rng) -> str:
    r = rng.random()
    if r < P_UNCOND:
        return ""
    if r < 0.4:
        return W.canonical_caption(sc)
    return W.random_caption(sc, rng)


def train_unet(a: TrainArgs):
    """Denoising loss on the VAE's latents, conditioned on the CLIP text tower.  With
    ``joint_clip > 0`` the CLIP trains alongside (its text tower unfrozen, its own loss
    weighted by ``joint_clip`` on the captioned part of each batch), so the text tower
    learns what the UNet needs while its two towers stay aligned; the CLIP is then
    written to ``<work_dir>/clip/final`` too."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPModel

    work = Path(a.work_dir)
    joint = a.joint_clip > 0
    tok = _load_clip_tokenizer(work)
    vae = AutoencoderKL.from_pretrained(str(_load_final(work, "vae"))).to(a.device).eval().requires_grad_(False)
    clip = CLIPModel.from_pretrained(str(_load_final(work, "clip")))
    sf = vae.config.scaling_factor
    sched = M.build_scheduler()
    acp = sched.alphas_cumprod.to(a.device)
    unet = (
        UNet2DConditionModel.from_pretrained(str(_init_folder(a.init, "unet")), torch_dtype=torch.float32)
        if a.init
        else M.build_unet()
    )
    if joint:
        head = AttributeHead(clip.config.projection_dim)
        loop = _Loop(
            "unet", a, torch.nn.ModuleDict({"unet": unet, "clip": clip, "head": head}), clip_groups=[unet, clip, head]
        )
        text_tower = clip.text_model
    else:
        te = M.text_encoder_from_clip(clip).to(a.device).eval().requires_grad_(False)
        del clip
        loop = _Loop("unet", a, unet)
        text_tower = te
    g = torch.Generator().manual_seed(a.seed)
    batches = Batches(a)
    twins = int(a.batch_size * a.twin_fraction) // 2 if joint else 0
    pool_latents = None
    if batches.pool is not None:  # the VAE is frozen: encode the pool once
        pool = batches.pool
        with torch.no_grad():
            pool_latents = torch.cat(
                [
                    vae.encode(pool.pixels(np.arange(i, min(i + 1024, len(pool))))).latent_dist.mode() * sf
                    for i in range(0, len(pool), 1024)
                ]
            )

    def step_fn(step):
        scenes, rng, x, idx = batches(step, a.batch_size, twins=twins, pixels=joint or pool_latents is None)
        caps = twin_captions(scenes, rng, twins, unet_caption)
        ids = tokenize(tok, caps).to(a.device)
        g.manual_seed(a.seed * 1_000_003 + step)
        with torch.no_grad():
            if pool_latents is not None:
                z0 = pool_latents[torch.from_numpy(idx).to(a.device)]
            else:
                z0 = vae.encode(x).latent_dist.mode() * sf
        with torch.set_grad_enabled(joint):
            enc = text_tower(input_ids=ids).last_hidden_state
        b = z0.shape[0]
        noise = torch.randn(z0.shape, generator=g) + OFFSET_NOISE * torch.randn(b, z0.shape[1], 1, 1, generator=g)
        noise = noise.to(a.device)
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=g).to(a.device)
        ab = acp[t].view(b, 1, 1, 1)
        zt = ab.sqrt() * z0 + (1 - ab).sqrt() * noise
        pred = unet(zt, t, encoder_hidden_states=enc).sample
        loss = F.mse_loss(pred, noise)
        if joint:  # CLIP loss on the captioned scenes (the unconditional ones have no text)
            keep = [i for i, c in enumerate(caps) if c]
            k = torch.tensor(keep, device=a.device)
            loss = loss + a.joint_clip * clip_loss(
                clip, head, ids[k], x[k], [scenes[i] for i in keep], a.attribute_weight
            )
        return loss

    loop.run(step_fn)
    unet.save_pretrained(str(loop.dir / "final"))
    res = {"steps": loop.step, "seconds": loop.elapsed}
    if joint:
        res["clip"] = _finish_clip(clip, tok, work / "clip", loop.log, a.device)
    return res


# ----------------------------------------------------------------------------- captioner
def train_captioner(a: TrainArgs):
    work = Path(a.work_dir)
    tok_dir = write_bert_tokenizer(work / "bert_tokenizer")
    proc = M.blip_processor(tok_dir)
    tok = proc.tokenizer
    if a.init:
        from transformers import BlipForConditionalGeneration

        model = BlipForConditionalGeneration.from_pretrained(str(_init_folder(a.init, "captioner")))
    else:
        model = M.build_captioner(patch_size=a.patch_size)
    loop = _Loop("captioner", a, model)
    bos = model.config.text_config.bos_token_id
    batches = Batches(a)

    def step_fn(step):
        scenes, _, x, _ = batches(step, a.batch_size)
        enc = tok([W.canonical_caption(s) for s in scenes], padding="longest", return_tensors="pt")
        ids = enc.input_ids.clone()
        ids[:, 0] = bos  # [CLS] -> [DEC], as BLIP does
        labels = ids.masked_fill(enc.attention_mask == 0, -100)
        out = model(
            pixel_values=x,
            input_ids=ids.to(a.device),
            attention_mask=enc.attention_mask.to(a.device),
            labels=labels.to(a.device),
        )
        return out.loss

    loop.run(step_fn)
    final = loop.dir / "final"
    model.save_pretrained(str(final))
    proc.save_pretrained(str(final))
    ev = captioner_eval(model, proc, num=100, device=a.device)
    loop.log.info(f"eval {json.dumps(ev)}")
    return ev


@torch.no_grad()
def captioner_eval(model, proc, num: int = 100, seed: int = 2, device="cpu", batch: int = 50) -> dict:
    from PIL import Image

    scenes = W.eval_scenes(num, seed=seed)
    ok_s = ok_c = ok_all = 0
    examples = []
    for i in range(0, num, batch):
        ch = scenes[i : i + batch]
        inputs = proc(images=[Image.fromarray(W.render(s).image) for s in ch], return_tensors="pt").to(device)
        out = model.generate(**inputs, max_new_tokens=40)
        texts = proc.batch_decode(out, skip_special_tokens=True)
        for sc, t in zip(ch, texts):
            p = W.parse_caption(t)
            s_ok = sorted(p["shapes"]) == sorted(o.shape for o in sc.objects)
            c_ok = sorted(p["colors"]) == sorted(o.color for o in sc.objects)
            ok_s += s_ok
            ok_c += c_ok
            ok_all += t.strip() == W.canonical_caption(sc)
            if len(examples) < 5:
                examples.append((W.canonical_caption(sc), t))
    return {"shape_acc": ok_s / num, "color_acc": ok_c / num, "exact": ok_all / num, "examples": examples}


# ----------------------------------------------------------------------------- judge
def train_judge(a: TrainArgs):
    judge = M.Judge.load(_init_folder(a.init, "judge")) if a.init else M.Judge(**M.JUDGE_CONFIG)
    vae = None
    if a.through_vae:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(a.through_vae, torch_dtype=torch.float32).to(a.device)
        vae.eval().requires_grad_(False)
    loop = _Loop("judge", a, judge)
    batches = Batches(a)

    def step_fn(step):
        scenes, rng, x, _ = batches(step, a.batch_size)
        if vae is not None:
            # half the batch as the pipeline shows it (encoded, decoded): generated images and edits are read
            # through this decoder, which softens small outlines the judge must still tell apart
            h = len(scenes) // 2
            with torch.no_grad():
                x = torch.cat([M.vae_round_trip(vae, x[:h]), x[h:]])
        # light photometric noise so the judge tolerates imperfect generated samples
        x = x + 0.04 * torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)).to(x.device)
        tg = {k: v.to(a.device) for k, v in M.judge_targets(scenes).items()}
        o = judge(x)
        return (
            F.cross_entropy(o["background"], tg["background"])
            + F.cross_entropy(o["count"], tg["count"])
            + F.binary_cross_entropy_with_logits(o["shapes"], tg["shapes"]) * 3
            + F.binary_cross_entropy_with_logits(o["colors"], tg["colors"]) * 3
        )

    loop.run(step_fn)
    judge.save(loop.dir / "final")
    ev = judge_eval(judge, device=a.device)
    if vae is not None:
        ev["through_vae"] = judge_eval(judge, device=a.device, vae=vae)
    loop.log.info(f"eval {json.dumps(ev)}")
    return ev


@torch.no_grad()
def judge_eval(judge, num: int = 500, seed: int = 3, device="cpu", vae=None) -> dict:
    """The judge's accuracy on held-out renders, or on their VAE reconstructions when ``vae`` is given."""
    scenes = W.eval_scenes(num, seed=seed)
    preds = []
    for i in range(0, num, 100):
        x = scenes_to_tensor(scenes[i : i + 100]).to(device)
        if vae is not None:
            x = M.vae_round_trip(vae, x)
        preds += judge.predict(x)
    bg = np.mean([p["background"] == s.background for p, s in zip(preds, scenes)])
    cnt = np.mean([p["count"] == len(s.objects) for p, s in zip(preds, scenes)])
    shp = np.mean([p["shapes"] == sorted({o.shape for o in s.objects}) for p, s in zip(preds, scenes)])
    col = np.mean([p["colors"] == sorted({o.color for o in s.objects}) for p, s in zip(preds, scenes)])
    return {"background_acc": float(bg), "count_acc": float(cnt), "shapes_acc": float(shp), "colors_acc": float(col)}


TRAINERS = {
    "vae": train_vae,
    "clip": train_clip,
    "unet": train_unet,
    "captioner": train_captioner,
    "judge": train_judge,
}


# ----------------------------------------------------------------------------- export
EXAMPLE_SCENES = {
    "red_circle_white": W.Scene((W.SceneObject("circle", "red", "large", "center", 0.0, 0.0, 0.0),), "white", "plain"),
    "blue_square_gray_gradient": W.Scene(
        (W.SceneObject("square", "blue", "medium", "top left", 1.0, 1.0, 10.0),), "gray", "gradient_v"
    ),
    "yellow_star_striped_black": W.Scene(
        (W.SceneObject("star", "yellow", "large", "center right", -1.0, 0.0, -8.0),), "black", "stripes_h"
    ),
    "green_heart_orange_triangle_pink": W.Scene(
        (
            W.SceneObject("heart", "green", "medium", "center left", 0.0, 0.0, 5.0),
            W.SceneObject("triangle", "orange", "medium", "top right", 0.0, 1.0, 0.0),
        ),
        "pink",
        "plain",
    ),
    "purple_triangle_cyan_stripes": W.Scene(
        (W.SceneObject("triangle", "purple", "small", "bottom right", 0.0, 0.0, 0.0),), "cyan", "stripes_v"
    ),
}


def write_examples(folder) -> list[str]:
    """The shipped example scenes: ``<name>.png`` and ``<name>.json`` (scene + canonical caption)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, sc in EXAMPLE_SCENES.items():
        Image.fromarray(W.render(sc).image).save(folder / f"{name}.png")
        (folder / f"{name}.json").write_text(
            json.dumps({"scene": sc.to_dict(), "caption": W.canonical_caption(sc)}, indent=2) + "\n"
        )
    return sorted(EXAMPLE_SCENES)


MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "feature_extractor": [None, None],
    "image_encoder": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def folder_size(folder) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def export_bundle(work_dir, out, unet_fp16: bool = True, sentences: int = 750) -> dict:
    """Copy the final weights from ``work_dir`` into the pipeline folder ``out``."""
    import shutil

    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPModel, CLIPProcessor, CLIPTokenizer

    from .tokenizer import write_clip_tokenizer

    work, out = Path(work_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for sub in (
        "vae",
        "unet",
        "text_encoder",
        "tokenizer",
        "scheduler",
        "clip",
        "captioner",
        "judge",
        "sentences",
        "concepts",
    ):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    idx = dict(MODEL_INDEX, _diffusers_version=diffusers.__version__)
    (out / "model_index.json").write_text(json.dumps(idx, indent=2) + "\n")
    write_clip_tokenizer(out / "tokenizer")
    tok = CLIPTokenizer.from_pretrained(str(out / "tokenizer"))
    M.build_scheduler().save_pretrained(str(out / "scheduler"))
    AutoencoderKL.from_pretrained(str(_load_final(work, "vae"))).save_pretrained(str(out / "vae"))
    clip = CLIPModel.from_pretrained(str(_load_final(work, "clip")))
    clip.save_pretrained(str(out / "clip"))
    CLIPProcessor(image_processor=M.clip_image_processor(), tokenizer=tok).save_pretrained(str(out / "clip"))
    M.text_encoder_from_clip(clip).save_pretrained(str(out / "text_encoder"))
    unet_dir = work / "unet" / "final"
    if unet_dir.exists():
        unet = UNet2DConditionModel.from_pretrained(str(unet_dir))
        if unet_fp16:
            unet = unet.half()
        unet.save_pretrained(str(out / "unet"))
    cap_dir = work / "captioner" / "final"
    if cap_dir.exists():
        shutil.copytree(cap_dir, out / "captioner")
    judge_dir = work / "judge" / "final"
    if judge_dir.exists():
        shutil.copytree(judge_dir, out / "judge")
    W.write_sentence_banks(out / "sentences", n=sentences)
    from .concepts import build_shipped_concepts

    build_shipped_concepts(out)  # after the text encoder and the banks: the first run then embeds nothing
    from pix2pix_zero.shapesworld import EXAMPLES_DIR

    write_examples(EXAMPLES_DIR)
    sizes = {p.name: folder_size(p) for p in sorted(out.iterdir()) if p.is_dir()}
    return {"out": str(out), "bytes_total": folder_size(out), "bytes": sizes}
