"""Pretraining of the world's tiny models on the world's own text, with dose knobs for planted alignment.

Each family learns with its own objective: masked LM for the encoders (bert, xlm-roberta; BERT's 80/10/10 rule),
span corruption for mt5 (T5's: noise spans of the input become sentinels, the decoder writes each sentinel and the
span it hides; Raffel et al. 2020) and causal LM for the decoder-only LLMs.

The training text is every language's side of the world's parallel meanings, one sentence per row. Two knobs plant
cross-lingual alignment; both at 0 plant none, so that their effect can be measured against a dose of zero:

- ``tlm_share``: the share of rows that are a translation pair, English and a target language in random order,
  encoded as one pair (translation language modelling, Conneau & Lample 2019);
- ``code_switch``: the probability that a content word of a monolingual row is replaced by its gold translation
  in another language of the world (dictionary code-switching).

The result is a pure function of the world, the random-init model and the config: the same seed and thread count
give the same weights (``threads`` is part of the config for that reason). It is cached in the models folder with
``pretrain.json`` beside the weights and rebuilt only when the config changes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pydantic import Field

from xlray.configs import Strict
from xlray.console import progress
from xlray.errors import XlrayError
from xlray.families import FAMILIES
from xlray.outputs import atomic_dir

MANIFEST = "pretrain.json"
MLM_FAMILIES = ("bert", "xlm-roberta")
SPAN_FAMILIES = ("mt5",)
PRETRAINABLE = (*MLM_FAMILIES, *SPAN_FAMILIES, *(name for name, f in FAMILIES.items() if f.causal))
# objective -> the transformers auto class of the model it trains
HEADS = {"mlm": "AutoModelForMaskedLM", "span": "AutoModelForSeq2SeqLM", "clm": "AutoModelForCausalLM"}


class PretrainConfig(Strict):
    """How a tiny model is pretrained; the defaults take one to three minutes per model on 2 CPU cores (bert about
    80 s, mt5 about 180 s)."""

    steps: int = Field(1500, ge=1, description="optimiser steps (a step count, not a time budget: deterministic)")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    mask_rate: float = Field(
        0.15, gt=0, lt=1, description="masked LM: share of content tokens predicted; span corruption: noise density"
    )
    mean_span: float = Field(3.0, ge=1, description="span corruption: mean noise span length in tokens (T5: 3)")
    tlm_share: float = Field(0.0, ge=0, le=1, description="share of rows that are translation pairs (TLM)")
    code_switch: float = Field(0.0, ge=0, le=1, description="chance a content word becomes a translation")
    seed: int = 0
    threads: int = Field(2, ge=1, description="torch threads; results are deterministic for a given count")


class Rows:
    """The training rows: each meaning rendered in every language, as word lists with their concepts."""

    def __init__(self, world: Any, n: int):
        self.world = world
        self.codes = list(world.languages)
        meanings = list(world.meanings("parallel", n))
        self.rendered = [{c: world.render(m, c) for c in self.codes} for m in meanings]

    def monolingual(self, rng: random.Random, code_switch: float) -> str:
        row = rng.choice(self.rendered)
        code = rng.choice(self.codes)
        return " ".join(self.switched(w, code, rng) if code_switch and rng.random() < code_switch else w.form
                        for w in row[code])  # fmt: skip

    def switched(self, word: Any, code: str, rng: random.Random) -> str:
        """The word's gold translation in another language; function words and punctuation stay as they are."""
        if word.concept.startswith(("fn:", "punct:")):
            return word.form
        other = rng.choice([c for c in self.codes if c != code])
        return self.world.languages[other].form(word.concept)

    def pair(self, rng: random.Random) -> tuple[str, str]:
        row = rng.choice(self.rendered)
        source = self.world.cfg.source
        target = rng.choice([c for c in self.codes if c != source])
        texts = [" ".join(w.form for w in row[c]) for c in (source, target)]
        rng.shuffle(texts)
        return texts[0], texts[1]


def objective(family: str) -> str:
    """``mlm``, ``span`` or ``clm``; a family without a supported objective is a one-line error."""
    if family not in FAMILIES:
        raise XlrayError(f"pretrain: unknown family {family!r}")
    if FAMILIES[family].causal:
        return "clm"
    if family in MLM_FAMILIES:
        return "mlm"
    if family in SPAN_FAMILIES:
        return "span"
    raise XlrayError(f"pretrain: family {family!r} has no pretraining objective; choose one of {list(PRETRAINABLE)}")


