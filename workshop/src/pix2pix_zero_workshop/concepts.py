"""The bundled model's precomputed concept embeddings: <model>/concepts/, one per sentence bank in <model>/sentences/.

`Pix2PixZero` reads them before its cache (found by the model's content fingerprint and the sentences' digest, so
they are used only for exactly these weights and sentences), so a first run embeds nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pix2pix_zero.api import Pix2PixZero
from pix2pix_zero.directions import SHIPPED_CONCEPTS_FOLDER, ConceptCache


def build_shipped_concepts(model_dir: str | Path) -> list[Path]:
    """Embed every sentence bank of the model folder with its own text encoder into <model_dir>/concepts/."""
    model_dir = Path(model_dir)
    with tempfile.TemporaryDirectory() as scratch:  # nothing is cached: the editor only resolves sentences
        editor = Pix2PixZero.from_pretrained(str(model_dir), progress=False, cache_dir=scratch)
    components = editor.components
    shipped = ConceptCache(model_dir)  # its folder is <model_dir>/concepts
    assert shipped.folder == model_dir / SHIPPED_CONCEPTS_FOLDER
    for old in shipped.folder.glob("*.safetensors"):  # embeddings of earlier weights or banks would never match again
        old.unlink()
    written = []
    for bank in sorted((model_dir / "sentences").glob("*.txt")):
        concept = bank.stem
        sentences, origin = editor.sentences(concept)
        if origin != f"bank:{bank.name}":
            raise ValueError(f"{concept!r} resolves to {origin}, not the model's own bank {bank}")
        mean = components.encode_text(sentences).float().mean(dim=0, keepdim=True)
        path = shipped.path_for(concept, components.fingerprint(), sentences)
        written.append(ConceptCache.store(path, mean, concept, sentences, components.fingerprint(), model_dir.name))
    return written
