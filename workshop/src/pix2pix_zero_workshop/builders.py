"""Model configurations and builders for training ShapesWorld (stock diffusers / transformers classes);
the judge itself lives in the product (pix2pix_zero.shapesworld.judge)."""

from __future__ import annotations

import torch

from pix2pix_zero.shapesworld import world as W
from pix2pix_zero.shapesworld.judge import JUDGE_CONFIG, Judge, images_to_tensor, tensor_to_uint8  # noqa: F401  (re-exported for training)

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
            raise ValueError(
                f"block_out_channels {block_out_channels}: need "
                f"{len(VAE_CONFIG['block_out_channels'])} levels (64 px -> 16 px latents)"
            )
        if any(c % cfg["norm_num_groups"] for c in block_out_channels):
            raise ValueError(
                f"block_out_channels {block_out_channels}: each must be a multiple of the "
                f"{cfg['norm_num_groups']} norm groups"
            )
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


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
