"""Sentence banks and sentence generators for edit directions.

pix2pix-zero computes an edit direction A -> B as the mean text-encoder
embedding of many sentences that contain B minus the same mean for A.  This
module ships hand-built banks (``data/sentences/<key>.txt``, produced by
``scripts/build_sentence_banks.py``), reads user-provided sentence files, and
offers two generators for concepts that have no bank:

* :func:`generate_sentences` -- an offline, deterministic template generator
  that works for any word or noun phrase (pure Python, no model needed);
* :func:`generate_with_language_model` -- samples captions from a *local*
  causal or seq2seq language model through ``transformers`` (imported lazily),
  prompted the way the paper's authors suggested.

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BANK_DIR",
    "LM_PROMPT",
    "MAX_LINE_CHARS",
    "MAX_WORD_CHARS",
    "UnknownConceptError",
    "bank_key",
    "list_banks",
    "find_bank",
    "load_bank",
    "read_sentence_file",
    "generate_sentences",
    "generate_with_language_model",
]

#: Folder holding the sentence banks shipped with the package.
BANK_DIR: Path = Path(__file__).resolve().parent / "data" / "sentences"

#: Prompt used by :func:`generate_with_language_model` (the paper authors' prompt).
LM_PROMPT = (
    "Provide a caption for images containing a {word}. The captions should be in "
    "English and should be no longer than 150 characters. Caption:"
)

#: Lines longer than this in a sentence file are rejected (not a sentence list).
MAX_LINE_CHARS = 1000

#: Longest word / phrase accepted by the generators.
MAX_WORD_CHARS = 80

_BANK_SUFFIX = ".txt"


class UnknownConceptError(ValueError):
    """No sentence bank exists for the requested concept."""

    def __init__(self, concept: str, available: Sequence[str]):
        self.concept = concept
        self.available = sorted(available)
        listing = ", ".join(self.available) if self.available else "(none)"
        super().__init__(
            f"no sentence bank for concept {concept!r} (key {bank_key_or_raw(concept)!r}). "
            f"Available concepts: {listing}. Pass a sentence file instead, or generate "
            f"sentences with generate_sentences()/generate_with_language_model()."
        )


# --------------------------------------------------------------------------- banks


def bank_key(concept: str) -> str:
    """Normalise a concept name into a bank key.

    ``"tree in autumn"``, ``"Tree-in-Autumn"`` -> ``"tree_in_autumn"``;
    ``"cat wearing a hat"`` -> ``"cat_wearing_a_hat"``; ``"low-poly cat"`` ->
    ``"low_poly_cat"``.  A trailing ``.txt`` is ignored.
    """
    if not isinstance(concept, str):
        raise TypeError(f"concept must be a string, got {type(concept).__name__}")
    text = concept.strip()
    if text.lower().endswith(_BANK_SUFFIX):
        text = text[: -len(_BANK_SUFFIX)]
    key = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    if not key:
        raise ValueError(f"concept name {concept!r} is empty after normalisation")
    return key


def bank_key_or_raw(concept: str) -> str:
    try:
        return bank_key(concept)
    except (TypeError, ValueError):
        return str(concept)


def list_banks(extra_dirs: Sequence[Path] = ()) -> dict[str, Path]:
    """Map concept key -> bank file.

    ``extra_dirs`` are searched first, in order, so a model folder that ships
    its own banks (``<model>/sentences/``) overrides the packaged ones.
    Missing extra folders are ignored.
    """
    if isinstance(extra_dirs, (str, Path)):
        extra_dirs = [extra_dirs]
    found: dict[str, Path] = {}
    for folder in [*map(Path, extra_dirs), BANK_DIR]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{_BANK_SUFFIX}")):
            if not path.is_file():
                continue
            try:
                key = bank_key(path.stem)
            except ValueError:
                continue
            found.setdefault(key, path)
    return dict(sorted(found.items()))


def find_bank(concept: str, extra_dirs: Sequence[Path] = ()) -> Path | None:
    """Return the bank file for ``concept`` or ``None``."""
    return list_banks(extra_dirs).get(bank_key(concept))


def load_bank(concept: str, extra_dirs: Sequence[Path] = ()) -> list[str]:
    """Load the sentences of a bank; :class:`UnknownConceptError` if there is none."""
    banks = list_banks(extra_dirs)
    path = banks.get(bank_key(concept))
    if path is None:
        raise UnknownConceptError(concept, list(banks))
    return read_sentence_file(path)


def read_sentence_file(path: str | Path) -> list[str]:
    """Read one sentence per line.

    Lines are stripped; blank lines and lines starting with ``#`` are skipped;
    duplicates are removed keeping the first occurrence.  Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for a folder,
    a binary / non-UTF-8 file, a line over :data:`MAX_LINE_CHARS` characters or
    a file without any sentence.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sentence file not found: {path}")
    if not path.is_file():
        raise ValueError(f"sentence file {path} is not a regular file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise ValueError(f"sentence file {path} looks binary (contains NUL bytes); expected UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"sentence file {path} is not valid UTF-8 text (byte {exc.start}): {exc.reason}") from None
    sentences: list[str] = []
    seen: set[str] = set()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(
                f"{path}:{lineno}: line is {len(line)} characters long (limit {MAX_LINE_CHARS}); "
                "expected one short sentence per line"
            )
        if line not in seen:
            seen.add(line)
            sentences.append(line)
    if not sentences:
        raise ValueError(f"sentence file {path} contains no sentences (only blank lines or # comments)")
    return sentences


