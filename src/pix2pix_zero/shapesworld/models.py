"""Model configurations for ShapesWorld (stock diffusers / transformers classes)
and the judge classifier (a small CNN of our own)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from . import world as W

# ----------------------------------------------------------------------------- configs
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64),
    layers_per_block=1,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=16,
    sample_size=64,
    scaling_factor=1.0,  # replaced by the measured value at export
)

TEXT_HIDDEN = 128

UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    block_out_channels=(64, 128, 128),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=TEXT_HIDDEN,
    attention_head_dim=8,
    norm_num_groups=32,
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
    trained_betas=None,
    timestep_spacing="leading",
)

IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]


def build_vae(block_out_channels: tuple[int, ...] | None = None):
    """The ShapesWorld VAE; ``block_out_channels`` widens it (same depth, so the same 16×16×4 latents)."""
    from diffusers import AutoencoderKL

    cfg = dict(VAE_CONFIG)
    if block_out_channels:
        if len(block_out_channels) != len(VAE_CONFIG["block_out_channels"]):
            raise ValueError(f"block_out_channels {block_out_channels}: need "
                             f"{len(VAE_CONFIG['block_out_channels'])} levels (64 px -> 16 px latents)")
        if any(c % cfg["norm_num_groups"] for c in block_out_channels):
            raise ValueError(f"block_out_channels {block_out_channels}: each must be a multiple of the "
                             f"{cfg['norm_num_groups']} norm groups")
        cfg["block_out_channels"] = tuple(block_out_channels)
    return AutoencoderKL(**cfg)


def vae_round_trip(vae, x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] encoded to the posterior mean and decoded: what the pipeline shows of them."""
    return vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)


def build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**UNET_CONFIG)


def build_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SCHEDULER_CONFIG)


def clip_config(patch_size: int | None = None):
    from transformers import CLIPConfig

    from .tokenizer import MODEL_MAX_LENGTH, build_clip_vocab

    vocab, _ = build_clip_vocab()
    text = dict(
        vocab_size=len(vocab),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=512,
        projection_dim=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=MODEL_MAX_LENGTH,
        hidden_act="quick_gelu",
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    vision = dict(
        hidden_size=128,
        intermediate_size=512,
        projection_dim=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=W.IMAGE_SIZE,
        patch_size=patch_size or 8,
        hidden_act="quick_gelu",
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=128)


def build_clip(patch_size: int | None = None):
    from transformers import CLIPModel

    return CLIPModel(clip_config(patch_size))


def clip_image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True,
        size={"shortest_edge": W.IMAGE_SIZE},
        do_center_crop=True,
        crop_size={"height": W.IMAGE_SIZE, "width": W.IMAGE_SIZE},
        do_rescale=True,
        do_normalize=True,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        do_convert_rgb=True,
    )


def text_encoder_from_clip(clip):
    """A ``CLIPTextModel`` holding exactly the CLIP's text tower."""
    from transformers import CLIPTextModel

    te = CLIPTextModel(clip.config.text_config)
    src = clip.text_model
    src = getattr(src, "text_model", src)  # transformers 4.x nests a CLIPTextTransformer
    dst = getattr(te, "text_model", te)
    dst.load_state_dict(src.state_dict(), strict=True)
    return te.eval()


def blip_config(patch_size: int | None = None):
    from transformers import BlipConfig

    from .tokenizer import build_bert_vocab

    vocab = build_bert_vocab()
    text = dict(
        vocab_size=len(vocab),
        hidden_size=128,
        encoder_hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=40,
        bos_token_id=vocab.index("[DEC]"),
        pad_token_id=vocab.index("[PAD]"),
        sep_token_id=vocab.index("[SEP]"),
        eos_token_id=vocab.index("[SEP]"),
        label_smoothing=0.0,
        projection_dim=128,
    )
    vision = dict(
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=W.IMAGE_SIZE,
        patch_size=patch_size or 8,
        projection_dim=128,
    )
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=128)


def build_captioner(patch_size: int | None = None):
    from transformers import BlipForConditionalGeneration

    return BlipForConditionalGeneration(blip_config(patch_size))


def blip_processor(tokenizer_folder):
    from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor

    ip = BlipImageProcessor(
        do_resize=True,
        size={"height": W.IMAGE_SIZE, "width": W.IMAGE_SIZE},
        do_rescale=True,
        do_normalize=True,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        do_convert_rgb=True,
    )
    tok = BertTokenizer.from_pretrained(str(tokenizer_folder))
    return BlipProcessor(image_processor=ip, tokenizer=tok)


