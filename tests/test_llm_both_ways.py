"""One tiny LLM seen both ways: `xlray concepts` (CALIGN, COLAP, distances) runs unchanged on its word activations,
and `xlray sentence-alignment` on its sentence vectors draws both levels' curves in one plot."""

import pytest

from xlray.concepts.config import ConceptsConfig
from xlray.concepts.run import run_concepts
from xlray.extract.config import ExtractConfig
from xlray.extract.run import run_extract
from xlray.sentence_alignment.config import SentenceAlignmentConfig
from xlray.sentence_alignment.run import run_sentence_alignment

pytestmark = pytest.mark.integration


def test_word_concepts_and_sentence_alignment_of_one_llm(ray_session, assets, tmp_path):
    world = assets / "world" / "parallel"
    files = {"source": str(world / "xl-en.xl"), "target": str(world / "xl-en.en")}
    extract = {"model": {"name": str(assets / "models" / "gemma2")}, "languages": ["xl", "en"], "gpus_per_actor": 0,
               "inputs": [{"format": "parallel", **files, "source_language": "xl", "target_language": "en"}],
               "tracking": {"enabled": False}}  # fmt: skip
    words = run_extract(ExtractConfig(**extract, output_dir=str(tmp_path / "words")))
    assert words["counts"]["encoder_kept"] > 0 and words["layers"] == [0, 1, 2]
    concepts = run_concepts(ConceptsConfig(
        activations=str(tmp_path / "words"), source="xl", target="en", output_dir=str(tmp_path / "concepts"),
        dictionary={"kind": "eflomal", **files}, points={"pca_dim": 16},
        clustering={"method": "fast-hdbscan", "min_cluster_size": 5}, tracking={"enabled": False},
    ))  # fmt: skip
    assert set(concepts["results"]) == {"0", "1", "2"}
    assert all(concepts["results"][layer].get("colap") is not None for layer in concepts["results"])
    run_extract(ExtractConfig(**extract, output_dir=str(tmp_path / "sentences"), granularity="sentence",
                              sentence_pooling="mexa"))  # fmt: skip
    scores = run_sentence_alignment(SentenceAlignmentConfig(
        activations=str(tmp_path / "sentences"), output_dir=str(tmp_path / "mexa"), pivot="en",
        concepts=[str(tmp_path / "concepts")], tracking={"enabled": False},
    ))  # fmt: skip
    assert scores["pairs"] == ["en-xl"] and set(scores["results"]) == {"0", "1", "2"}
    assert 0.0 <= scores["aggregates"]["en-xl"]["mexa_mean"] <= 1.0
    plot = tmp_path / "mexa" / "word_and_sentence.png"
    assert plot.is_file() and plot.stat().st_size > 10_000
