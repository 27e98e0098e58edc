import os
import tempfile

# Before diffusers/transformers are imported: the hub is never contacted in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["PIX2PIX_ZERO_CACHE"] = tempfile.mkdtemp(prefix="pix2pix-zero-test-cache-")  # never the user's cache

import pytest  # noqa: E402
import torch  # noqa: E402
from fakes import build_tiny_pipeline_folder  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_pipeline_folder(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def tiny_vpred_model_dir(tmp_path_factory):
    return build_tiny_pipeline_folder(tmp_path_factory.mktemp("tiny-sd-v"), seed=1, prediction_type="v_prediction")


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PIX2PIX_ZERO_CACHE", str(folder))
    return folder


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    from fakes import write_tiny_clip_tokenizer
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
    )

    folder = tmp_path_factory.mktemp("tiny-clip")
    tokenizer = CLIPTokenizer.from_pretrained(str(write_tiny_clip_tokenizer(folder / "tok")))
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=CLIPTextConfig(
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(tokenizer),
            max_position_embeddings=16,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(str(folder))
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(str(folder))
    return folder
