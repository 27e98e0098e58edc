"""Quality report of a ShapesWorld model folder, on held-out scenes.

Measures: VAE reconstruction PSNR; CLIP zero-shot shape / colour accuracy;
text-to-image samples (DDIM, classifier-free guidance) judged by the judge for
the captioned shape, colour and background colour (one-object and two-object
captions separately); the captioner's shape / colour word accuracy; and the
judge's own accuracy on true renders (its ceiling).

All scenes come from :func:`world.eval_scenes` (a seed range disjoint from the
training seeds)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pix2pix_zero.shapesworld import world as W

from . import builders as M


def _dir(model_dir) -> Path:
    if model_dir is None:
        from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR

        return Path(BUNDLED_MODEL_DIR)
    return Path(model_dir)


def _pil(scenes):
    from PIL import Image

    return [Image.fromarray(W.render(s).image) for s in scenes]


@torch.no_grad()
def eval_vae(folder: Path, scenes, device="cpu", batch=32) -> dict:
    from diffusers import AutoencoderKL

    from .train import psnr

    vae = AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=torch.float32).to(device).eval()
    ps, zs = [], []
    for i in tqdm(range(0, len(scenes), batch), desc="vae", leave=False):
        x = M.images_to_tensor([W.render(s).image for s in scenes[i : i + batch]]).to(device)
        z = vae.encode(x).latent_dist.mode()
        ps.append(psnr(vae.decode(z).sample, x))
        zs.append(z * vae.config.scaling_factor)
    p = torch.cat(ps)
    z = torch.cat(zs)
    return {
        "psnr_mean": float(p.mean()),
        "psnr_min": float(p.min()),
        "scaled_latent_std": float(z.std()),
        "scaling_factor": float(vae.config.scaling_factor),
        "n": len(scenes),
    }


@torch.no_grad()
def eval_clip(folder: Path, scenes, device="cpu", batch=100) -> dict:
    from transformers import CLIPModel, CLIPProcessor

    clip = CLIPModel.from_pretrained(str(folder / "clip"), torch_dtype=torch.float32).to(device).eval()
    proc = CLIPProcessor.from_pretrained(str(folder / "clip"))
    prompts = [(c, s) for c in W.COLORS for s in W.SHAPES]
    texts = [f"{'an' if c[0] in 'aeiou' else 'a'} {c} {s}" for c, s in prompts]
    ti = proc(text=texts, return_tensors="pt", padding="max_length", max_length=proc.tokenizer.model_max_length)
    tf = clip.get_text_features(input_ids=ti.input_ids.to(device))
    tf = F.normalize(tf if torch.is_tensor(tf) else tf.pooler_output, dim=-1)
    ok_s = ok_c = 0
    for i in tqdm(range(0, len(scenes), batch), desc="clip", leave=False):
        ch = scenes[i : i + batch]
        px = proc(images=_pil(ch), return_tensors="pt").pixel_values.to(device)
        f = clip.get_image_features(pixel_values=px)
        f = F.normalize(f if torch.is_tensor(f) else f.pooler_output, dim=-1)
        for sc, p in zip(ch, (f @ tf.T).argmax(1).tolist()):
            ok_s += prompts[p][1] == sc.objects[0].shape
            ok_c += prompts[p][0] == sc.objects[0].color
    n = len(scenes)
    return {"shape_acc": ok_s / n, "color_acc": ok_c / n, "n": n}


@torch.no_grad()
def generate(folder: Path, prompts, steps=50, guidance=5.0, seed=0, device="cpu", batch=50, components=None):
    """Text-to-image with a plain DDIM + classifier-free-guidance loop; uint8 (N,64,64,3)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    if components is None:
        components = dict(
            tok=CLIPTokenizer.from_pretrained(str(folder / "tokenizer")),
            te=CLIPTextModel.from_pretrained(str(folder / "text_encoder"), torch_dtype=torch.float32).to(device).eval(),
            unet=UNet2DConditionModel.from_pretrained(str(folder / "unet"), torch_dtype=torch.float32)
            .to(device)
            .eval(),
            vae=AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=torch.float32).to(device).eval(),
            sched=DDIMScheduler.from_pretrained(str(folder / "scheduler")),
        )
    tok, te, unet, vae, sched = (components[k] for k in ("tok", "te", "unet", "vae", "sched"))

    def enc(texts):
        ids = tok(
            list(texts), padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(device)
        return te(ids).last_hidden_state

    uncond = enc([""])
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in tqdm(range(0, len(prompts), batch), desc="text-to-image", leave=False):
        ps = prompts[i : i + batch]
        cond = enc(ps)
        ctx = torch.cat([uncond.expand(len(ps), -1, -1), cond])
        lat = torch.randn(
            len(ps), unet.config.in_channels, unet.config.sample_size, unet.config.sample_size, generator=g
        ).to(device)
        sched.set_timesteps(steps)
        for t in sched.timesteps:
            e = unet(torch.cat([lat, lat]), t, encoder_hidden_states=ctx).sample
            eu, ec = e.chunk(2)
            lat = sched.step(eu + guidance * (ec - eu), t, lat).prev_sample
        img = vae.decode(lat / vae.config.scaling_factor).sample
        out.append(M.tensor_to_uint8(img))
    return np.concatenate(out, 0)


def _top_set(probs, names, k):
    order = np.argsort(probs)[::-1]
    chosen = [j for j in order[:k] if probs[j] > 0.5] or [int(order[0])]
    return sorted(names[j] for j in chosen)


def _judge_scores(judge, imgs, scenes) -> dict:
    """Shape / colour / background accuracy of images meant to show `scenes`, as the judge reads them."""
    preds = judge.predict(list(imgs))
    shape = color = bg = both = 0
    by_size: dict[str, list[int]] = {}  # one-object scenes: size word -> [right, total]
    by_shape: dict[str, list[int]] = {}  # one-object scenes: shape word -> [right, total]
    for p, s in zip(preds, scenes):
        # distinct captioned shapes / colours vs. the judge's label sets (prob > 0.5, at most one per
        # captioned object, at least the most likely one)
        want_s = sorted({o.shape for o in s.objects})
        want_c = sorted({o.color for o in s.objects})
        k = len(s.objects)
        got_s = _top_set(p["shape_probs"], judge.shapes, k)
        got_c = _top_set(p["color_probs"], judge.colors, k)
        shape += got_s == want_s
        if k == 1:
            for tallies, word in ((by_size, s.objects[0].size), (by_shape, s.objects[0].shape)):
                tally = tallies.setdefault(word, [0, 0])
                tally[0] += got_s == want_s
                tally[1] += 1
        color += got_c == want_c
        bg += p["background"] == s.background
        both += (got_s == want_s) and (got_c == want_c) and (p["background"] == s.background)
    n = len(scenes)
    res = {"shape_acc": shape / n, "color_acc": color / n, "background_acc": bg / n, "all_acc": both / n, "n": n}
    if by_size:  # a small object (radius 6 px) spans about 3 latent pixels
        res["shape_acc_by_size"] = {
            z: {"acc": r / t, "n": t} for z, (r, t) in sorted(by_size.items(), key=lambda kv: W.SIZES[kv[0]])
        }
        res["shape_acc_by_shape"] = {
            z: {"acc": r / t, "n": t} for z, (r, t) in sorted(by_shape.items(), key=lambda kv: W.SHAPES.index(kv[0]))
        }
    return res


@torch.no_grad()
def eval_judge_through_vae(folder: Path, one, two, device="cpu", batch=50) -> dict:
    """The text-to-image rows' ceiling: the true renders of the same scenes through the VAE, read by the judge.
    A generator that drew every scene perfectly would score this, since its samples are decoded by the same VAE."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=torch.float32).to(device).eval()
    judge = M.Judge.load(folder / "judge", device)
    res = {}
    for name, scenes in (("one_object", one), ("two_objects", two)):
        imgs = []
        for i in range(0, len(scenes), batch):
            x = M.images_to_tensor([W.render(s).image for s in scenes[i : i + batch]]).to(device)
            imgs += list(M.tensor_to_uint8(M.vae_round_trip(vae, x)))  # as the text-to-image samples are
        res[name] = _judge_scores(judge, imgs, scenes)
    return res


@torch.no_grad()
def eval_text_to_image(folder: Path, one, two, steps=50, guidance=5.0, seed=0, device="cpu", samples_dir=None) -> dict:
    judge = M.Judge.load(folder / "judge", device)
    res = {}
    for name, scenes in (("one_object", one), ("two_objects", two)):
        prompts = [W.canonical_caption(s) for s in scenes]
        imgs = generate(folder, prompts, steps=steps, guidance=guidance, seed=seed, device=device)
        res[name] = _judge_scores(judge, imgs, scenes)
        if samples_dir:
            from PIL import Image

            d = Path(samples_dir)
            d.mkdir(parents=True, exist_ok=True)
            k = min(len(imgs), 32)
            cols = 8
            rows = (k + cols - 1) // cols
            grid = np.zeros((rows * 64, cols * 64, 3), np.uint8)
            for j in range(k):
                grid[(j // cols) * 64 : (j // cols + 1) * 64, (j % cols) * 64 : (j % cols + 1) * 64] = imgs[j]
            Image.fromarray(grid).save(d / f"{name}.png")
            (d / f"{name}.txt").write_text("\n".join(prompts[:k]) + "\n")
    return res


@torch.no_grad()
def eval_judge(folder: Path, scenes, device="cpu") -> dict:
    judge = M.Judge.load(folder / "judge", device)
    preds = []
    for i in range(0, len(scenes), 100):
        preds += judge.predict([W.render(s).image for s in scenes[i : i + 100]])
    n = len(scenes)
    return {
        "background_acc": sum(p["background"] == s.background for p, s in zip(preds, scenes)) / n,
        "shapes_acc": sum(p["shapes"] == sorted({o.shape for o in s.objects}) for p, s in zip(preds, scenes)) / n,
        "colors_acc": sum(p["colors"] == sorted({o.color for o in s.objects}) for p, s in zip(preds, scenes)) / n,
        "n": n,
    }


@torch.no_grad()
def eval_captioner(folder: Path, scenes, device="cpu", batch=50) -> dict:
    from transformers import BlipForConditionalGeneration, BlipProcessor

    model = (
        BlipForConditionalGeneration.from_pretrained(str(folder / "captioner"), torch_dtype=torch.float32)
        .to(device)
        .eval()
    )
    proc = BlipProcessor.from_pretrained(str(folder / "captioner"))
    ok_s = ok_c = ok_b = exact = 0
    examples = []
    for i in tqdm(range(0, len(scenes), batch), desc="captioner", leave=False):
        ch = scenes[i : i + batch]
        inputs = proc(images=_pil(ch), return_tensors="pt").to(device)
        out = model.generate(**inputs, max_new_tokens=40)
        for s, t in zip(ch, proc.batch_decode(out, skip_special_tokens=True)):
            p = W.parse_caption(t)
            ok_s += sorted(p["shapes"]) == sorted(o.shape for o in s.objects)
            ok_c += sorted(p["colors"]) == sorted(o.color for o in s.objects)
            ok_b += p["backgrounds"] == [s.background]
            exact += t.strip() == W.canonical_caption(s)
            if len(examples) < 4:
                examples.append({"truth": W.canonical_caption(s), "caption": t})
    n = len(scenes)
    return {
        "shape_acc": ok_s / n,
        "color_acc": ok_c / n,
        "background_acc": ok_b / n,
        "exact_acc": exact / n,
        "n": n,
        "examples": examples,
    }


def quality_report(
    model_dir=None,
    num_scenes: int = 100,
    seed: int = 0,
    steps: int = 50,
    guidance: float = 5.0,
    device: str = "cpu",
    samples_dir=None,
    parts=("vae", "clip", "t2i", "captioner", "judge"),
) -> dict:
    folder = _dir(model_dir)
    res: dict = {
        "model_dir": str(folder),
        "num_scenes": num_scenes,
        "seed": seed,
        "ddim_steps": steps,
        "guidance": guidance,
        "timings_s": {},
    }
    mixed = W.eval_scenes(num_scenes, seed=seed * 10 + 0)
    one = W.eval_scenes(num_scenes, seed=seed * 10 + 1, num_objects=1)
    two = W.eval_scenes(num_scenes, seed=seed * 10 + 2, num_objects=2)

    def timed(name, fn):
        t0 = time.time()
        res[name] = fn()
        res["timings_s"][name] = round(time.time() - t0, 1)

    if "vae" in parts:
        timed("vae", lambda: eval_vae(folder, mixed, device))
    if "clip" in parts:
        timed("clip", lambda: eval_clip(folder, one, device))
    if "judge" in parts:
        timed("judge_on_renders", lambda: eval_judge(folder, mixed, device))
        timed("judge_through_vae", lambda: eval_judge_through_vae(folder, one, two, device))
    if "t2i" in parts:
        timed("text_to_image", lambda: eval_text_to_image(folder, one, two, steps, guidance, seed, device, samples_dir))
    if "captioner" in parts:
        timed("captioner", lambda: eval_captioner(folder, mixed, device))
    return res


def format_report(r: dict) -> str:
    rows = [("measurement", "value", "target")]

    def pct(x):
        return f"{100 * x:.1f} %"

    if "vae" in r:
        v = r["vae"]
        rows += [
            ("VAE PSNR, mean (min) [dB]", f"{v['psnr_mean']:.2f} ({v['psnr_min']:.2f})", ">= 32"),
            ("VAE scaled latent std", f"{v['scaled_latent_std']:.3f}", "~1"),
        ]
    if "clip" in r:
        rows += [
            ("CLIP zero-shot shape", pct(r["clip"]["shape_acc"]), ">= 95 %"),
            ("CLIP zero-shot colour", pct(r["clip"]["color_acc"]), ">= 95 %"),
        ]

    def judged(prefix, t, all_three):  # rows of one `_judge_scores` result
        out = [(f"{prefix}: shape", pct(t["shape_acc"]), "")]
        out += [
            (f"{prefix}: shape, {z} (n={v['n']})", pct(v["acc"]), "")
            for key in ("shape_acc_by_size", "shape_acc_by_shape")
            for z, v in t.get(key, {}).items()
        ]
        out += [(f"{prefix}: colour", pct(t["color_acc"]), ""), (f"{prefix}: background", pct(t["background_acc"]), "")]
        return out + ([(f"{prefix}: all three", pct(t["all_acc"]), "")] if all_three else [])

    if "text_to_image" in r:
        for k, label in (("one_object", "1 obj"), ("two_objects", "2 obj")):
            rows += judged(f"T2I {label}", r["text_to_image"][k], all_three=True)
    if "captioner" in r:
        c = r["captioner"]
        rows += [
            ("captioner shape words", pct(c["shape_acc"]), ">= 95 %"),
            ("captioner colour words", pct(c["color_acc"]), ">= 95 %"),
            ("captioner background word", pct(c["background_acc"]), ""),
            ("captioner exact caption", pct(c["exact_acc"]), ""),
        ]
    if "judge_on_renders" in r:
        j = r["judge_on_renders"]
        rows += [
            ("judge on renders: background", pct(j["background_acc"]), ""),
            ("judge on renders: shape set", pct(j["shapes_acc"]), ""),
            ("judge on renders: colour set", pct(j["colors_acc"]), ""),
        ]
    if "judge_through_vae" in r:  # the ceiling of the T2I rows: true renders, decoded by the same VAE
        for k, label in (("one_object", "1 obj"), ("two_objects", "2 obj")):
            rows += judged(f"renders via VAE, {label}", r["judge_through_vae"][k], all_three=False)
    w = [max(len(x[i]) for x in rows) for i in range(3)]
    lines = [
        f"ShapesWorld quality report: {r['model_dir']}",
        f"held-out scenes per measurement: {r['num_scenes']} (seed {r['seed']}), "
        f"DDIM {r['ddim_steps']} steps, CFG {r['guidance']}",
    ]
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w[k]) for k, c in enumerate(row)))
        if i == 0:
            lines.append("  ".join("-" * w[k] for k in range(3)))
    lines.append("timings [s]: " + ", ".join(f"{k} {v}" for k, v in r["timings_s"].items()))
    return "\n".join(lines)
