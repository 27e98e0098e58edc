"""Image captioning: the caption is the prompt of the reference branch and the source of the edit.

A captioner is anything with `__call__(image) -> str`. `BlipCaptioner` wraps transformers' BLIP
and loads its weights on first use only, so a run with `--caption` never touches it.
"""

from __future__ import annotations

import json
import warnings
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

    def __init__(
        self,
        model: str = DEFAULT_CAPTIONER,
        device: str = "cpu",
        dtype: Any = None,
        prompt: str | None = None,
        max_new_tokens: int = 40,
    ) -> None:
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

        from .components import ModelNotAvailableError, load_part

        try:
            self._processor = load_part(
                BlipProcessor.from_pretrained, self.model_name, "captioner processor", "--captioner", None
            )
            kwargs = {"torch_dtype": self.dtype} if self.dtype is not None else {}
            self._model = load_part(
                BlipForConditionalGeneration.from_pretrained,
                self.model_name,
                "captioner",
                "--captioner",
                None,
                **kwargs,
            )
        except ModelNotAvailableError as error:
            raise ModelNotAvailableError(
                f"{error}\nOr skip captioning by giving the caption yourself (--caption)."
            ) from error
        self._model.to(self.device).eval()

    def __call__(self, image: Image.Image) -> str:
        import torch

        if self._model is None:
            self._load()
        text = [self.prompt] if self.prompt else None
        inputs = self._processor(images=[image.convert("RGB")], text=text, return_tensors="pt").to(self.device)
        if "pixel_values" in inputs and self._model.dtype != torch.float32:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        caption, finished = self._generate(inputs)
        if not finished or repeated_phrase(caption):
            # a greedy loop ("... and a red circle in the center and a red circle in the center and ..."): once more
            # with any REPEAT_WORDS-word phrase said only once, and a warning if that still runs out of tokens
            caption, finished = self._generate(inputs, no_repeat_ngram_size=REPEAT_WORDS)
            if not finished:
                warnings.warn(
                    f"the captioner's caption was cut off after {self.max_new_tokens} tokens: '{caption}'; "
                    "give the caption yourself (--caption) if it misdescribes the image",
                    stacklevel=2,
                )
        return caption

    def _generate(self, inputs: Any, **settings: Any) -> tuple[str, bool]:
        """The caption and whether it ended by itself (with the end token, not at max_new_tokens)."""
        import torch

        with torch.no_grad():
            out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, **settings)
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        prompt_length = inputs["input_ids"].shape[-1] if "input_ids" in inputs else 1
        new_tokens = out[0, prompt_length:].tolist()
        finished = bool(eos_ids & set(new_tokens)) or len(new_tokens) < self.max_new_tokens
        caption = self._processor.batch_decode(out, skip_special_tokens=True)[0].strip()
        if self.prompt and caption.startswith(self.prompt):
            caption = caption[len(self.prompt) :].strip()
        return caption, finished


REPEAT_WORDS = 5  # a phrase this long said three times is a loop, not a description (two similar objects say it twice)


def repeated_phrase(caption: str, words: int = REPEAT_WORDS, times: int = 3) -> bool:
    """Whether some run of `words` words occurs `times` times or more in the caption."""
    tokens = caption.lower().split()
    runs = [tuple(tokens[i : i + words]) for i in range(len(tokens) - words + 1)]
    return any(runs.count(run) >= times for run in set(runs))
