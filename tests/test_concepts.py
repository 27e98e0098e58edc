"""Concepts: the bundled model's shipped embeddings are used without embedding, the cache is keyed by the
model's content, not by where its folder lies, and a model that lists the words it knows refuses others."""

import json
import shutil

import pytest
import torch
from PIL import Image

from pix2pix_zero import EditOptions
from pix2pix_zero.api import Pix2PixZero
from pix2pix_zero.components import known_words
from pix2pix_zero.directions import SHIPPED_CONCEPTS_FOLDER, ConceptCache
from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR, world


@pytest.fixture(scope="module")
def bundled():
    return Pix2PixZero.from_pretrained("shapesworld", progress=False)


def test_every_bank_of_the_bundled_model_ships_its_embedding(bundled):
    shipped = {
        entry.concept: entry
        for entry in bundled.concepts.entries(bundled.components.fingerprint(), include_shipped=True)
        if entry.shipped
    }
    banks = sorted(p.stem for p in (BUNDLED_MODEL_DIR / "sentences").glob("*.txt"))
    assert sorted(shipped) == banks and len(banks) >= 17
    for concept in ("circle", "yellow"):  # exactly the bank's sentences on these weights
        sentences, origin = bundled.sentences(concept)
        assert origin == f"bank:{concept}.txt"
        assert bundled.concepts.find(concept, bundled.components.fingerprint(), sentences) == shipped[concept].path


def test_shipped_embeddings_are_used_without_embedding(tmp_path, monkeypatch):
    editor = Pix2PixZero.from_pretrained("shapesworld", progress=False, cache_dir=tmp_path / "cache")

    def no_embedding(*args, **kwargs):
        raise AssertionError("a shipped concept was embedded again")

    monkeypatch.setattr(editor.components, "encode_text", no_embedding)
    mean, origin, count = editor.concept_embedding("circle")
    assert origin == "bank:circle.txt" and count == 750 and mean.shape == (1, 32, 128)
    editor.concept_embedding("Square")  # found by key, whatever the spelling
    assert not (tmp_path / "cache").exists()  # nothing written: the user's cache stays empty


def test_shipped_embedding_equals_a_fresh_one(bundled, tmp_path):
    sentences, _ = bundled.sentences("heart")
    fresh = bundled.components.encode_text(sentences).float().mean(dim=0, keepdim=True)
    shipped, _, _ = bundled.concept_embedding("heart")
    torch.testing.assert_close(shipped.cpu(), fresh, rtol=1e-5, atol=1e-5)


def test_a_stale_shipped_set_is_not_used(tmp_path):
    """Other sentences (or other weights) have another key: the shipped file is ignored and the cache computes."""
    cache = ConceptCache(tmp_path / "cache", shipped=[BUNDLED_MODEL_DIR / SHIPPED_CONCEPTS_FOLDER])
    calls = []
    embed = lambda s: calls.append(len(s)) or torch.ones(len(s), 2, 3)  # noqa: E731
    mean = cache.get_or_compute("circle", ["a circle", "one circle"], "another-model", "m", embed)
    assert calls == [2] and torch.equal(mean, torch.ones(1, 2, 3))
    assert [e.path for e in cache.entries()] == [cache.path_for("circle", "another-model", ["a circle", "one circle"])]
    cache.delete("circle")
    assert len(list((BUNDLED_MODEL_DIR / SHIPPED_CONCEPTS_FOLDER).glob("circle-*.safetensors"))) == 1  # read-only


def test_cache_key_does_not_depend_on_the_model_path(tmp_path):
    copy = tmp_path / "second-checkout"
    shutil.copytree(BUNDLED_MODEL_DIR, copy, ignore=shutil.ignore_patterns(SHIPPED_CONCEPTS_FOLDER))
    cache_dir = tmp_path / "cache"
    first = Pix2PixZero.from_pretrained("shapesworld", progress=False, cache_dir=cache_dir)
    second = Pix2PixZero.from_pretrained(str(copy), progress=False, cache_dir=cache_dir)
    assert first.components.model_id != second.components.model_id
    assert first.components.fingerprint() == second.components.fingerprint()
    sentences = ["a red circle", "a blue circle"]
    computed = []
    for editor in (first, second):
        editor.concepts.get_or_compute(
            "two circles",
            sentences,
            editor.components.fingerprint(),
            editor.components.model_id,
            lambda s, e=editor: computed.append(1) or e.components.encode_text(s),
        )
    assert len(computed) == 1  # the second checkout reuses the first one's embedding
    assert [e.concept for e in ConceptCache(cache_dir).entries()] == ["two circles"]  # no duplicate


def test_the_bundled_model_lists_the_words_of_its_world(bundled):
    assert bundled.known_words == frozenset(world.world_words())


def test_words_the_bundled_model_never_saw_are_refused_before_any_work(bundled, tmp_path, monkeypatch):
    def inverted(*args, **kwargs):
        raise AssertionError("the image was inverted before the words were checked")

    monkeypatch.setattr(bundled, "invert", inverted)
    scene = Image.new("RGB", (64, 64), "white")
    for source, target, options, unknown in [
        ("circle", "dog", EditOptions(), "'dog'"),
        ("cat", "square", EditOptions(), "'cat'"),
        ("circle", "square", EditOptions(caption="a red ball on a lawn"), "'ball', 'lawn'"),
        ("circle", "square", EditOptions(extra=[("red", "crimson", 0.5)]), "'crimson'"),
        ("círculo", "square", EditOptions(), "'círculo'"),
    ]:
        with pytest.raises(ValueError, match=f"trained on a few words only and {unknown} .* it knows: a an and"):
            bundled.edit(scene, source, target, options)
    with pytest.raises(ValueError, match="'puppy'"):
        bundled.generate_and_edit("a small puppy on a white background", "circle", "square")
    with pytest.raises(ValueError, match="'zebra'"):
        bundled.sentences("zebra")
    with pytest.raises(ValueError, match="'ball'"):
        Pix2PixZero.invert(bundled, scene, caption="a red ball")  # the method itself, not the stand-in above
    # phrases of known words pass; a sentence file's sentences are the user's own
    bundled.check_concepts("red circle", ["blue square"], texts=["a large red circle in the center"])
    (tmp_path / "hound.txt").write_text("a photo of a hound\n")
    bundled.check_concepts(str(tmp_path / "hound.txt"), ["square"])


def test_a_model_without_a_word_list_takes_any_word_and_a_bad_list_is_an_error(tiny_model_dir, tmp_path):
    editor = Pix2PixZero.from_pretrained(str(tiny_model_dir), progress=False)
    assert editor.known_words is None
    editor.check_concepts("zebra", ["okapi"], texts=["a zebra in a field"])
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "pix2pix_zero.json").write_text(json.dumps({"inputs": {"words": "zebra okapi"}}))
    with pytest.raises(ValueError, match="inputs.words must be a list of words"):
        known_words(folder)
    (folder / "pix2pix_zero.json").write_text(json.dumps({"inputs": {"words": ["Zebra", "okapi"]}}))
    assert known_words(folder) == {"zebra", "okapi"}