# ------------------------------------------------------------ template generator


def _check_word(word: str) -> str:
    if not isinstance(word, str):
        raise TypeError(f"word must be a string, got {type(word).__name__}")
    clean = " ".join(word.split())
    if not clean:
        raise ValueError("word must be a non-empty word or phrase")
    if len(clean) > MAX_WORD_CHARS:
        raise ValueError(
            f"word is {len(clean)} characters long (limit {MAX_WORD_CHARS}); pass a short noun or noun phrase"
        )
    if any(ord(ch) < 32 for ch in clean):
        raise ValueError("word must not contain control characters")
    return clean


# consonant-sounding vowel starts ("a unicorn", "a one-eyed ...") and
# vowel-sounding consonant starts ("an hour", "an honest ...")
_A_PREFIXES = ("uni", "use", "usu", "uti", "ute", "uku", "ura", "uro", "eu", "ewe", "one", "once", "ouija")
_AN_PREFIXES = ("hour", "honest", "honor", "honour", "heir", "herb")
_ARTICLES = ("a ", "an ", "the ", "some ", "my ", "two ", "three ", "several ", "many ")


def indefinite_article(phrase: str) -> str:
    """Return ``"a"`` or ``"an"`` for ``phrase`` (English spelling heuristics)."""
    first = phrase.strip().split(" ")[0].lower().lstrip("\"'(")
    if not first:
        return "a"
    if first.startswith(_AN_PREFIXES):
        return "an"
    if first.startswith(_A_PREFIXES):
        return "a"
    if first[0] in "aeiou":
        return "an"
    if len(first) == 1 and first in "fhlmnrsx":  # "an X-ray", "an f-stop"
        return "an"
    if first[0].isdigit():
        return "an" if first[0] == "8" or first.startswith(("11", "18")) else "a"
    return "a"


def _has_determiner(phrase: str) -> bool:
    return phrase.lower().startswith(_ARTICLES)


_POSTMODIFIER_STARTS = {
    "in",
    "on",
    "at",
    "with",
    "of",
    "by",
    "under",
    "near",
    "from",
    "for",
    "without",
    "and",
    "made",
    "wearing",
    "holding",
    "drinking",
    "eating",
    "sitting",
    "standing",
    "riding",
    "playing",
}
_IRREGULAR_PLURALS = {"people", "children", "men", "women", "mice", "geese", "feet", "teeth", "oxen", "cacti"}


def _head_noun(phrase: str) -> str:
    words = phrase.lower().split(" ")
    for i, w in enumerate(words[1:], start=1):
        if w in _POSTMODIFIER_STARTS or (w.endswith("ing") and len(w) > 4):
            return words[i - 1]
    return words[-1]


