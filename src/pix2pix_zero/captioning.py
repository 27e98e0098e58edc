"""Image captioning: the caption is the prompt of the reference branch and the source of the edit.

A captioner is anything with `__call__(image) -> str`. `BlipCaptioner` wraps transformers' BLIP
and loads its weights on first use only, so a run with `--caption` never touches it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-large"


class Captioner(Protocol):
    def __call__(self, image: Image.Image) -> str: ...


class BlipCaptioner:
    """BLIP (`BlipForConditionalGeneration`) unconditional captioning, loaded lazily.

    The authors used LAVIS' BLIP base_coco; transformers' BLIP replaces it (docs/method.md#captioning).
    `prompt` is an optional text prefix for conditional captioning (the diffusers port used
    "a photography of"), stripped from the result.
    """

    def __init__(self, model: str = DEFAULT_CAPTIONER, device: str = "cpu", dtype: Any = None,
                 prompt: str | None = None, max_new_tokens: int = 40) -> None:
        self.model_name, self.device, self.dtype = model, device, dtype
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self._model: Any = None
        self._processor: Any = None

    @property
    def cache_key(self) -> str:
        """What a cached caption depends on: the checkpoint's name and, for a local folder, the name, size and
        modification time of each of its files, so replaced weights never serve stale captions."""
        folder = Path(self.model_name).expanduser()
        if not folder.is_dir():
            return self.model_name
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        stats = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return f"{self.model_name}\n{json.dumps(stats)}"

    def _load(self) -> None:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        from .components import ModelNotAvailableError, _load

        try:
            self._processor = _load(BlipProcessor.from_pretrained, self.model_name, "captioner processor")
            kwargs = {"torch_dtype": self.dtype} if self.dtype is not None else {}
            self._model = _load(BlipForConditionalGeneration.from_pretrained, self.model_name, "captioner", **kwargs)
        except ModelNotAvailableError as error:
            raise ModelNotAvailableError(f"{error}\nOr skip captioning by giving the caption yourself (--caption).") from error
        self._model.to(self.device).eval()

    def __call__(self, image: Image.Image) -> str:
        import torch

        if self._model is None:
            self._load()
        text = [self.prompt] if self.prompt else None
        inputs = self._processor(images=[image.convert("RGB")], text=text, return_tensors="pt").to(self.device)
        if "pixel_values" in inputs and self._model.dtype != torch.float32:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        with torch.no_grad():
            out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        caption = self._processor.batch_decode(out, skip_special_tokens=True)[0].strip()
        if self.prompt and caption.startswith(self.prompt):
            caption = caption[len(self.prompt):].strip()
        return caption