def encode_rows(tok: Any, rows: Rows, cfg: PretrainConfig, rng: random.Random) -> list[Any]:
    """The batch's rows, each encoded: a sentence, or with ``tlm_share`` a translation pair encoded as a pair."""
    encoded = []
    for _ in range(cfg.batch_size):
        pair = cfg.tlm_share and rng.random() < cfg.tlm_share
        texts = rows.pair(rng) if pair else (rows.monolingual(rng, cfg.code_switch),)
        encoded.append(tok(*texts, truncation=True))
    return encoded


def batch(tok: Any, rows: Rows, cfg: PretrainConfig, rng: random.Random, kind: str) -> dict[str, Any]:
    """One batch of token ids with labels (-100 where nothing is predicted). Every objective draws the same rows
    for the same seed, and its noise from one seed drawn after them."""
    import torch

    encoded = encode_rows(tok, rows, cfg, rng)
    if kind == "span":
        return span_batch(tok, encoded, cfg, random.Random(rng.randrange(2**62)))
    enc = tok.pad(encoded, return_tensors="pt")
    ids, attention = enc["input_ids"], enc["attention_mask"]
    labels = ids.masked_fill(attention == 0, -100)
    if kind == "clm":
        return {**enc, "labels": labels}
    special = torch.isin(ids, torch.tensor(tok.all_special_ids)) | (attention == 0)
    gen = torch.Generator().manual_seed(rng.randrange(2**62))
    chosen = (torch.rand(ids.shape, generator=gen) < cfg.mask_rate) & ~special
    draw = torch.rand(ids.shape, generator=gen)
    masked = ids.clone()
    masked[chosen & (draw < 0.8)] = tok.mask_token_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[swap] = torch.randint(len(tok), ids.shape, generator=gen)[swap]
    return {**enc, "input_ids": masked, "labels": labels.masked_fill(~chosen, -100)}


def noise_mask(n: int, density: float, mean_span: float, rng: random.Random) -> list[bool]:
    """Which of ``n`` tokens are noise, as T5's ``random_spans_noise_mask``: round(n * density) noise tokens (at
    least 1, fewer than n) in round(noise / mean_span) spans (at least 1), kept gaps of at least 1 between spans,
    all lengths random. Unlike T5's, the first and last gaps may be empty: T5's mask always ends in noise, which on
    rows of one sentence would always hide its full stop."""
    if n < 2:
        return [False] * n
    noise = min(max(round(n * density), 1), n - 1)
    kept = n - noise
    spans = min(max(round(noise / mean_span), 1), kept + 1)
    gaps = split_into(kept + 2, spans + 1, rng)  # each one longer, so that the first and last may be empty
    gaps[0], gaps[-1] = gaps[0] - 1, gaps[-1] - 1
    lengths = [*split_into(noise, spans, rng), 0]
    return [hidden for gap, span in zip(gaps, lengths, strict=True) for hidden in [False] * gap + [True] * span]


