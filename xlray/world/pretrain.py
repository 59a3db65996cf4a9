"""Pretraining of the world's tiny models on the world's own text, with dose knobs for planted alignment.

Each family learns with its own objective: masked LM for the encoders (bert, xlm-roberta; BERT's 80/10/10 rule),
causal LM for the decoder-only LLMs. mT5's span corruption needs sentinel tokens the tiny mT5 tokenizer does not
have, so mt5 is refused with a one-line error rather than trained with a stand-in objective.

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
PRETRAINABLE = (*MLM_FAMILIES, *(name for name, f in FAMILIES.items() if f.causal))


class PretrainConfig(Strict):
    """How a tiny model is pretrained; the defaults take about a minute per model on 2 CPU cores."""

    steps: int = Field(1500, ge=1, description="optimiser steps (a step count, not a time budget: deterministic)")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    mask_rate: float = Field(0.15, gt=0, lt=1, description="masked LM: share of content tokens predicted")
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
    """``mlm`` or ``clm``; a family without a supported objective is a one-line error."""
    if family not in FAMILIES:
        raise XlrayError(f"pretrain: unknown family {family!r}")
    if FAMILIES[family].causal:
        return "clm"
    if family in MLM_FAMILIES:
        return "mlm"
    raise XlrayError(
        f"pretrain: family {family!r}: span corruption needs sentinel tokens the tiny tokenizer lacks; "
        "pretrain bert, xlm-roberta or a decoder-only family"
    )


def batch(tok: Any, rows: Rows, cfg: PretrainConfig, rng: random.Random, kind: str) -> dict[str, Any]:
    """One batch of token ids with labels (-100 where nothing is predicted)."""
    import torch

    firsts, seconds = [], []
    for _ in range(cfg.batch_size):
        if cfg.tlm_share and rng.random() < cfg.tlm_share:
            a, b = rows.pair(rng)
        else:
            a, b = rows.monolingual(rng, cfg.code_switch), None
        firsts.append(a)
        seconds.append(b)
    encoded = [tok(a, b, truncation=True) if b is not None else tok(a, truncation=True)
               for a, b in zip(firsts, seconds, strict=True)]  # fmt: skip
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


def train(random_init: Path, world: Any, cfg: PretrainConfig, family: str, out: Path) -> dict[str, Any]:
    """Pretrain a copy of the random-init model in ``random_init`` and save its base model and tokenizer."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    kind = objective(family)
    threads, verbosity = torch.get_num_threads(), hf_logging.get_verbosity()
    torch.set_num_threads(cfg.threads)
    hf_logging.set_verbosity_error()  # the head is new by design: no load report
    try:
        torch.manual_seed(cfg.seed)
        tok = AutoTokenizer.from_pretrained(random_init)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token  # as xlray pads LLMs without a pad token
        head = AutoModelForCausalLM if kind == "clm" else AutoModelForMaskedLM
        model = head.from_pretrained(random_init, use_safetensors=True)
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
        # Saved as the random-init base model with the trained weights, so parts no objective trains (BERT's
        # pooler) keep their initial values and the checkpoint has exactly the random-init twin's layout.
        base = AutoModel.from_pretrained(random_init, use_safetensors=True)
        unset = base.load_state_dict(model.base_model.state_dict(), strict=False)
        if unset.unexpected_keys or any(not k.startswith("pooler.") for k in unset.missing_keys):
            raise XlrayError(f"pretrain {family}: trained weights do not fit the base model: {unset}")
        base.save_pretrained(out)
        tok.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
        hf_logging.set_verbosity(verbosity)
    tail = losses[-50:]
    return {"objective": kind, "final_loss": sum(tail) / len(tail)}


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
