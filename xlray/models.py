"""Loading mBERT-, XLM-R- and mT5-style checkpoints and reading their per-layer hidden states.

Per-family differences live here and nowhere else: which class to load, and how to run the forward pass that
returns hidden states per activation site (``encoder``, and ``decoder`` for mT5 with teacher forcing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlray.configs import ModelConfig
from xlray.errors import XlrayError


@dataclass(frozen=True)
class Family:
    """A model family: the config ``model_type`` values it covers and whether it has a decoder."""

    name: str
    model_types: tuple[str, ...]
    has_decoder: bool


FAMILIES: dict[str, Family] = {
    "bert": Family("bert", ("bert",), False),
    "xlm-roberta": Family("xlm-roberta", ("xlm-roberta", "roberta"), False),
    "mt5": Family("mt5", ("mt5", "t5"), True),
}


@dataclass
class LoadedModel:
    """A model in eval mode with its fast tokenizer and the facts stages need."""

    cfg: ModelConfig
    family: Family
    model: Any
    tokenizer: Any
    max_length: int
    num_layers: int  # transformer layers; hidden states have num_layers + 1 entries (0 = embeddings)
    hidden_size: int
    revision: str | None

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device


def read_model_config(cfg: ModelConfig) -> dict[str, Any]:
    """The checkpoint's config.json as a dict (local folder or hub name), with clear errors."""
    from transformers import AutoConfig

    try:
        conf = AutoConfig.from_pretrained(cfg.name, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise XlrayError(
                f"model.name: {cfg.name} asks for remote code; set model.trust_remote_code: true only if you trust it"
            ) from None
        raise XlrayError(f"model.name: cannot read the config of {cfg.name}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise XlrayError(f"model.name: cannot load {cfg.name}: {str(exc).splitlines()[0]}") from None
    data = conf.to_dict()
    refuse_remote_code(cfg, data)
    return data


def refuse_remote_code(cfg: ModelConfig, conf: dict[str, Any]) -> None:
    if conf.get("auto_map") and not cfg.trust_remote_code:
        raise XlrayError(
            f"model.name: {cfg.name} asks for remote code (auto_map in config.json); "
            "set model.trust_remote_code: true only if you trust it"
        )


def resolve_family(cfg: ModelConfig, model_type: str) -> Family:
    """The family named in the config, or the one whose model types include the checkpoint's."""
    if cfg.family != "auto":
        return FAMILIES[cfg.family]
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise XlrayError(
        f"model.family: {cfg.name} has model_type {model_type!r}, which is not a supported family "
        f"({', '.join(FAMILIES)}); set model.family if it is one of them"
    )


def check_weights(cfg: ModelConfig) -> None:
    """A local checkpoint must have safetensors weights unless pickle weights are explicitly allowed."""
    path = Path(cfg.name)
    if not path.is_dir() or cfg.allow_pickle_weights:
        return
    if not any(path.glob("*.safetensors")):
        has_bin = any(path.glob("*.bin")) or any(path.glob("*.pt"))
        hint = " (only pickle .bin weights found; set model.allow_pickle_weights: true to load them)" if has_bin else ""
        raise XlrayError(f"model.name: {path} has no safetensors weights{hint}")


def torch_dtype(cfg: ModelConfig, device: str) -> Any:
    import torch

    if cfg.dtype != "auto":
        return getattr(torch, cfg.dtype)
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def model_class(family: Family) -> Any:
    from transformers import AutoModel, MT5Model

    return MT5Model if family.has_decoder else AutoModel


def load_tokenizer(cfg: ModelConfig) -> Any:
    """The checkpoint's fast tokenizer (word maps need ``word_ids``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cfg.name, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):
        raise XlrayError(f"model.name: {cfg.name} has no fast tokenizer (tokenizer.json); word maps need one")
    return tokenizer


UNLIMITED = int(1e30)  # a tokenizer's model_max_length when its checkpoint sets none (as transformers has it)


def length_limit(cfg: ModelConfig, family: Family, conf: dict[str, Any], model_max_length: int) -> int:
    """Most tokens per sequence: the tokenizer's and position table's limit, at most 512 and ``cfg.max_length``."""
    limit = min(model_max_length, conf.get("max_position_embeddings") or 512, 512)
    if family.name == "xlm-roberta":
        limit = min(limit, (conf.get("max_position_embeddings") or 514) - 2)
    return min(cfg.max_length or limit, limit)


def read_checkpoint(cfg: ModelConfig) -> tuple[dict[str, Any], Family, Any]:
    """Config, family and tokenizer of a checkpoint, checked (no remote code, safetensors weights present)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    conf = read_model_config(cfg)
    family = resolve_family(cfg, conf.get("model_type", ""))
    check_weights(cfg)
    return conf, family, load_tokenizer(cfg)


def facts_of(cfg: ModelConfig, conf: dict[str, Any], family: Family, model_max_length: int) -> dict[str, Any]:
    """The facts `describe` reports (name, family, revision, layers, width, length limit) of a read checkpoint."""
    return {
        "name": cfg.name,
        "family": family.name,
        "revision": cfg.revision or commit_of(cfg.name),
        "layers": conf.get("num_hidden_layers") or conf.get("num_layers"),
        "hidden_size": conf.get("hidden_size") or conf.get("d_model"),
        "max_length": length_limit(cfg, family, conf, model_max_length),
    }


def model_facts(cfg: ModelConfig) -> dict[str, Any]:
    """What `describe` says of a loaded model, read from its config and tokenizer without loading the weights.

    A local checkpoint folder is read as the JSON files it is (``config.json``, ``tokenizer_config.json``), with
    the same checks as loading it: a driver that only needs the facts then never imports transformers (seconds on
    a small machine). A hub name goes through transformers, which resolves it.
    """
    folder = Path(cfg.name)
    if not (folder / "config.json").is_file():
        conf, family, tokenizer = read_checkpoint(cfg)
        return facts_of(cfg, conf, family, tokenizer.model_max_length)
    conf = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    refuse_remote_code(cfg, conf)
    family = resolve_family(cfg, conf.get("model_type", ""))
    check_weights(cfg)  # whether its tokenizer loads as a fast one, the actors find out (transformers may convert it)
    tok_conf = folder / "tokenizer_config.json"
    saved = json.loads(tok_conf.read_text(encoding="utf-8")) if tok_conf.is_file() else {}
    return facts_of(cfg, conf, family, saved.get("model_max_length") or UNLIMITED)


def load_model(cfg: ModelConfig, device: str = "cpu") -> LoadedModel:
    """Load tokenizer and model for ``cfg`` on ``device``, safetensors only and no remote code by default."""
    conf, family, tokenizer = read_checkpoint(cfg)
    try:
        model = model_class(family).from_pretrained(
            cfg.name,
            use_safetensors=not cfg.allow_pickle_weights,
            dtype=torch_dtype(cfg, device),
            revision=cfg.revision,
            trust_remote_code=cfg.trust_remote_code,
        )
    except OSError as exc:
        raise XlrayError(f"model.name: cannot load weights of {cfg.name}: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    facts = facts_of(cfg, conf, family, tokenizer.model_max_length)
    return LoadedModel(
        cfg=cfg,
        family=family,
        model=model,
        tokenizer=tokenizer,
        max_length=facts["max_length"],
        num_layers=facts["layers"],
        hidden_size=facts["hidden_size"],
        revision=facts["revision"],
    )


def commit_of(name: str) -> str | None:
    """The hub commit a cached checkpoint resolved to, if known (for manifests); None for local folders."""
    path = Path(name)
    if path.is_dir():
        return None
    ref = Path.home() / ".cache" / "huggingface" / "hub" / f"models--{name.replace('/', '--')}" / "refs" / "main"
    return ref.read_text().strip() if ref.is_file() else None


def hidden_states(lm: LoadedModel, inputs: dict[str, Any], targets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-site hidden states: ``{"encoder": (h0, ..., hL)}`` each [batch, tokens, hidden]; mT5 with ``targets``
    also gives ``"decoder"``, read with teacher forcing (a target word's state has seen only earlier words)."""
    model = lm.model
    if not lm.family.has_decoder:
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], output_hidden_states=True)
        return {"encoder": out.hidden_states}
    if targets is None:
        out = model.encoder(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], output_hidden_states=True
        )
        return {"encoder": out.hidden_states}
    out = model(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        decoder_input_ids=model._shift_right(targets["input_ids"]),
        decoder_attention_mask=targets["attention_mask"],
        output_hidden_states=True,
    )
    return {"encoder": out.encoder_hidden_states, "decoder": out.decoder_hidden_states}


def describe(lm: LoadedModel) -> dict[str, Any]:
    """Facts about a loaded model for params and manifests."""
    return {
        "name": lm.cfg.name,
        "family": lm.family.name,
        "revision": lm.revision,
        "layers": lm.num_layers,
        "hidden_size": lm.hidden_size,
        "max_length": lm.max_length,
    }
