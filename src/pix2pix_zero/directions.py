"""Edit directions in the text-embedding space (paper §3.2, "Discovering edit directions").

A concept is a bank of sentences; its embedding is the mean text-encoder output over the bank, at
every token position (B, T, D -> 1, T, D). The direction source→target is the difference of the
two means, added to every position of the caption embedding. Concept embeddings are cached on
disk as safetensors, keyed by the model and the exact sentences, so cat→dog and cat→horse share
the cat bank's embedding and a second run computes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import save_file
from torch import Tensor

from .files import TensorFileError, atomic_write, read_tensor_file, safe_name

MAX_DIRECTION_BYTES = 64 * 2**20  # SD 1.x's 77 x 768 direction is 0.24 MB
MAX_DIRECTIONS = 64  # K in a (K, T, D) file
MAX_TOKENS, MAX_WIDTH = 1024, 8192  # T and D: every supported text encoder has 77 tokens and at most 2048 features


def default_cache_dir() -> Path:
    """$PIX2PIX_ZERO_CACHE, else $XDG_CACHE_HOME/pix2pix-zero, else ~/.cache/pix2pix-zero."""
    if os.environ.get("PIX2PIX_ZERO_CACHE"):
        return Path(os.environ["PIX2PIX_ZERO_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "pix2pix-zero"


def make_direction(source_mean: Tensor, target_mean: Tensor) -> Tensor:
    """Δc = mean(target embeddings) − mean(source embeddings); (1, T, D) each."""
    if source_mean.shape != target_mean.shape:
        raise ValueError(
            f"concept embeddings differ in shape: {tuple(source_mean.shape)} vs {tuple(target_mean.shape)}"
        )
    return target_mean - source_mean


def combine_directions(directions: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Σ wᵢ Δcᵢ: several weighted edits applied at once."""
    if not directions or len(directions) != len(weights):
        raise ValueError("combine_directions needs one weight per direction and at least one direction")
    return sum(w * d for w, d in zip(weights, directions))  # type: ignore[return-value]


def sentences_digest(sentences: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sentences).encode()).hexdigest()


@dataclass(frozen=True)
class CachedConcept:
    path: Path
    concept: str
    model: str
    num_sentences: int
    norm: float
    shape: tuple[int, ...]
    model_fingerprint: str = ""
    sentences_sha256: str = ""
    shipped: bool = False  # a read-only embedding that ships with the model


SHIPPED_CONCEPTS_FOLDER = "concepts"  # <model folder>/concepts/: the model's precomputed concept embeddings


class ConceptCache:
    """Mean sentence embeddings on disk: <root>/concepts/<concept>-<key>.safetensors with metadata.

    The key is the model's content fingerprint and the sentences' digest, so an embedding is found again for the
    same weights and sentences wherever the model folder lies. `shipped` folders (a model's own precomputed
    embeddings, same file names) are read first and never written.
    """

    def __init__(
        self, root: str | os.PathLike[str] | None = None, shipped: Sequence[str | os.PathLike[str]] = ()
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.folder = self.root / "concepts"
        self.shipped = [Path(folder) for folder in shipped]

    @staticmethod
    def key(model_fingerprint: str, sentences: Sequence[str]) -> str:
        return hashlib.sha256(f"{model_fingerprint}\n{sentences_digest(sentences)}".encode()).hexdigest()[:16]

    def path_for(self, concept: str, model_fingerprint: str, sentences: Sequence[str]) -> Path:
        """Where this cache writes the embedding: <concept>-<key>.safetensors (shipped copies are named alike)."""
        return self.folder / f"{safe_name(concept, 'concept', 48)}-{self.key(model_fingerprint, sentences)}.safetensors"

    def find(self, concept: str, model_fingerprint: str, sentences: Sequence[str]) -> Path | None:
        """The stored embedding of exactly these sentences on this model: a shipped one first, else the cache's.
        Found by key, whatever the concept was called when it was stored ('circle', 'Circle' or a bank's path)."""
        key = self.key(model_fingerprint, sentences)
        name = self.path_for(concept, model_fingerprint, sentences).name
        for folder in [*self.shipped, self.folder]:
            if (folder / name).is_file():
                return folder / name
            same_key = sorted(folder.glob(f"*-{key}.safetensors")) if folder.is_dir() else []
            if same_key:
                return same_key[0]
        return None

    def has(self, concept: str, model_fingerprint: str, sentences: Sequence[str]) -> bool:
        """Whether `get_or_compute` would read the embedding instead of computing it."""
        return self.find(concept, model_fingerprint, sentences) is not None

    def get_or_compute(
        self,
        concept: str,
        sentences: Sequence[str],
        model_fingerprint: str,
        model_name: str,
        embed: Callable[[Sequence[str]], Tensor],
    ) -> Tensor:
        """The (1, T, D) mean embedding of `sentences`, from the cache or computed by `embed` (N, T, D) and stored."""
        if not sentences:
            raise ValueError(f"concept {concept!r} has no sentences")
        found = self.find(concept, model_fingerprint, sentences)
        if found is not None:
            try:
                return read_concept_file(found)[0]
            except (ValueError, OSError):  # a corrupt cache file is a miss: computed again and replaced below
                pass
        mean = embed(sentences).float().mean(dim=0, keepdim=True)  # (1, T, D): every token position
        self.store(
            self.path_for(concept, model_fingerprint, sentences),
            mean,
            concept,
            sentences,
            model_fingerprint,
            model_name,
        )
        return mean

    @staticmethod
    def store(
        path: Path, mean: Tensor, concept: str, sentences: Sequence[str], model_fingerprint: str, model_name: str
    ) -> Path:
        """Write one mean embedding with the metadata `entries` reads, atomically (a reader never sees half a file)."""
        metadata = {
            "concept": concept,
            "model": model_name,
            "model_fingerprint": model_fingerprint,
            "num_sentences": str(len(sentences)),
            "sentences_sha256": sentences_digest(sentences),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "sentences_preview": json.dumps(list(sentences[:5])),
        }
        tensors = {"mean_embedding": mean.float().contiguous().cpu()}
        return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), True)

    def entries(self, model_fingerprint: str | None = None, include_shipped: bool = False) -> list[CachedConcept]:
        """The stored embeddings (of one model, given its fingerprint), the cache's and, if asked, the shipped ones."""
        folders = [(folder, True) for folder in self.shipped] if include_shipped else []
        found = []
        for folder, shipped in [*folders, (self.folder, False)]:
            for path in sorted(folder.glob("*.safetensors")):
                try:
                    mean, meta = read_concept_file(path)
                    count = int(meta.get("num_sentences", 0))
                except (ValueError, OSError):  # unreadable: skipped here, replaced when the concept is next embedded
                    continue
                entry = CachedConcept(
                    path,
                    meta.get("concept", path.stem),
                    meta.get("model", "?"),
                    count,
                    float(mean.norm()),
                    tuple(mean.shape),
                    meta.get("model_fingerprint", ""),
                    meta.get("sentences_sha256", ""),
                    shipped,
                )
                if model_fingerprint is None or entry.model_fingerprint == model_fingerprint:
                    found.append(entry)
        return found

    def delete(self, concept: str) -> list[Path]:
        """Delete the cache's embeddings of `concept` (shipped ones are read-only and stay)."""
        removed = [entry.path for entry in self.entries() if entry.concept == concept]
        for path in removed:
            path.unlink()
        return removed


