"""Translation-specific word alignment per layer, measured against a same-context, same-class control.

For each gold link between a target-language word and its English translation, the control is the English
sentence with that one word replaced by another concept of the same class (``animal:03`` for ``animal:05``). The
two English words then share their context, their position and their class, and differ only in which one is the
translation. The score of a link at layer l is

    win = 1 if cos(h_l(target word), h_l(English translation)) > cos(h_l(target word), h_l(control word)) else 0

and the translation advantage of a meaning is the mean win over its links in every target language, minus 1/2.
A model that has not learned which target word translates which English word scores 0 in expectation: in the
world, concepts of a class are exchangeable (drawn uniformly and independently), so context alone cannot tell
them apart. The win is scale-free, so layers and models with different cosine scales compare directly. Class
similarity, shared context and shared anchor tokens (names, digits) cancel out; they are what inflates a gap
against a random word.

Only classes that have their own form in every language are probed (names and digits are shared strings), and
not the concepts the world writes alike in every language (its anchors, ``WorldConfig.anchors``): their
translation is the same string.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from xlray.world.build import World
from xlray.world.grammar import alignment
from xlray.world.languages import CONCEPT_CLASSES, OWN_FORM_CLASSES

PROBED_CLASSES = OWN_FORM_CLASSES
HELDOUT = "findings-heldout"  # the meaning stream of the probes: not the stream the models are trained on


@dataclass(frozen=True)
class Probe:
    """One held-out sentence pair: ``links`` are (target index, English index, control English form)."""

    meaning: int  # the index of its meaning among the held-out ones: the unit of the paired tests
    language: str
    target: list[str]
    english: list[str]
    links: list[tuple[int, int, str]]


def probes(world: World, n: int, seed: int = 0, skip: Collection[str] = ()) -> list[Probe]:
    """``n`` held-out meanings rendered in every target language, each link with its control word; the concepts in
    ``skip`` are neither linked nor controls (with the same ``skip``, every world draws the same controls)."""
    rng = random.Random(f"{seed}:{HELDOUT}:control")
    english = world.languages[world.cfg.source]
    out = []
    for number, meaning in enumerate(world.meanings(HELDOUT, n)):
        en_words = world.render(meaning, world.cfg.source)
        for code in world.targets:
            words = world.render(meaning, code)
            links = []
            for i, j in alignment(words, en_words):
                cls, index = en_words[j].concept.split(":")
                if cls in PROBED_CLASSES:
                    control = control_concept(cls, int(index), skip, rng)
                    if en_words[j].concept not in skip and control is not None:
                        links.append((i, j, english.form(control)))
            if links:
                out.append(Probe(number, code, [w.form for w in words], [w.form for w in en_words], links))
    return out


def control_concept(cls: str, index: int, skip: Collection[str], rng: random.Random) -> str | None:
    """Another concept of the class, uniformly among those not in ``skip`` (an anchor is seen in every language's
    text, so as a control it would sit closer to any target word); None if there is none."""
    n = CONCEPT_CLASSES[cls]
    allowed = [c for c in (f"{cls}:{(index + k) % n:02d}" for k in range(1, n)) if c not in skip]
    return allowed[rng.randrange(len(allowed))] if allowed else None


def word_vectors(lm: Any, sentences: list[list[str]]) -> list[np.ndarray]:
    """Mean-pooled word vectors per layer, ``[n_words_total, hidden]`` each, words in sentence order."""
    import torch

    from xlray.adjust.loss import inputs_of
    from xlray.models import layer_states
    from xlray.wordmap import encode_words, pool_words

    enc = encode_words(lm.tokenizer, sentences, lm.max_length)
    if enc.truncated.any():
        raise ValueError("a probe sentence is longer than the model's token limit")
    with torch.inference_mode():
        states = layer_states(lm, inputs_of(enc))["encoder"]
        return [pool_words(h, enc, "mean").float().cpu().numpy() for h in states]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def link_cosines(lm: Any, items: list[Probe], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos(target word, its translation), cos(target word, the control) and cos(target word, an unrelated English
    word): three ``[n_links, n_layers + 1]`` arrays (layer 0 = embeddings), links in probe order.

    The unrelated word is the English word of the link half a batch away: another meaning's word, of any class
    (Efimov et al. 2023's unrelated pairs)."""
    translation, control, unrelated = [], [], []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        controls = [p.english[:j] + [form] + p.english[j + 1 :] for p in batch for _, j, form in p.links]
        tgt, en, ctl = (word_vectors(lm, s) for s in ([p.target for p in batch], [p.english for p in batch], controls))
        t_off = np.cumsum([0] + [len(p.target) for p in batch])
        e_off = np.cumsum([0] + [len(p.english) for p in batch])
        t_rows = np.array([t_off[k] + i for k, p in enumerate(batch) for i, _, _ in p.links])
        e_rows = np.array([e_off[k] + j for k, p in enumerate(batch) for _, j, _ in p.links])
        c_rows = np.cumsum([0] + [len(c) for c in controls])[:-1] + np.array([j for p in batch for _, j, _ in p.links])
        u_rows = np.roll(e_rows, max(1, len(e_rows) // 2))
        a = [unit(t[t_rows]) for t in tgt]
        for out, vectors, rows in ((translation, en, e_rows), (control, ctl, c_rows), (unrelated, en, u_rows)):
            out.append(np.stack([(x * unit(v[rows])).sum(-1) for x, v in zip(a, vectors, strict=True)], axis=1))
    return np.concatenate(translation), np.concatenate(control), np.concatenate(unrelated)


def by_meaning(values: np.ndarray, items: list[Probe]) -> np.ndarray:
    """Per-link values ``[n_links, k]`` averaged over each meaning's links (all languages): ``[n_meanings, k]``,
    meanings in order; a meaning without links has no row."""
    owner = np.repeat([p.meaning for p in items], [len(p.links) for p in items])
    meanings, owner = np.unique(owner, return_inverse=True)
    counts = np.bincount(owner, minlength=len(meanings))[:, None]
    sums = np.zeros((len(meanings), values.shape[1]))
    np.add.at(sums, owner, values)
    return sums / counts


@dataclass(frozen=True)
class ProbeScores:
    """One model's scores on the probes, per meaning (all languages) and layer."""

    advantage: np.ndarray  # translation advantage [meanings, layers]
    related_gap: np.ndarray  # cos(translation) - cos(an unrelated word) [meanings, layers]
    cosine_gap: list[float]  # mean cos(translation) - cos(control), per layer


def probe_scores(lm: Any, items: list[Probe]) -> ProbeScores:
    """The translation advantage and the related gap of a loaded model on the probes."""
    translation, control, unrelated = link_cosines(lm, items)
    return ProbeScores(
        translation_advantage(translation, control, items),
        by_meaning(translation - unrelated, items),
        (translation - control).mean(axis=0).tolist(),
    )


def translation_advantage(translation: np.ndarray, control: np.ndarray, items: list[Probe]) -> np.ndarray:
    """``[n_meanings, n_layers + 1]``: the share of a meaning's links whose translation beats the control, - 1/2."""
    return by_meaning((translation > control).astype(float), items) - 0.5
