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
