"""Offline CLIP (BPE) and BERT (WordPiece) tokenizers for ShapesWorld.

The CLIP tokenizer follows the original layout: the 256 byte-level symbols,
the same 256 symbols with the end-of-word marker ``</w>``, then one entry per
BPE merge, then ``<|startoftext|>`` and ``<|endoftext|>``.  Merges are learnt
here by plain BPE on the world's words (plus a few common English words), so
every world word is a single token while any other text still tokenizes
(down to single characters in the worst case).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

from pix2pix_zero.shapesworld.world import world_words

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MODEL_MAX_LENGTH = 32

# A few frequent words outside the world so that prompts such as "a photo of a
# cat" do not fall apart into characters.  They carry no meaning for the models.
_EXTRA_WORDS = (
    "is there this that it its of to for by from one two three object objects shape shapes "
    "color colour colors scene bright dark light big tiny round"
).split()


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def learn_bpe(words: list[str]) -> list[tuple[str, str]]:
    """Learn BPE merges until every word is one symbol (ties broken lexicographically)."""
    segs = {w: list(w[:-1]) + [w[-1] + "</w>"] for w in sorted(set(words))}
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter = Counter()
        for s in segs.values():
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += 1
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0][0] + " " + kv[0][1]]))[0]
        merges.append(best)
        a, b = best
        for w, s in segs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            segs[w] = out
    return merges


def build_clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    words = world_words() + _EXTRA_WORDS
    merges = learn_bpe(words)
    base = list(bytes_to_unicode().values())
    vocab_list = base + [c + "</w>" for c in base]
    seen = set(vocab_list)
    for a, b in merges:
        t = a + b
        if t not in seen:
            vocab_list.append(t)
            seen.add(t)
    vocab_list += [BOS, EOS]
    return {t: i for i, t in enumerate(vocab_list)}, merges


def write_clip_tokenizer(folder: str | Path) -> Path:
    """Write ``vocab.json``, ``merges.txt`` and the tokenizer configs; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_clip_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    cfg = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MODEL_MAX_LENGTH,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "add_prefix_space": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}, indent=2)
    )
    return folder


def clip_vocab_size() -> int:
    return len(build_clip_vocab()[0])


def load_clip_tokenizer(folder: str | Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(folder))


# --------------------------------------------------------------------------- BERT (captioner)
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


def build_bert_vocab() -> list[str]:
    import string

    toks = list(BERT_SPECIALS)
    toks += sorted(set(world_words()) | set(_EXTRA_WORDS))
    for c in string.ascii_lowercase + string.digits + string.punctuation:
        if c not in toks:
            toks.append(c)
    for c in string.ascii_lowercase + string.digits:
        toks.append("##" + c)
    return toks


def write_bert_tokenizer(folder: str | Path) -> Path:
    """WordPiece vocab for the BLIP captioner (``[DEC]`` is the decoder's BOS token)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(build_bert_vocab()) + "\n")
    cfg = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": True,
        "model_max_length": 40,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "bos_token": "[DEC]",
        "clean_up_tokenization_spaces": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))
    (folder / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "unk_token": "[UNK]",
                "sep_token": "[SEP]",
                "pad_token": "[PAD]",
                "cls_token": "[CLS]",
                "mask_token": "[MASK]",
                "bos_token": "[DEC]",
            },
            indent=2,
        )
    )
    return folder