def split_into(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` cut into ``parts`` positive lengths, every such cut equally likely."""
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def hidden_positions(special: list[bool], cfg: PretrainConfig, rng: random.Random) -> set[int]:
    """The positions of a row that span corruption hides: a :func:`noise_mask` over its non-special tokens."""
    content = [p for p, s in enumerate(special) if not s]
    mask = noise_mask(len(content), cfg.mask_rate, cfg.mean_span, rng)
    return {p for p, hidden in zip(content, mask, strict=True) if hidden}


def span_corrupt(ids: list[int], hidden: set[int], sentinels: list[int], eos: int) -> tuple[list[int], list[int]]:
    """T5's span corruption of one row: each run of hidden positions becomes the next sentinel in the input, and
    the target is each sentinel with the tokens it hides, then a final sentinel and eos (Raffel et al. 2020,
    Figure 2). Runs are cut at the row's special tokens, which are never hidden: a span across a pair's
    separator is two spans."""
    inputs, targets, used = [], [], 0
    for p, token in enumerate(ids):
        if p not in hidden:
            inputs.append(token)
            continue
        if p - 1 not in hidden:
            inputs.append(sentinels[used])
            targets.append(sentinels[used])
            used += 1
        targets.append(token)
    return inputs, [*targets, sentinels[used], eos]


def sentinel_ids(tok: Any) -> list[int]:
    """The ids of ``<extra_id_0>``, ``<extra_id_1>``, ... in order; none is a one-line error."""
    vocab = tok.get_vocab()
    ids: list[int] = []
    while f"<extra_id_{len(ids)}>" in vocab:
        ids.append(vocab[f"<extra_id_{len(ids)}>"])
    if not ids:
        raise XlrayError(f"pretrain: {tok.name_or_path}: the tokenizer has no sentinel tokens (<extra_id_0>, ...) "
                         "for span corruption; delete the folder and rebuild it with `xlray world`")  # fmt: skip
    return ids


def span_batch(tok: Any, encoded: list[Any], cfg: PretrainConfig, rng: random.Random) -> dict[str, Any]:
    """The rows span-corrupted (:func:`span_corrupt`) and padded: input ids, attention mask and labels (-100 on
    padding), from which the model makes its decoder's inputs."""
    import torch

    special, sentinels = set(tok.all_special_ids), sentinel_ids(tok)
    rows = []
    for e in encoded:
        hidden = hidden_positions([i in special for i in e["input_ids"]], cfg, rng)
        rows.append(span_corrupt(e["input_ids"], hidden, sentinels, tok.eos_token_id))
    enc = tok.pad([{"input_ids": inputs} for inputs, _ in rows], return_tensors="pt")
    labels = torch.full((len(rows), max(len(t) for _, t in rows)), -100)
    for r, (_, targets) in enumerate(rows):
        labels[r, : len(targets)] = torch.tensor(targets)
    return {**enc, "labels": labels}


def train(random_init: Path, world: Any, cfg: PretrainConfig, family: str, out: Path) -> dict[str, Any]:
    """Pretrain a copy of the random-init model in ``random_init`` and save its base model and tokenizer."""
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    kind = objective(family)
    threads, verbosity = torch.get_num_threads(), hf_logging.get_verbosity()
    torch.set_num_threads(cfg.threads)
    hf_logging.set_verbosity_error()  # the head is new by design: no load report
    hf_logging.disable_progress_bar()  # as xlray.models: no weight-loading bars
    try:
        torch.manual_seed(cfg.seed)
        tok = transformers.AutoTokenizer.from_pretrained(random_init)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token  # as xlray pads LLMs without a pad token
        if kind == "span":
            sentinel_ids(tok)  # refuse a tokenizer without sentinels before any work
        model = getattr(transformers, HEADS[kind]).from_pretrained(random_init, use_safetensors=True)
        rows = Rows(world, world.cfg.parallel_sentences)
        rng = random.Random(cfg.seed)
        optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / 100))  # warm-up
        model.train()
        losses = []
        with progress(f"pretrain {family} ({kind})", cfg.steps) as advance:
            for _ in range(cfg.steps):
                loss = model(**batch(tok, rows, cfg, rng, kind)).loss
                optim.zero_grad()
                loss.backward()
                optim.step()
                schedule.step()
                losses.append(loss.item())
                advance()
        save_base(model, random_init, family, out)
        tok.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
        hf_logging.set_verbosity(verbosity)
    tail = losses[-50:]
    return {"objective": kind, "final_loss": sum(tail) / len(tail)}


def save_base(model: Any, random_init: Path, family: str, out: Path) -> None:
    """Save the trained weights as the random-init base model, so that parts no objective trains (BERT's pooler)
    keep their initial values and the checkpoint has exactly the random-init twin's layout."""
    from transformers import AutoModel

    base = AutoModel.from_pretrained(random_init, use_safetensors=True)
    unset = base.load_state_dict(model.base_model.state_dict(), strict=False)
    untrained = [k for k in unset.missing_keys if not k.startswith("pooler.")]
    # mT5's lm_head is not in MT5Model; it may be left out only while it is the shared embedding (transformers
    # ties it), so that no trained weight is lost.
    tied = model.get_output_embeddings() is not None and (
        model.get_output_embeddings().weight is model.get_input_embeddings().weight
    )
    lost = [k for k in unset.unexpected_keys if not (k == "lm_head.weight" and tied)]
    if untrained or lost:
        raise XlrayError(f"pretrain {family}: trained weights do not fit the base model: missing {untrained}, "
                         f"unexpected {lost}")  # fmt: skip
    base.save_pretrained(out)


def pretrained_model(family: str, world_dir: Path, random_init: Path, cfg: PretrainConfig, out: Path) -> Path:
    """The pretrained twin of ``random_init`` in ``out``: reused when its ``pretrain.json`` holds this config."""
    from xlray.world.build import World, read_world_config

    world_cfg = read_world_config(world_dir)
    if world_cfg is None:
        raise XlrayError(f"{world_dir}: no synthetic world here (world.json missing); write one with `xlray world`")
    key = {"family": family, "config": cfg.model_dump(), "world": world_cfg.model_dump()}
    manifest = out / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text())["key"] == key:
        return out
    objective(family)  # refuse before any work

    def write(tmp: Path) -> None:
        summary = train(random_init, World(world_cfg), cfg, family, tmp)
        (tmp / MANIFEST).write_text(json.dumps({"key": key, **summary}, indent=1))

    return Path(atomic_dir(out, write))