def _looks_plural(phrase: str) -> bool:
    head = _head_noun(phrase).strip(".,;:!?")
    if head in _IRREGULAR_PLURALS:
        return True
    return len(head) > 3 and head.endswith("s") and not head.endswith(("ss", "us", "is", "ys", "os", "ics"))


_GEN_MEDIA = [
    "a photo",
    "a close-up photo",
    "a black and white photo",
    "a candid photo",
    "a blurry photo",
    "a vintage photograph",
    "a snapshot",
    "a professional photograph",
    "a phone photo",
    "a film photograph",
    "a wide shot",
    "a macro shot",
    "an oil painting",
    "a watercolor painting",
    "an acrylic painting",
    "a pencil sketch",
    "a charcoal drawing",
    "an ink drawing",
    "a digital illustration",
    "a 3D render",
    "a cartoon drawing",
    "a children's book illustration",
    "an impressionist painting",
    "a minimalist poster",
    "a pastel drawing",
    "a detailed engraving",
]
_GEN_ADJ = [
    "beautiful",
    "small",
    "large",
    "lovely",
    "striking",
    "colorful",
    "lone",
    "old",
    "ordinary",
    "detailed",
    "elegant",
    "charming",
    "quiet",
    "bright",
    "simple",
    "unusual",
    "fine",
    "familiar",
    "tiny",
    "huge",
    "pretty",
    "remarkable",
]
_GEN_SETTINGS = [
    "in a park",
    "on a city street",
    "in a garden",
    "on a beach",
    "in a forest",
    "in a meadow",
    "in a living room",
    "in a kitchen",
    "on a wooden table",
    "by a window",
    "near a river",
    "in the snow",
    "on a hillside",
    "in a field of flowers",
    "in front of a brick wall",
    "on a rooftop",
    "in a small village",
    "at the edge of a lake",
    "in a busy market",
    "in a museum",
    "in the desert",
    "on a mountain trail",
    "in a backyard",
    "on a porch",
    "in a studio",
    "under a bridge",
    "next to a fence",
    "in an empty room",
    "by the sea",
    "in a courtyard",
    "on a country road",
    "in a greenhouse",
    "at a train station",
    "in the countryside",
    "in a library",
    "on a sidewalk",
    "near an old barn",
    "in a city square",
]
_GEN_LIGHT = [
    "at sunset",
    "at sunrise",
    "at golden hour",
    "at night",
    "at dusk",
    "in the morning",
    "in soft light",
    "in bright sunlight",
    "on a cloudy day",
    "on a rainy day",
    "in the fog",
    "under a blue sky",
    "in warm light",
    "in dramatic lighting",
    "under neon lights",
    "in the shade",
    "by candlelight",
    "in the late afternoon",
]
_GEN_VIEW = [
    "from above",
    "from below",
    "from the side",
    "from a low angle",
    "from a distance",
    "up close",
    "from behind",
    "in profile",
    "from across the street",
    "through a window",
]
_GEN_CAMERA = [
    "shot on 35mm film",
    "with a shallow depth of field",
    "taken with a telephoto lens",
    "in high resolution",
    "with a blurred background",
    "in sharp focus",
    "with a wide-angle lens",
    "in muted colors",
    "in vivid colors",
    "with soft shadows",
    "in black and white",
]
_GEN_VERB_I = [
    "I photographed",
    "We spotted",
    "I found",
    "Someone painted",
    "She sketched",
    "He photographed",
    "We saw",
    "I drew",
    "They filmed",
    "My friend took a picture of",
]
_GEN_BACKDROPS = [
    "the sea",
    "a brick wall",
    "a mountain range",
    "an old barn",
    "a city skyline",
    "a dark forest",
    "a flower garden",
    "a cloudy sky",
    "a busy street",
    "a wooden fence",
    "a rolling hill",
    "a lake",
]
_GEN_FEEL = ["peaceful", "cozy", "moody", "cheerful", "calm", "dreamy", "quiet", "nostalgic", "gloomy", "bright"]

