import os

os.environ["HF_HUB_OFFLINE"] = "1"

import runpy  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from pix2pix_zero import sentences as S  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "workshop" / "scripts" / "build_sentence_banks.py"

EXPECTED_BANKS = {
    "cat": ("cat",),
    "dog": ("dog",),
    "horse": ("horse",),
    "zebra": ("zebra",),
    "tree": ("tree",),
    "tree_in_autumn": ("tree", "autumn"),
    "person": ("person",),
    "robot": ("robot",),
    "low_poly_cat": ("low-poly", "cat"),
    "crochet_cat": ("crochet", "cat"),
    "cat_wearing_a_hat": ("cat", "hat"),
    "cat_wearing_a_suit": ("cat", "suit"),
    "cat_drinking_boba": ("cat", "boba"),
}


# ------------------------------------------------------------------ shipped banks


def test_import_does_not_pull_torch():
    # load the module file on its own (the package __init__ may legitimately import torch)
    code = (
        "import sys, importlib.util as u; "
        f"spec = u.spec_from_file_location('sentences_alone', {str(Path(S.__file__))!r}); "
        "m = u.module_from_spec(spec); spec.loader.exec_module(m); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("key", sorted(EXPECTED_BANKS))
def test_shipped_bank_loads(key):
    sents = S.load_bank(key)
    assert len(sents) >= 800
    assert len(set(sents)) == len(sents)
    for s in sents:
        low = s.lower()
        for w in EXPECTED_BANKS[key]:
            assert w in low, (key, s)
        assert len(s.split()) <= 22, s
        assert s[0].isupper() and s[-1] in ".!", s


def test_banks_share_non_concept_content():
    # paired banks use the same structure/setting/style per slot: the cat and dog banks
    # start with the same sentence structure most of the time
    cat, dog = S.load_bank("cat"), S.load_bank("dog")
    same = sum(a.split()[0] == b.split()[0] for a, b in zip(cat, dog))
    assert same > 0.7 * len(cat)
    for pair in [("horse", "zebra"), ("tree", "tree in autumn"), ("person", "robot"), ("cat", "crochet cat")]:
        a, b = (S.load_bank(p) for p in pair)
        tails = sum(x.split()[-1] == y.split()[-1] for x, y in zip(a, b))
        assert tails > 0.7 * min(len(a), len(b)), pair


def test_bank_key():
    assert S.bank_key("tree in autumn") == "tree_in_autumn"
    assert S.bank_key("Tree-in-Autumn") == "tree_in_autumn"
    assert S.bank_key("  cat wearing a hat ") == "cat_wearing_a_hat"
    assert S.bank_key("low-poly cat") == "low_poly_cat"
    assert S.bank_key("Cat") == "cat"
    assert S.bank_key("dog.txt") == "dog"
    with pytest.raises(ValueError):
        S.bank_key("  --  ")


def test_list_and_find_banks(tmp_path):
    banks = S.list_banks()
    assert set(EXPECTED_BANKS) <= set(banks)
    assert all(p.parent == S.BANK_DIR for p in banks.values())
    assert S.find_bank("Tree in Autumn") == S.BANK_DIR / "tree_in_autumn.txt"
    assert S.find_bank("unicorn") is None

    extra = tmp_path / "model" / "sentences"
    extra.mkdir(parents=True)
    (extra / "cat.txt").write_text("a custom cat\nanother custom cat\n", encoding="utf-8")
    (extra / "Unicorn.txt").write_text("a unicorn in a field\n", encoding="utf-8")
    banks = S.list_banks([extra, tmp_path / "missing"])
    assert banks["cat"] == extra / "cat.txt"
    assert banks["unicorn"] == extra / "Unicorn.txt"
    assert banks["dog"] == S.BANK_DIR / "dog.txt"
    assert S.load_bank("cat", extra_dirs=[extra]) == ["a custom cat", "another custom cat"]
    assert S.load_bank("unicorn", [extra]) == ["a unicorn in a field"]


def test_unknown_concept_error():
    with pytest.raises(S.UnknownConceptError) as info:
        S.load_bank("flying saucer")
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "flying saucer" in msg and "cat_wearing_a_hat" in msg and "zebra" in msg


# ------------------------------------------------------------- read_sentence_file


def test_read_sentence_file(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("\ufeff# header\n  a cat  \n\n\ta dog\n# a comment\na cat\n   \nA cat\n", encoding="utf-8")
    assert S.read_sentence_file(p) == ["a cat", "a dog", "A cat"]
    assert S.read_sentence_file(str(p)) == ["a cat", "a dog", "A cat"]
    q = tmp_path / "crlf.txt"
    q.write_bytes("une tête de chat\r\nzèbre\r\n".encode())
    assert S.read_sentence_file(q) == ["une tête de chat", "zèbre"]


def test_read_sentence_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        S.read_sentence_file(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="not a regular file"):
        S.read_sentence_file(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no sentences"):
        S.read_sentence_file(empty)
    comments = tmp_path / "comments.txt"
    comments.write_text("# only\n\n   \n# comments\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no sentences"):
        S.read_sentence_file(comments)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ValueError, match="binary"):
        S.read_sentence_file(binary)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("un z\xe8bre\n".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        S.read_sentence_file(latin)
    long = tmp_path / "long.txt"
    long.write_text("ok line\n" + "x" * 1001 + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"long\.txt:2"):
        S.read_sentence_file(long)
    fine = tmp_path / "fine.txt"
    fine.write_text("y" * 1000 + "\n", encoding="utf-8")
    assert len(S.read_sentence_file(fine)[0]) == 1000


# -------------------------------------------------------------- generate_sentences


@pytest.mark.parametrize(
    "word", ["cat", "apple", "cat wearing a hat", "a cat wearing a hat", "tree in autumn", "trees"]
)
def test_generate_sentences_basic(word):
    out = S.generate_sentences(word, num=300, seed=3)
    assert len(out) == 300
    assert len(set(out)) == 300
    assert all(word in s for s in out)
    assert out == S.generate_sentences(word, num=300, seed=3)
    assert out != S.generate_sentences(word, num=300, seed=4)
    assert all(len(s.split()) <= 25 for s in out)
    assert all(s[0].isupper() for s in out)


def test_generate_sentences_defaults_and_variety():
    out = S.generate_sentences("zebra")
    assert len(out) == 500 and len(set(out)) == 500
    starts = {" ".join(s.split()[:2]) for s in out}
    assert len(starts) > 30
    assert any("painting" in s for s in out) and any("photo" in s for s in out)
    assert S.generate_sentences("zebra", num=0) == []
    assert len(S.generate_sentences("zebra", num=3000, seed=1)) == 3000


def test_generate_sentences_articles():
    apple = " ".join(S.generate_sentences("apple", num=400))
    assert "an apple" in apple and " a apple" not in apple and "A apple" not in apple
    cat = " ".join(S.generate_sentences("cat", num=400))
    assert " an cat" not in cat and "An cat" not in cat
    for adj_an in ("an old cat", "an elegant cat", "an unusual cat"):
        assert " a " + adj_an.split(" ", 1)[1] not in cat
    uni = " ".join(S.generate_sentences("unicorn", num=300))
    assert "a unicorn" in uni and "an unicorn" not in uni.lower()
    hour = " ".join(S.generate_sentences("hourglass", num=300))
    assert "an hourglass" in hour and " a hourglass" not in hour
    phrase = S.generate_sentences("a cat wearing a hat", num=300)
    assert not any("a a cat" in s or "an a cat" in s for s in phrase)
    plural = S.generate_sentences("trees", num=300)
    assert not any(" a trees" in s or " an trees" in s or "There is trees" in s for s in plural)
    assert S.indefinite_article("umbrella") == "an" and S.indefinite_article("European") == "a"


def test_generate_sentences_rejects_bad_words():
    for bad in ["", "   ", "\n\t", "x" * 200]:
        with pytest.raises(ValueError):
            S.generate_sentences(bad)
    with pytest.raises(ValueError):
        S.generate_sentences("cat", num=-1)
    with pytest.raises(TypeError):
        S.generate_sentences(None)  # type: ignore[arg-type]


# -------------------------------------------------------------- build script


def test_build_script_reproduces_shipped_banks(tmp_path):
    mod = runpy.run_path(str(BUILD_SCRIPT), run_name="build_sentence_banks")
    assert mod["main"](["--out", str(tmp_path)]) == 0
    built = sorted(p.name for p in tmp_path.glob("*.txt"))
    shipped = sorted(p.name for p in S.BANK_DIR.glob("*.txt"))
    assert built == shipped == sorted(f"{k}.txt" for k in EXPECTED_BANKS)
    for name in built:
        assert (tmp_path / name).read_bytes() == (S.BANK_DIR / name).read_bytes(), name
    assert mod["REQUIRED_WORDS"] == EXPECTED_BANKS
    assert mod["main"](["--out", str(S.BANK_DIR), "--check"]) == 0


# -------------------------------------------------------------- language model


def _tiny_lm(folder: Path, word: str, seq2seq: bool = False) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    words = S.LM_PROMPT.format(word=word).replace(".", " ").replace(":", " ").split()
    words += ["a", "photo", "of", "the", "on", "grass", "sleeping", "cute", "in", "garden", "sunny", "day", word]
    vocab = {"<unk>": 0, "<eos>": 1}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>")
    torch.manual_seed(0)
    if seq2seq:
        cfg = T5Config(
            vocab_size=len(vocab),
            d_model=16,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            eos_token_id=1,
            pad_token_id=1,
            decoder_start_token_id=1,
        )
        model = T5ForConditionalGeneration(cfg)
    else:
        cfg = GPT2Config(
            n_layer=1,
            n_head=2,
            n_embd=16,
            vocab_size=len(vocab),
            n_positions=128,
            bos_token_id=1,
            eos_token_id=1,
            pad_token_id=1,
        )
        model = GPT2LMHeadModel(cfg)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_generate_with_language_model_tiny_gpt2(tmp_path):
    folder = _tiny_lm(tmp_path / "tiny-gpt2", "cat")
    a = S.generate_with_language_model("cat", folder, num=12, seed=1, batch_size=4, max_new_tokens=8)
    b = S.generate_with_language_model("cat", str(folder), num=12, seed=1, batch_size=4, max_new_tokens=8)
    c = S.generate_with_language_model("cat", folder, num=12, seed=2, batch_size=4, max_new_tokens=8)
    assert a == b
    assert a != c
    assert 0 < len(a) <= 12
    assert len(set(a)) == len(a)
    for s in a:
        assert "cat" in s and len(s) > 10
    assert S.generate_with_language_model("cat", folder, num=0) == []


def test_generate_with_language_model_tiny_seq2seq(tmp_path):
    folder = _tiny_lm(tmp_path / "tiny-t5", "zebra", seq2seq=True)
    a = S.generate_with_language_model("zebra", folder, num=6, seed=0, batch_size=3, max_new_tokens=6)
    assert a == S.generate_with_language_model("zebra", folder, num=6, seed=0, batch_size=3, max_new_tokens=6)
    assert 0 < len(a) <= 6 and all("zebra" in s for s in a)


def test_generate_with_language_model_missing_model(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ValueError, match="no-such-model") as info:
        S.generate_with_language_model("cat", missing)
    assert "local folder" in str(info.value)
    with pytest.raises(ValueError, match="local folder"):
        S.generate_with_language_model("cat", "gpt2")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="local folder"):
        S.generate_with_language_model("cat", broken)