def read_concept_file(path: Path) -> tuple[Tensor, dict[str, str]]:
    """A cached (1, T, D) mean embedding and its metadata, checked as `load_direction` checks directions."""
    tensors, meta = read_tensor_file(
        path,
        "cached concept embedding",
        required=("mean_embedding",),
        max_bytes=MAX_DIRECTION_BYTES,
        max_rank=3,
        remedy="delete it; it is made again when needed",
    )
    mean = tensors["mean_embedding"]
    if mean.dim() != 3 or mean.shape[0] != 1 or mean.shape[1] > MAX_TOKENS or mean.shape[2] > MAX_WIDTH:
        raise TensorFileError(f"{path}: embedding shape {tuple(mean.shape)} is not (1, tokens, features); delete it")
    return mean.float(), meta


def save_direction(path: str | os.PathLike[str], direction: Tensor, overwrite: bool = True, **metadata: str) -> Path:
    tensors, meta = {"direction": direction.float().contiguous().cpu()}, {k: str(v) for k, v in metadata.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta), overwrite=overwrite)


def load_direction(path: str | os.PathLike[str], expected_shape: tuple[int, ...] | None = None) -> Tensor:
    """Load a saved direction (ours: key 'direction'; the authors' .pt means are concept embeddings, not directions).

    Checked before use: a safetensors file of at most MAX_DIRECTION_BYTES holding only 'direction', a finite float
    tensor (T, D) or (K, T, D) within MAX_DIRECTIONS, MAX_TOKENS and MAX_WIDTH. Anything else: one-line TensorFileError.
    """
    return read_direction(path, expected_shape)[0]


def read_direction(
    path: str | os.PathLike[str], expected_shape: tuple[int, ...] | None = None
) -> tuple[Tensor, dict[str, str]]:
    """`load_direction`, and the metadata `save_direction` wrote with it (source, target, model, model_fingerprint)."""
    path = Path(path)
    remedy = "build it again with `pix2pix-zero direction build -o`"
    tensors, metadata = read_tensor_file(
        path, "direction", required=("direction",), max_bytes=MAX_DIRECTION_BYTES, max_rank=3, remedy=remedy
    )
    direction = tensors["direction"].float()
    if (
        direction.dim() not in (2, 3)
        or (direction.dim() == 3 and not 1 <= direction.shape[0] <= MAX_DIRECTIONS)
        or not 1 <= direction.shape[-2] <= MAX_TOKENS
        or not 1 <= direction.shape[-1] <= MAX_WIDTH
    ):
        raise TensorFileError(
            f"{path}: direction shape {tuple(direction.shape)} is not (tokens, features) or "
            f"(directions <= {MAX_DIRECTIONS}, tokens, features); {remedy}"
        )
    if expected_shape is not None and tuple(direction.shape[-2:]) != tuple(expected_shape[-2:]):
        raise ValueError(
            f"{path}: direction shape {tuple(direction.shape)} does not fit this model's text embeddings "
            f"{tuple(expected_shape)}; "
            "directions belong to the text encoder they were built with"
        )
    return (direction if direction.dim() == 3 else direction[None]), dict(metadata or {})
