"""The ShapesWorld tokenizers the workshop writes into the bundled model."""

import os

import numpy as np

os.environ["HF_HUB_OFFLINE"] = "1"

from pix2pix_zero_workshop.tokenizer import MODEL_MAX_LENGTH, write_bert_tokenizer, write_clip_tokenizer

from pix2pix_zero import shapesworld as sw
from pix2pix_zero.shapesworld import world as W


def test_clip_tokenizer_round_trips_world_captions(tmp_path):
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    folder = write_clip_tokenizer(tmp_path / "tok")
    slow = CLIPTokenizer.from_pretrained(str(folder))
    fast = CLIPTokenizerFast.from_pretrained(str(folder))
    assert slow.model_max_length == MODEL_MAX_LENGTH >= 24
    vocab = slow.get_vocab()
    for c in "abcdefghijklmnopqrstuvwxyz":
        assert c in vocab and c + "</w>" in vocab
    for w in W.world_words():
        assert slow.tokenize(w) == [w + "</w>"], w
    rng = np.random.default_rng(1)
    scene_rng = np.random.default_rng(2)
    for sc in [sw.sample_scene(scene_rng) for _ in range(100)]:
        for cap in [sw.canonical_caption(sc)] + sw.captions(sc, rng, 2):
            toks = slow.tokenize(cap)
            assert toks == [w + "</w>" for w in cap.split()], cap
            ids = slow(cap).input_ids
            assert ids == fast(cap).input_ids
            assert len(ids) <= slow.model_max_length
            assert slow.decode(ids, skip_special_tokens=True).strip() == cap
    # words outside the world still tokenize (into pieces), nothing becomes unknown
    toks = slow.tokenize("a zebra")
    assert "".join(t.replace("</w>", " ") for t in toks).split() == ["a", "zebra"]


def test_bert_tokenizer_for_the_captioner(tmp_path):
    from transformers import BertTokenizer

    tok = BertTokenizer.from_pretrained(str(write_bert_tokenizer(tmp_path / "bert")))
    cap = "a small red circle in the top left on a striped gray background"
    assert tok.tokenize(cap) == cap.split()
    assert tok.decode(tok(cap).input_ids, skip_special_tokens=True) == cap
    assert tok.unk_token_id not in tok("a zebra").input_ids