# (template, needs_subject_first) -- {np} is the noun phrase with its article.
_GEN_TEMPLATES = [
    "{Media} of {np} {setting}.",
    "{Media} of {np} {setting}, {light}.",
    "{Media} of {np}, {camera}.",
    "{Media} of {np} seen {view}.",
    "{NP} {setting} {light}.",
    "{NP} {setting}, {camera}.",
    "{NP} seen {view} {setting}.",
    "{NP} photographed {view} {light}.",
    "{Verb} {np} {setting} {light}.",
    "{Verb} {np} {setting}.",
    "There is {np} {setting}.",
    "There is {np} {setting} {light}.",
    "Close-up of {np} {setting}.",
    "Portrait of {np} {light}, {camera}.",
    "A {feel} scene with {np} {setting}.",
    "A {feel} picture of {np} {setting} {light}.",
    "In this picture, {np} is {setting} {light}.",
    "Look at {np} {setting}!",
    "{Media} showing {np} {setting} {light}.",
    "{Media} showing {np}, {view}.",
    "Just {np} {setting} {light}.",
    "{NP}, {setting}, {camera}.",
    "{Media} with {np} in the foreground and {backdrop} behind it.",
    "Wallpaper of {np} {setting}, {light}.",
]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def generate_sentences(word: str, num: int = 500, seed: int = 0) -> list[str]:
    """Generate ``num`` distinct caption-like sentences containing ``word``.

    Works offline for any noun or noun phrase (``"cat"``, ``"apple"``,
    ``"cat wearing a hat"``, ``"a cat wearing a hat"``).  The word appears
    verbatim (internal whitespace collapsed) in every sentence; an article
    ``a``/``an`` is added when the phrase has none and does not look plural.
    Deterministic for a given ``seed`` (uses only ``random.Random(seed)``).
    """
    word = _check_word(word)
    if isinstance(num, bool) or not isinstance(num, int) or num < 0:
        raise ValueError(f"num must be a non-negative integer, got {num!r}")
    rng = random.Random(seed)
    has_det = _has_determiner(word)
    plural = not has_det and _looks_plural(word)
    # adjectives only go between an article we add and the word
    can_adj = not has_det and not plural
    templates = list(_GEN_TEMPLATES)
    if has_det or plural:
        # subject-first templates would capitalise the word itself (not verbatim)
        templates = [t for t in templates if not t.startswith("{NP}")]

    def noun_phrase() -> str:
        if has_det or plural:
            return word
        if can_adj and rng.random() < 0.45:
            adj = rng.choice(_GEN_ADJ)
            return f"{indefinite_article(adj)} {adj} {word}"
        return f"{indefinite_article(word)} {word}"

    out: list[str] = []
    seen: set[str] = set()
    max_attempts = 50 * num + 1000
    attempts = 0
    while len(out) < num and attempts < max_attempts:
        attempts += 1
        np_ = noun_phrase()
        media = rng.choice(_GEN_MEDIA)
        setting = rng.choice(_GEN_SETTINGS)
        fields = {
            "np": np_,
            "NP": _cap(np_),
            "media": media,
            "Media": _cap(media),
            "setting": setting,
            "backdrop": rng.choice(_GEN_BACKDROPS),
            "light": rng.choice(_GEN_LIGHT),
            "view": rng.choice(_GEN_VIEW),
            "camera": rng.choice(_GEN_CAMERA),
            "Verb": rng.choice(_GEN_VERB_I),
            "feel": rng.choice(_GEN_FEEL),
        }
        template = rng.choice(templates)
        if template.startswith("A {feel}"):
            template = template.replace("A {feel}", _cap(indefinite_article(fields["feel"])) + " {feel}")
        if plural:
            template = template.replace(" is {setting}", " are {setting}").replace("There is ", "There are ")
        sentence = template.format(**fields)
        if word not in sentence:  # defensive: never emit a sentence without the word
            continue
        if sentence not in seen:
            seen.add(sentence)
            out.append(sentence)
    return out


# --------------------------------------------------------------- language model


