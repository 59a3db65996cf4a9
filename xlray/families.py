"""The model families xlray loads, one row each: their names and every quirk the loader and stages need, as data.

To add a family:

1. add a row to ``FAMILIES`` (its name, the checkpoints' ``model_type`` values, the transformers class that loads
   the base model, and its quirks: encoder attribute, decoder, segment ids, position offset, last layer, causal);
2. add a tiny model of it to ``SAVERS`` in ``xlray/world/tiny_models.py``: the tests build it and run it through
   the loader (``xlray.models``), ``layer_states`` and extraction, and an encoder family also through adjustment
   and the task heads (decoder-only LLMs are extracted and scored, not yet adjusted or fine-tuned).

The configs, the CLI and the world factory take the family names from ``FAMILY_NAMES`` / ``FamilyName``. This
module imports nothing heavy, so configs can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Family:
    """A model family's quirks, as data.

    Hidden states per site are ``(h0, ..., hL)`` as transformers returns them: h0 the embeddings, hi the output of
    layer i. ``last_layer`` is the index task heads read. BERT and XLM-R end each layer in its own LayerNorm, so
    hL is layer L's output as is. T5/mT5 is pre-norm: h1..h(L-1) are the unnormalised residual stream, while hL
    (= ``last_hidden_state``) comes after the stack's ``final_layer_norm``; layer L's unnormalised output is not
    returned. The decoder-only LLMs (Llama, Mistral, Qwen 2/3, Gemma 2/3, Cohere) are pre-norm in the same way:
    hL comes after the model's final ``norm`` (a test checks it), h1..h(L-1) are the residual stream.
    """

    name: str
    model_types: tuple[str, ...]  # config.json model_type values that `family: auto` resolves to this family
    model_class: str  # the transformers class that loads the base model (no task head)
    encoder: str = ""  # attribute of the loaded model that is its encoder stack; "" = the model itself
    decoder: bool = False  # encoder-decoder: given targets, the whole model runs teacher-forced (a "decoder" site)
    token_type_ids: bool = False  # takes segment ids (sentence A/B) when a batch has them
    position_offset: int = 0  # position ids taken before the first token (RoBERTa: padding_idx + 1 = 2)
    last_layer: int = -1  # hidden-state index of the last layer, as heads read it (see the class docstring)
    pooler: bool = False  # the base model's ``pooler`` (first token -> dense + tanh) was pretrained: NLI reuses it
    # Decoder-only (causal) LLM: position ids follow the attention mask, so that left padding moves no position;
    # its sentences are tokenized as text (the space before a word belongs to the word's first token, as the model
    # saw it in pretraining) and tokens are mapped to whitespace words by character offsets (xlray.wordmap).
    causal: bool = False


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        # BERT's pooler was pretrained (next-sentence prediction); BertForSequenceClassification keeps it.
        Family("bert", ("bert",), "AutoModel", token_type_ids=True, pooler=True),
        # XLM-R was pretrained on MLM alone, so its checkpoints' pooler weights were never trained, and
        # XLMRobertaForSequenceClassification drops them for a fresh head (as ours is).
        Family("xlm-roberta", ("xlm-roberta", "roberta"), "AutoModel", position_offset=2, pooler=False),
        # No pooler; hL comes after final_layer_norm.
        Family("mt5", ("mt5", "t5"), "MT5Model", encoder="encoder", decoder=True, pooler=False),
        # Decoder-only LLMs, text models only (a multimodal Gemma 3, model_type gemma3, is not one of them).
        Family("llama", ("llama",), "AutoModel", causal=True),
        Family("mistral", ("mistral",), "AutoModel", causal=True),
        Family("qwen2", ("qwen2",), "AutoModel", causal=True),
        Family("qwen3", ("qwen3",), "AutoModel", causal=True),
        Family("gemma2", ("gemma2",), "AutoModel", causal=True),
        Family("gemma3", ("gemma3_text",), "AutoModel", causal=True),
        Family("cohere", ("cohere",), "AutoModel", causal=True),  # Command R, Aya Expanse
    )
}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
ENCODER_FAMILIES: tuple[str, ...] = tuple(name for name, f in FAMILIES.items() if not f.causal)  # adjust, tasks
LLM_FAMILIES: tuple[str, ...] = tuple(name for name, f in FAMILIES.items() if f.causal)
# The names as a type, for the configs (a Literal subscripted with a tuple is the Literal of its items).
FamilyName = Literal[FAMILY_NAMES]
EncoderFamilyName = Literal[ENCODER_FAMILIES]  # where a stage trains the model (adjust, evaluate, the demo's sweep)
