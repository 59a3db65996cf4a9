"""Tiny random-init mBERT-, XLM-R- and mT5-style models with tokenizers trained on the synthetic world.

They are saved with ``save_pretrained`` (safetensors) and load back through exactly the path used for real
checkpoints (``xlray.models.load_model``). Each family of ``xlray.models.FAMILIES`` has one here, in ``SAVERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from xlray.families import FAMILY_NAMES
from xlray.outputs import atomic_dir

FAMILIES = FAMILY_NAMES


def bert_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A cased WordPiece tokenizer (accents kept) with [CLS] ... [SEP], like multilingual BERT's."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def unigram_tokenizer(texts: Iterable[str], vocab_size: int, specials: list[str], template: str) -> Tokenizer:
    """A SentencePiece-style Unigram tokenizer (Metaspace ▁ word marks), as XLM-R and mT5 use."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    ids = [(s, tok.token_to_id(s)) for s in specials if s in template]
    pair = template.replace("$A", "$A $B:1") if template.startswith("<s>") else "$A $B:1 </s>:1"
    tok.post_processor = processors.TemplateProcessing(single=template, pair=pair, special_tokens=ids)
    return tok


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


def save_mt5(texts: list[str], out: Path, hidden: int, layers: int, vocab: int, seed: int) -> None:
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Tokenizer

    raw = unigram_tokenizer(texts, vocab, ["<pad>", "</s>", "<unk>"], "$A </s>")
    tok = T5Tokenizer(tokenizer_object=raw, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0)
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


# family name -> saver of its tiny model; a test checks that it covers FAMILIES
SAVERS: dict[str, Callable[[list[str], Path, int, int, int, int], None]] = {
    "bert": save_bert,
    "xlm-roberta": save_xlmr,
    "mt5": save_mt5,
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
