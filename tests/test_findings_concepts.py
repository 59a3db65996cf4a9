"""The findings check's concept clusters: ARI and purity against sklearn and hand-made tables, the bootstrap
statistics, CALIGN/COLAP on points built to be aligned or not, and the points of a real tiny model."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from xlray.concepts.metrics import CalignConfig, ColapConfig
from xlray.configs import ModelConfig
from xlray.findings.concepts import (
    ConceptPoints,
    ari,
    by_class,
    by_concept,
    class_member,
    concept_points,
    contingency,
    layer_scores,
    mean_class_ari,
    mean_concept_ari,
    purity,
)
from xlray.findings.planted import PROBED_CLASSES, probes
from xlray.findings.verdict import paired_finding
from xlray.models import load_model
from xlray.world.build import World, WorldConfig

GOLD = [f"{cls}:{i:02d}" for cls in ("animal", "colour") for i in range(6)]
LANGUAGES = ["en", "xl", "xc"]


def test_ari_matches_sklearn_on_random_labellings():
    rng = np.random.default_rng(0)
    for n_clusters in (2, 7, 30):
        concepts = [str(c) for c in rng.choice(GOLD, 300)]
        labels = rng.integers(0, n_clusters, 300)
        table = contingency(concepts, GOLD, labels, n_clusters)
        assert float(ari(table)) == pytest.approx(adjusted_rand_score(concepts, labels), abs=1e-12)


def test_ari_and_purity_on_hand_made_tables():
    perfect = contingency(["a", "a", "b", "b"], ["a", "b"], np.array([1, 1, 0, 0]), 2)
    assert float(ari(perfect)) == 1.0 and purity(perfect) == 1.0
    one_cluster = contingency(["a", "a", "b", "b"], ["a", "b"], np.zeros(4, dtype=int), 2)
    assert float(ari(one_cluster)) == 0.0 and purity(one_cluster) == 0.5
    crossed = contingency(["a", "a", "b", "b"], ["a", "b"], np.array([0, 1, 0, 1]), 2)  # each cluster mixes both
    assert (
        float(ari(crossed)) == pytest.approx(adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1]))
        and float(ari(crossed)) < 0
    )


def test_the_bootstrap_statistics_score_the_unresampled_tables():
    rng = np.random.default_rng(1)
    tables = [rng.integers(0, 3, (len(GOLD), 12)).astype(float) for _ in range(3)]  # three layers
    units = by_concept(tables)
    assert units.shape == (len(GOLD), 3, 12)
    assert mean_concept_ari(units[None])[0] == pytest.approx(np.mean([float(ari(t)) for t in tables]))
    classes = [float(ari(class_member(GOLD) @ t)) for t in tables]
    assert mean_class_ari(by_class(units, GOLD)[None])[0] == pytest.approx(np.mean(classes))


def points(aligned: bool, seed: int = 0) -> ConceptPoints:
    """Two layers of points, one per (language, concept): with ``aligned`` a concept's points coincide in every
    language (plus noise); without, each language places its concepts on directions of its own."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(GOLD), 32))
    layers = []
    for _ in range(2):
        rows = []
        for _ in LANGUAGES:
            base = centres if aligned else rng.normal(size=centres.shape) + 4 * rng.normal(size=32)
            rows.append(base + 0.05 * rng.normal(size=base.shape))
        layers.append(np.concatenate(rows))
    languages = [lang for lang in LANGUAGES for _ in GOLD]
    return ConceptPoints(languages, GOLD * len(LANGUAGES), layers)


def scores_of(p: ConceptPoints) -> tuple[np.ndarray, list[dict[str, float]]]:
    layers = [layer_scores(p, i, "en", len(GOLD), CalignConfig(), ColapConfig()) for i in range(2)]
    return by_concept([t for t, _ in layers]), [s for _, s in layers]


def test_aligned_points_score_one_and_language_bound_points_do_not():
    units, aligned = scores_of(points(aligned=True))
    assert all(s["ari"] == 1.0 and s["purity"] == 1.0 and s["calign"] == 1.0 and s["colap"] == 1.0 for s in aligned)
    assert all(s["class_ari"] < 1.0 for s in aligned)  # a concept per cluster splits every class
    bound_units, bound = scores_of(points(aligned=False))
    assert all(s["ari"] < 0 and s["colap"] == 0.0 for s in bound)
    # CALIGN stays well above 0: a one-word source cluster always aligns (see xlray.findings.concepts)
    assert all(s["calign"] < 0.75 for s in bound)
    planted = paired_finding("c", "aligned beats bound", "planted", units, bound_units, 0.05, n_resamples=500,
                             statistic=mean_concept_ari)  # fmt: skip
    assert planted.verdict == "reproduced" and planted.effect > 0.9 and planted.n == len(GOLD)
    nothing = paired_finding("d", "bound beats bound", "planted", scores_of(points(False, 1))[0], bound_units, 0.05,
                             n_resamples=500, statistic=mean_concept_ari)  # fmt: skip
    assert nothing.verdict == "not reproduced"  # constructed so that no clustering shares concepts across languages


def test_concept_points_of_a_tiny_model_cover_every_probed_concept_in_every_language(assets):
    world = World(WorldConfig())
    items = probes(world, 40)
    lm = load_model(ModelConfig(name=str(assets / "models" / "bert")))
    p = concept_points(lm, world, items, batch_size=16)
    assert len(p.layers) == lm.model.config.num_hidden_layers + 1
    assert set(p.languages) == set(world.languages)
    assert {c.split(":")[0] for c in p.gold} <= set(PROBED_CLASSES)
    assert len(set(zip(p.languages, p.concepts, strict=True))) == len(p.concepts) == len(p.gold) * len(world.languages)
    assert all(np.linalg.norm(x, axis=1) == pytest.approx(1.0, abs=1e-5) for x in p.layers)
    table, scores = layer_scores(p, 0, world.cfg.source, len(p.gold), CalignConfig(), ColapConfig())
    assert table.sum() == len(p.concepts) and set(scores) == {"ari", "class_ari", "purity", "calign", "colap"}