# ----------------------------------------------------------------------------- judge
JUDGE_CONFIG = dict(
    channels=(32, 64, 128, 128),
    shapes=list(W.SHAPES),
    colors=list(W.COLORS),
    backgrounds=list(W.BG_COLORS),
)


class Judge(nn.Module):
    """Small CNN that reads a 64x64 ShapesWorld image.

    Heads: background colour (softmax), number of objects (1 or 2, softmax),
    shapes present and object colours present (sigmoid, multi-label)."""

    def __init__(self, channels=(32, 64, 128), shapes=W.SHAPES, colors=W.COLORS, backgrounds=W.BG_COLORS):
        super().__init__()
        self.shapes, self.colors, self.backgrounds = list(shapes), list(colors), list(backgrounds)
        layers, cin = [], 3
        for c in channels:
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.SiLU(), nn.MaxPool2d(2)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.maxpool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(2 * cin, len(self.backgrounds) + 2 + len(self.shapes) + len(self.colors))

    def config(self) -> dict:
        chans = [m.out_channels for m in self.features if isinstance(m, nn.Conv2d)]
        return dict(channels=chans, shapes=self.shapes, colors=self.colors, backgrounds=self.backgrounds)

    def forward(self, x: torch.Tensor) -> dict:
        """``x``: float (B, 3, 64, 64) in [-1, 1]."""
        h = self.features(x)
        h = torch.cat([self.pool(h), self.maxpool(h)], 1).flatten(1)
        o = self.head(h)
        nb, ns = len(self.backgrounds), len(self.shapes)
        return {
            "background": o[:, :nb],
            "count": o[:, nb:nb + 2],
            "shapes": o[:, nb + 2:nb + 2 + ns],
            "colors": o[:, nb + 2 + ns:],
        }

    @torch.no_grad()
    def predict(self, images) -> list[dict]:
        """Predictions for uint8 HxWx3 arrays / PIL images / a (B,3,H,W) tensor in [-1,1]."""
        x = images if torch.is_tensor(images) else images_to_tensor(images)
        out = self(x.to(next(self.parameters()).device, torch.float32))
        res = []
        for i in range(x.shape[0]):
            n = int(out["count"][i].argmax()) + 1
            res.append({
                "background": self.backgrounds[int(out["background"][i].argmax())],
                "count": n,
                "shapes": _label_set(out["shapes"][i], self.shapes, n),
                "colors": _label_set(out["colors"][i], self.colors, n),
                "shape_probs": torch.sigmoid(out["shapes"][i]).tolist(),
                "color_probs": torch.sigmoid(out["colors"][i]).tolist(),
            })
        return res

    def save(self, folder) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.config(), indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()},
                  str(folder / "model.safetensors"))

    @classmethod
    def load(cls, folder, device="cpu") -> Judge:
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        m = cls(**cfg)
        sd = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(folder / "model.safetensors")).items()}
        m.load_state_dict(sd)
        return m.to(device).eval()


def _label_set(logits: torch.Tensor, names, k: int) -> list:
    """Sorted distinct labels with probability > 0.5 (at least the best one, at most ``k``)."""
    order = logits.argsort(descending=True).tolist()
    chosen = [j for j in order[:k] if logits[j] > 0] or order[:1]
    return sorted(names[j] for j in chosen)


def judge_targets(scenes, judge_cfg=JUDGE_CONFIG) -> dict:
    """Training targets for the judge for a list of scenes."""
    bg = torch.tensor([judge_cfg["backgrounds"].index(s.background) for s in scenes])
    count = torch.tensor([len(s.objects) - 1 for s in scenes])
    shp = torch.zeros(len(scenes), len(judge_cfg["shapes"]))
    col = torch.zeros(len(scenes), len(judge_cfg["colors"]))
    for i, s in enumerate(scenes):
        for o in s.objects:
            shp[i, judge_cfg["shapes"].index(o.shape)] = 1
            col[i, judge_cfg["colors"].index(o.color)] = 1
    return {"background": bg, "count": count, "shapes": shp, "colors": col}


# ----------------------------------------------------------------------------- helpers
def images_to_tensor(images) -> torch.Tensor:
    """uint8 HxWx3 arrays or PIL images -> float tensor (B, 3, H, W) in [-1, 1]."""
    import numpy as np

    arr = np.stack([np.asarray(im.convert("RGB") if hasattr(im, "convert") else im) for im in images], 0)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_uint8(x: torch.Tensor):
    """(B,3,H,W) in [-1,1] -> uint8 numpy (B,H,W,3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
