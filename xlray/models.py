"""Loading checkpoints of the model families (``xlray.families``) and reading their per-layer hidden states.

Every per-family difference is a field of the family's row in ``xlray.families.FAMILIES``; this module reads
those fields and no other module branches on the family. Torch and transformers are imported inside functions,
so a driver that only reads a model's facts (``model_facts``) imports neither.

A checkpoint in object storage (``model.name: s3://...``) is read through a local copy (`local_checkpoint`), and
`write_checkpoint` is its counterpart: a folder built on a local disk, then moved or uploaded into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlray import storage
from xlray.configs import ModelConfig
from xlray.errors import XlrayError, one_line
from xlray.families import FAMILIES, Family
from xlray.outputs import atomic_dir, upload
from xlray.textio import is_uri

ENCODER_INPUTS = ("input_ids", "attention_mask")
CAUSAL_INPUTS = (*ENCODER_INPUTS, "position_ids")


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
        raise XlrayError(f"model.name: cannot read the config of {cfg.name}: {one_line(exc)}") from None
    except OSError as exc:
        raise XlrayError(f"model.name: cannot load {cfg.name}: {one_line(exc)}") from None
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


def local_checkpoint(location: str) -> str:
    """``location`` itself, or for a checkpoint folder in object storage its local copy, downloaded once.

    The copy is ``copy-<digest>`` in the URI's scratch folder, the digest of the folder's listing (names, sizes,
    modification times): a checkpoint written again at the same URI gets a new copy and the old one is removed. It
    is downloaded whole into a temporary folder and renamed into place, so a copy that exists is complete; of two
    processes of a node that fetch it at once, the first rename wins and the other's copy is dropped.
    """
    if not is_uri(location):
        return location
    cache = storage.scratch_dir(location)
    local = cache / f"copy-{listing_digest(location)}"
    if not local.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".copy-", dir=cache) as tmp:
            try:
                fetched = storage.download(location, Path(tmp))
            except OSError as exc:
                raise XlrayError(f"model.name: cannot download {storage.redact(location)}: {one_line(exc)}") from None
            try:
                os.rename(fetched, local)
            except OSError:
                if not local.is_dir():  # not another process's finished copy: a real failure
                    raise
    for old in cache.glob("copy-*"):
        if old != local:
            shutil.rmtree(old, ignore_errors=True)
    return str(local)


def listing_digest(uri: str) -> str:
    """A digest of the files under ``uri`` (path, size, modification time); a one-line error if there are none."""
    try:
        infos = storage.entries(uri, recursive=True)
    except OSError as exc:
        raise XlrayError(
            f"model.name: cannot list {storage.redact(uri)}: {storage.why_unusable(one_line(exc))}"
        ) from None
    files = sorted((i.path, i.size, i.mtime_ns) for i in infos if i.type.name == "File")
    if not files:
        raise XlrayError(f"model.name: {storage.redact(uri)} holds no checkpoint (nothing is stored under it)")
    return hashlib.sha256(repr(files).encode()).hexdigest()[:16]


def readable(cfg: ModelConfig) -> ModelConfig:
    """``cfg``, with a checkpoint in object storage replaced by its local copy (`local_checkpoint`)."""
    return cfg.model_copy(update={"name": local_checkpoint(cfg.name)}) if is_uri(cfg.name) else cfg


def write_checkpoint(final: str | Path, write: Callable[[Path], Any]) -> str:
    """A checkpoint folder written whole at ``final``, ``write`` filling a local folder: moved into place in one
    rename; for a URI, built in its parent's scratch folder, uploaded, then removed there (the stage's manifest,
    written after it, is what says the upload finished). Returns where it is: an absolute path or the URI."""
    if not is_uri(final):
        return str(Path(atomic_dir(final, write)).resolve())
    local = storage.scratch_dir(storage.parent(final)) / storage.name(final)
    atomic_dir(local, write)
    try:
        upload(local, str(final))
    finally:
        shutil.rmtree(local, ignore_errors=True)
    return str(final)


def torch_dtype(cfg: ModelConfig, device: str) -> Any:
    import torch

    if cfg.dtype != "auto":
        return getattr(torch, cfg.dtype)
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def model_class(family: Family) -> Any:
    import transformers

    return getattr(transformers, family.model_class)


def load_tokenizer(cfg: ModelConfig) -> Any:
    """The checkpoint's fast tokenizer (word maps need ``word_ids``)."""
    from transformers import AutoTokenizer

    cfg = readable(cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            cfg.name, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
    except (OSError, ValueError) as exc:  # e.g. only a slow tokenizer's files, and nothing to convert them with
        raise XlrayError(f"model.name: {cfg.name} has no fast tokenizer xlray can load: {one_line(exc)}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise XlrayError(f"model.name: {cfg.name} has no fast tokenizer (tokenizer.json); word maps need one")
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # LLMs without a pad token pad with EOS (padding is masked)
    return tokenizer


UNLIMITED = int(1e30)  # a tokenizer's model_max_length when its checkpoint sets none (as transformers has it)


def length_limit(cfg: ModelConfig, family: Family, conf: dict[str, Any], model_max_length: int) -> int:
    """Most tokens per sequence: the tokenizer's limit and the position table's (less the family's position
    offset), at most 512 and ``cfg.max_length``."""
    offset = family.position_offset
    positions = (conf.get("max_position_embeddings") or 512 + offset) - offset
    limit = min(model_max_length, positions, 512)
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
    a small machine). A hub name goes through transformers, which resolves it; a URI is read from its local copy.
    """
    local = readable(cfg)
    folder = Path(local.name)
    if not (folder / "config.json").is_file():
        conf, family, tokenizer = read_checkpoint(local)
        return facts_of(cfg, conf, family, tokenizer.model_max_length)
    conf = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    refuse_remote_code(cfg, conf)
    family = resolve_family(cfg, conf.get("model_type", ""))
    check_weights(local)
    if not (folder / "tokenizer.json").is_file():
        # no fast tokenizer saved: whether transformers can make one, find out here, not in actors
        load_tokenizer(local)
    tok_conf = folder / "tokenizer_config.json"
    saved = json.loads(tok_conf.read_text(encoding="utf-8")) if tok_conf.is_file() else {}
    return facts_of(cfg, conf, family, saved.get("model_max_length") or UNLIMITED)


def refuse_llm(cfg: ModelConfig, stage: str) -> None:
    """A stage that trains the model (adjust, evaluate) refuses a decoder-only LLM, before any work starts."""
    family = model_facts(cfg)["family"]
    if FAMILIES[family].causal:
        raise XlrayError(
            f"model.name: {cfg.name} is a decoder-only LLM ({family}); xlray {stage} trains encoders only so far "
            "(LLMs: extract, concepts and sentence-alignment)"
        )


def load_model(cfg: ModelConfig, device: str = "cpu", gpus: int = 1, gpu_memory_gb: float | None = None) -> LoadedModel:
    """Load tokenizer and model for ``cfg`` on ``device``, safetensors only and no remote code by default.

    ``gpus`` > 1 on CUDA: the model is spread over the first ``gpus`` visible GPUs (a Ray actor sees just its own)
    by :func:`spread_over_gpus`, at most ``gpu_memory_gb`` of weights on each (default: 85% of each GPU's memory).
    A checkpoint in object storage loads from its local copy (`local_checkpoint`) and keeps its URI as its name.
    """
    local = readable(cfg)
    conf, family, tokenizer = read_checkpoint(local)
    dtype = torch_dtype(cfg, device)
    spread = gpus > 1 and device.startswith("cuda")
    budgets = gpu_budgets(gpus, gpu_memory_gb) if spread else {}
    placement = {"device_map": spread_over_gpus(local, family, dtype, budgets)} if spread else {}
    try:
        model = model_class(family).from_pretrained(
            local.name,
            use_safetensors=not cfg.allow_pickle_weights,
            dtype=dtype,
            revision=cfg.revision,
            trust_remote_code=cfg.trust_remote_code,
            **placement,
        )
    except OSError as exc:
        raise XlrayError(f"model.name: cannot load weights of {cfg.name}: {one_line(exc)}") from None
    if not spread:
        model.to(device)
    model.eval()
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


def gpu_budgets(gpus: int, gpu_memory_gb: float | None) -> dict[int, int]:
    """Bytes of weights each of the first ``gpus`` GPUs may hold: ``gpu_memory_gb``, else 85% of its memory (the
    rest holds the activations of a batch)."""
    import torch

    if gpu_memory_gb is not None:
        return {i: int(gpu_memory_gb * 1e9) for i in range(gpus)}
    return {i: int(0.85 * torch.cuda.get_device_properties(i).total_memory) for i in range(gpus)}


def spread_over_gpus(cfg: ModelConfig, family: Family, dtype: Any, budgets: dict[int, int]) -> dict[str, int]:
    """Accelerate's device map of the model over the GPUs of ``budgets`` (GPU index -> bytes of weights), whole
    transformer layers on each, planned on an empty (meta) model: no weights are read and no GPU is needed to plan.
    A model that does not fit is refused (nothing is offloaded to the CPU or disk)."""
    from accelerate import infer_auto_device_map, init_empty_weights
    from transformers import AutoConfig

    conf = AutoConfig.from_pretrained(cfg.name, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    with init_empty_weights():
        skeleton = model_class(family).from_config(conf, dtype=dtype, trust_remote_code=cfg.trust_remote_code)
    device_map = infer_auto_device_map(
        skeleton, max_memory=dict(budgets), no_split_module_classes=skeleton._no_split_modules or [], dtype=dtype
    )
    off = sorted({str(d) for d in device_map.values() if not isinstance(d, int)})
    if off:
        total = sum(budgets.values()) / 1e9
        raise XlrayError(
            f"gpus_per_actor: {cfg.name} does not fit on {len(budgets)} GPUs with {total:,.3g} GB for weights "
            f"(it would go to {', '.join(off)}); raise gpus_per_actor or gpu_memory_gb"
        )
    return device_map


def commit_of(name: str) -> str | None:
    """The hub commit a cached checkpoint resolved to, if known (for manifests); None for local folders and URIs."""
    path = Path(name)
    if is_uri(name) or path.is_dir():
        return None
    ref = Path.home() / ".cache" / "huggingface" / "hub" / f"models--{name.replace('/', '--')}" / "refs" / "main"
    return ref.read_text().strip() if ref.is_file() else None


def encoder_of(lm: LoadedModel) -> Any:
    """The encoder stack: what adjustment trains and what runs without targets (mT5's decoder stays unused)."""
    return getattr(lm.model, lm.family.encoder) if lm.family.encoder else lm.model


def layer_states(
    model: LoadedModel | Any, inputs: Mapping[str, Any], targets: Mapping[str, Any] | None = None
) -> dict[str, tuple[Any, ...]]:
    """Per-site hidden states ``{"encoder": (h0, ..., hL)}``, each [batch, tokens, hidden] (h0 = embeddings); a
    decoder-only LLM's one stack is its "encoder" site too (the site of what reads the input).

    Args:
        model: a loaded model, or an encoder module as :func:`encoder_of` gives (called with ids and mask only).
        inputs: ``input_ids`` and ``attention_mask`` [batch, tokens] (and ``token_type_ids``, which only a family
            that takes them gets); other keys are ignored. They are moved to the model's device.
        targets: for a family with a decoder, the target side: then ``"decoder"`` states come too, read with
            teacher forcing (a target word's state has seen only earlier words).
    """
    if not isinstance(model, LoadedModel):
        return {"encoder": run_stack(model, inputs, ENCODER_INPUTS)}
    family = model.family
    if family.causal:
        # Positions count the real tokens only, so a left-padded sentence has the positions it has alone.
        positions = (inputs["attention_mask"].long().cumsum(-1) - 1).clamp_min(0)
        return {"encoder": run_stack(model.model, {**inputs, "position_ids": positions}, CAUSAL_INPUTS)}
    keys = (*ENCODER_INPUTS, "token_type_ids") if family.token_type_ids else ENCODER_INPUTS
    if targets is None or not family.decoder:
        return {"encoder": run_stack(encoder_of(model), inputs, keys)}
    device = model.device
    out = model.model(
        **on_device(inputs, keys, device),
        decoder_input_ids=model.model._shift_right(targets["input_ids"].to(device)),
        decoder_attention_mask=targets["attention_mask"].to(device),
        output_hidden_states=True,
    )
    return {"encoder": out.encoder_hidden_states, "decoder": out.decoder_hidden_states}


def run_stack(module: Any, inputs: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    """All hidden states of one stack, on the inputs among ``keys``."""
    out = module(**on_device(inputs, keys, next(module.parameters()).device), output_hidden_states=True)
    return out.hidden_states


def on_device(inputs: Mapping[str, Any], keys: tuple[str, ...], device: Any) -> dict[str, Any]:
    return {k: inputs[k].to(device) for k in keys if k in inputs}


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
