"""Tiny random-init models of every family (mBERT, XLM-R, mT5 and the decoder-only LLMs) with tokenizers trained
on the synthetic world.

The LLMs get the two tokenizer kinds real ones have: byte-level BPE (Llama 3, Qwen) and SentencePiece-style BPE
with ``▁`` word marks and byte fallback (Llama 2, Mistral, Gemma).

They are saved with ``save_pretrained`` (safetensors) and load back through exactly the path used for real
checkpoints (``xlray.models.load_model``). Each family of ``xlray.models.FAMILIES`` has one here, in ``SAVERS``.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from xlray.families import FAMILY_NAMES
from xlray.outputs import atomic_dir
from xlray.world.wordpiece import wordpiece_vocab

FAMILIES = FAMILY_NAMES


def bert_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A cased WordPiece tokenizer (accents kept) with [CLS] ... [SEP], like multilingual BERT's; its vocabulary
    is learnt deterministically (``xlray.world.wordpiece``), not by `tokenizers`' trainer."""
    normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts = Counter(w for text in texts for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(wordpiece_vocab(counts, vocab_size, specials), unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    tok.add_special_tokens(specials)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def unigram_tokenizer(texts: Iterable[str], vocab_size: int, specials: list[str], template: str) -> Tokenizer:
    """A SentencePiece-style Unigram tokenizer (Metaspace ▁ word marks), as XLM-R and mT5 use, the same in every
    process (:func:`canonical_unigram`).

    It has no normaliser: XLMRobertaTokenizer and T5Tokenizer (transformers 5) rebuild their backend when they
    load and keep a normaliser only if it is SentencePiece's precompiled one, so an NFKC normaliser would be gone
    on reload and every decomposed diacritic of the world <unk> (measured: 16% of its sentences). It is trained on
    the text as it will see it."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    canonical_unigram(tok, specials)
    ids = [(s, tok.token_to_id(s)) for s in specials if s in template]
    pair = template.replace("$A", "$A $B:1") if template.startswith("<s>") else "$A $B:1 </s>:1"
    tok.post_processor = processors.TemplateProcessing(single=template, pair=pair, special_tokens=ids)
    return tok


def canonical_unigram(tok: Tokenizer, specials: list[str]) -> None:
    """Give a trained Unigram model's pieces one fixed order and score: the specials, then by score, ties by the
    piece, each score rounded to 1e-9. The trainer finds the same pieces in every process, but sums their scores
    and orders equal ones in hash-map order (measured: four processes, four orders, scores apart in the last bit),
    and the ids decide the random-init embeddings."""
    model = json.loads(tok.to_str())["model"]
    head, rest = model["vocab"][: len(specials)], model["vocab"][len(specials) :]
    if [piece for piece, _ in head] != specials:
        raise AssertionError(f"the Unigram trainer did not put the specials first: {head}")
    scored = sorted(((p, round(s, 9)) for p, s in rest), key=lambda ps: (-ps[1], ps[0]))
    tok.model = models.Unigram([(p, s) for p, s in head] + scored, unk_id=specials.index("<unk>"), byte_fallback=False)


def save_bert(texts: list[str], out: Path, hidden: int, layers: int, vocab: int, seed: int) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    tok = BertTokenizer(tokenizer_object=bert_tokenizer(texts, vocab), do_lower_case=False)
    tok.model_max_length = 128
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)


def save_xlmr(texts: list[str], out: Path, hidden: int, layers: int, vocab: int, seed: int) -> None:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    raw = unigram_tokenizer(texts, vocab, specials, "<s> $A </s>")
    tok = XLMRobertaTokenizer(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    tok.model_max_length = 128
    torch.manual_seed(seed)
    cfg = XLMRobertaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        intermediate_size=2 * hidden,
        max_position_embeddings=130,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    XLMRobertaModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)


# As many as mT5 has. A row of at most 128 tokens has at most 64 noise spans (a kept token between any two), one
# more where a span is cut at a pair's separator, and the final sentinel: 100 never run out.
SENTINELS = [f"<extra_id_{i}>" for i in range(100)]


def save_mt5(texts: list[str], out: Path, hidden: int, layers: int, vocab: int, seed: int) -> None:
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Tokenizer

    raw = unigram_tokenizer(texts, vocab, ["<pad>", "</s>", "<unk>"], "$A </s>")
    # The span-corruption sentinels, at the end of the vocabulary with <extra_id_0> the highest id, as in mT5.
    raw.add_special_tokens(SENTINELS[::-1])
    tok = T5Tokenizer(
        tokenizer_object=raw, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=len(SENTINELS)
    )
    tok.model_max_length = 128
    torch.manual_seed(seed)
    cfg = MT5Config(
        vocab_size=len(tok),
        d_model=hidden,
        d_kv=max(8, hidden // 4),
        d_ff=2 * hidden,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=4,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    MT5ForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)


def byte_level_tokenizer(texts: Iterable[str], vocab_size: int, specials: list[str], bos: str | None) -> Tokenizer:
    """Byte-level BPE (GPT-2's byte alphabet, so no text is unknown), as Llama 3 and Qwen use; ``bos`` starts
    every sequence if given (Llama 3), none does without (Qwen)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    steps = [processors.ByteLevel(trim_offsets=False)]
    if bos is not None:
        template = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, tok.token_to_id(bos))]
        )
        steps.append(template)
    tok.post_processor = processors.Sequence(steps)
    return tok


BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def byte_fallback_tokenizer(texts: Iterable[str], vocab_size: int, specials: list[str], bos: str) -> Tokenizer:
    """SentencePiece-style BPE: ``▁`` marks a word start, a character outside the vocabulary becomes its UTF-8
    bytes (``<0xE7>``), and ``bos`` starts every sequence, as in Llama 2, Mistral and Gemma."""
    trained = Tokenizer(models.BPE(unk_token=specials[0]))
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False, limit_alphabet=200
    )
    trained.train_from_iterator(texts, trainer)
    # The byte tokens are ordinary vocabulary (decoded, not skipped as special tokens), right after the specials.
    learned = json.loads(trained.to_str())["model"]
    pieces = sorted((i, p) for p, i in learned["vocab"].items() if p not in specials)
    vocab = {p: i for i, p in enumerate([*specials, *BYTE_TOKENS, *(p for _, p in pieces)])}
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=specials[0], byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens(specials)
    tok.pre_tokenizer = trained.pre_tokenizer
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    return tok


@dataclass(frozen=True)
class LlmShape:
    """A tiny decoder-only model: its transformers config class, tokenizer kind and special tokens."""

    config_class: str
    byte_level: bool  # byte-level BPE; else SentencePiece-style BPE with byte fallback
    bos: str | None
    eos: str
    pad: str | None  # None: the checkpoint has no pad token (xlray pads with EOS)
    padding_side: str
    unk: str = "<unk>"

    def specials(self) -> list[str]:
        names = [] if self.byte_level else [self.unk]
        return list(dict.fromkeys([*names, *(t for t in (self.pad, self.bos, self.eos) if t)]))


LLMS: dict[str, LlmShape] = {
    "llama": LlmShape("LlamaConfig", True, "<|begin_of_text|>", "<|end_of_text|>", None, "right"),
    "qwen2": LlmShape("Qwen2Config", True, None, "<|endoftext|>", "<|endoftext|>", "right"),
    "qwen3": LlmShape("Qwen3Config", True, None, "<|endoftext|>", "<|endoftext|>", "left"),
    "mistral": LlmShape("MistralConfig", False, "<s>", "</s>", None, "left"),
    "gemma2": LlmShape("Gemma2Config", False, "<bos>", "<eos>", "<pad>", "left"),
    "gemma3": LlmShape("Gemma3TextConfig", False, "<bos>", "<eos>", "<pad>", "right"),
    "cohere": LlmShape("CohereConfig", True, "<BOS_TOKEN>", "<EOS_TOKEN>", "<PAD>", "left"),
}


def save_llm(family: str, texts: list[str], out: Path, hidden: int, layers: int, vocab: int, seed: int) -> None:
    """A tiny random-init decoder-only model of ``family`` (its shape in ``LLMS``) and its tokenizer."""
    import torch
    import transformers
    from transformers import AutoModel, PreTrainedTokenizerFast

    shape = LLMS[family]
    if shape.byte_level:
        raw = byte_level_tokenizer(texts, vocab + 256, shape.specials(), shape.bos)
    else:
        raw = byte_fallback_tokenizer(texts, vocab, shape.specials(), shape.bos)
    named = {"bos_token": shape.bos, "eos_token": shape.eos, "pad_token": shape.pad}
    unk = {} if shape.byte_level else {"unk_token": shape.unk}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, padding_side=shape.padding_side, **unk, **{k: v for k, v in named.items() if v}
    )
    tok.model_max_length = 128
    torch.manual_seed(seed)
    cfg = getattr(transformers, shape.config_class)(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        num_key_value_heads=1,
        head_dim=32,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        sliding_window=16,  # Mistral and Gemma: shorter than some sentences, so the window is exercised
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    AutoModel.from_config(cfg).save_pretrained(out)
    tok.save_pretrained(out)


# family name -> saver of its tiny model; a test checks that it covers FAMILIES
SAVERS: dict[str, Callable[[list[str], Path, int, int, int, int], None]] = {
    "bert": save_bert,
    "xlm-roberta": save_xlmr,
    "mt5": save_mt5,
    **{family: functools.partial(save_llm, family) for family in LLMS},
}


def build_tiny_model(
    family: str,
    texts: list[str],
    out: str | Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    vocab: int = 400,
    seed: int = 0,
) -> Path:
    """Train a tokenizer on ``texts`` and save a random-init model of ``family`` under ``out`` (atomically)."""
    out = Path(out)
    if family not in SAVERS:
        raise ValueError(f"no tiny model for family {family!r}; add one to SAVERS in xlray/world/tiny_models.py")
    if (out / "config.json").is_file():
        return out
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return atomic_dir(out, lambda tmp: SAVERS[family](texts, tmp, hidden, layers, vocab, seed))


def world_texts(world_dir: str | Path) -> list[str]:
    """Every sentence of a written world's parallel corpora (the tokenizers' training text)."""
    return [
        line.rstrip("\n")
        for path in sorted(Path(world_dir, "parallel").glob("*-*.*"))
        if not path.name.endswith(".align")
        for line in path.open(encoding="utf-8")
    ]