def _load_lm(model: str | Path, device: str):
    try:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        raise ImportError("generate_with_language_model needs the 'transformers' package") from exc

    hint = (
        f"could not load language model {str(model)!r} offline; pass a local folder that holds "
        "a transformers causal or seq2seq model and its tokenizer (saved with save_pretrained)"
    )
    path = Path(model)
    if not path.is_dir():
        raise ValueError(f"{hint}: no such folder")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        lm = cls.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{hint} ({type(exc).__name__}: {exc})") from exc
    lm.to(device)
    lm.eval()
    return config, tokenizer, lm


def _clean_caption(text: str) -> str:
    text = text.strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            text = line
            break
    else:
        return ""
    text = text.strip().strip("\"'“”").strip()
    return " ".join(text.split())


def generate_with_language_model(
    word: str,
    model: str | Path,
    num: int = 200,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "cpu",
    max_new_tokens: int = 40,
) -> list[str]:
    """Sample up to ``num`` captions for ``word`` from a local language model.

    ``model`` must be a local folder saved with ``save_pretrained`` (causal LM
    such as GPT-2 / OPT / Llama, or seq2seq such as T5 / FLAN-T5, chosen from
    the config's ``is_encoder_decoder``).  The prompt is :data:`LM_PROMPT`.
    Sampling (top-k 50, top-p 0.95) runs transformers' ``generate`` under a
    forked RNG seeded from ``seed``, so results are deterministic on a given device.  Only the first
    line of each sample is kept; lines of 10 characters or fewer are dropped;
    ``", {word}"`` is appended to a caption that lacks the word verbatim
    (case-sensitive, so every caption contains it); duplicates
    are removed.  Stops after ``num`` captions or a bounded number of batches,
    so fewer than ``num`` may be returned.
    """
    word = _check_word(word)
    if isinstance(num, bool) or not isinstance(num, int) or num < 0:
        raise ValueError(f"num must be a non-negative integer, got {num!r}")
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size and max_new_tokens must be positive")
    config, tokenizer, lm = _load_lm(model, device)
    if num == 0:
        return []

    import torch

    prompt = LM_PROMPT.format(word=word)
    enc = tokenizer(prompt, return_tensors="pt")
    prompt_ids = enc["input_ids"].to(device)
    if prompt_ids.shape[-1] == 0:
        raise ValueError(f"tokenizer of {model!s} produced no tokens for the prompt")
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))

    out: list[str] = []
    seen: set[str] = set()
    max_batches = max(4, 3 * math.ceil(num / batch_size))
    with torch.inference_mode():
        for batch_index in range(max_batches):
            batch_seed = int(seed) * 100_003 + batch_index
            new_tokens = _sample_batch(lm, tokenizer, prompt_ids, batch_size, max_new_tokens, batch_seed, is_seq2seq)
            for row in new_tokens:
                text = _clean_caption(tokenizer.decode(row, skip_special_tokens=True))
                if len(text) <= 10:
                    continue
                if word not in text:
                    text = f"{text}, {word}"
                if text not in seen:
                    seen.add(text)
                    out.append(text)
                    if len(out) >= num:
                        return out
    return out


def _sample_batch(lm, tokenizer, prompt_ids, batch_size: int, max_new_tokens: int, seed: int, is_seq2seq: bool):
    """``batch_size`` sampled continuations of the prompt (top-k 50, top-p 0.95) as new-token id rows.

    transformers' ``generate`` takes no generator, so the global RNG is forked and seeded around it:
    deterministic for a seed, and the caller's RNG state is left untouched.
    """
    import torch

    devices = [prompt_ids.device] if prompt_ids.device.type == "cuda" else []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        out = lm.generate(
            input_ids=prompt_ids,
            attention_mask=torch.ones_like(prompt_ids),
            do_sample=True,
            top_k=50,
            top_p=0.95,
            max_new_tokens=max_new_tokens,
            num_return_sequences=batch_size,
            pad_token_id=pad_id,
        )
    return out if is_seq2seq else out[:, prompt_ids.shape[-1] :]
