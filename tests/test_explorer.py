"""The concept explorer's data and page, without a browser or Ray: a hand-made extraction folder and assignments."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xlray.concepts.config import ConceptsConfig
from xlray.concepts.explorer import explorer_data, write_explorer
from xlray.concepts.explorer_data import calign_view
from xlray.concepts.explorer_gold import gold_purity, read_gold, with_gold
from xlray.concepts.explorer_map import sample_quota
from xlray.concepts.explorer_page import unembedded
from xlray.concepts.metrics import CalignConfig, calign, colap, word_clusters

LAYERS = [0, 1]
HIDDEN = 8


def write_activations(folder: Path, rows: pl.DataFrame, rng: np.random.Generator) -> None:
    """A finished word-level extraction of ``rows`` (sentence_id, language, word, word_index) at LAYERS."""
    tables = []
    for layer in LAYERS:
        vectors = rng.normal(size=(rows.height, HIDDEN)).astype(np.float32)
        table = rows.with_columns(site=pl.lit("encoder"), layer=pl.lit(layer, pl.Int16)).to_arrow()
        flat = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), HIDDEN)
        tables.append(table.append_column("vector", flat))
    (folder / "shards").mkdir(parents=True)
    pq.write_table(pa.concat_tables(tables), folder / "shards" / "all.parquet")
    config = {"languages": ["xx", "yy"], "sites": ["encoder"], "granularity": "word", "model": {"name": "fake"}}
    manifest = {"layers": LAYERS, "config": config, "shards": ["shards/all.parquet"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def occurrences(n_sentences: int, rng: np.random.Generator) -> pl.DataFrame:
    """Sentences of 4 words per language; word k of language xx is 'x<k>', its translation 'y<k>'."""
    rows = []
    for line in range(1, n_sentences + 1):
        ks = rng.integers(0, 40, 4)
        for lang, prefix in (("xx", "x"), ("yy", "y")):
            rows += [(f"w-xx:{line}", lang, f"{prefix}{k}", i) for i, k in enumerate(ks)]
    schema = {"sentence_id": pl.String, "language": pl.String, "word": pl.String, "word_index": pl.Int32}
    return pl.DataFrame(rows, schema=schema, orient="row")


def assignments_of(rows: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Clusters by word number (k // 5, some noise): both languages' views and a joint view, at LAYERS."""
    k = rows["word"].str.slice(1).cast(pl.Int64).to_numpy()
    frames = []
    for layer in LAYERS:
        for view in ("xx", "yy", "joint"):
            part = rows if view == "joint" else rows.filter(pl.col("language") == view)
            kk = k if view == "joint" else k[(rows["language"] == view).to_numpy()]
            labels = np.where(rng.random(len(kk)) < 0.15, -1, (kk + layer) // 5)
            frames.append(part.with_columns(layer=pl.lit(layer, pl.Int64), view=pl.lit(view), cluster=labels))
    return pl.concat(frames).select("layer", "view", "language", "sentence_id", "word", "word_index", "cluster")


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """(config, assignments, results, forward, reverse) of a small run whose results come from calign and colap."""
    rng = np.random.default_rng(0)
    tmp = tmp_path_factory.mktemp("explorer")
    rows = occurrences(150, rng)
    write_activations(tmp / "activations", rows, rng)
    assignments = assignments_of(rows, rng)
    gold = rows.select(
        "language",
        (pl.col("sentence_id").str.extract(r":(\d+)$").cast(pl.Int64) - 1).alias("sentence"),
        pl.col("word_index").alias("index"),
        "word",
        ("c" + (pl.col("word").str.slice(1).cast(pl.Int64) // 10).cast(pl.String)).alias("concept"),
    )
    gold.write_parquet(tmp / "words.parquet")
    forward = {f"x{k}": [f"y{k}"] for k in range(40)}
    reverse = {f"y{k}": [f"x{k}"] for k in range(40)}
    cfg = ConceptsConfig(
        activations=str(tmp / "activations"),
        source="xx",
        target="yy",
        dictionary={"kind": "file", "path": str(tmp / "unused.parquet")},
        calign={"theta": 0.5},
        explorer={"map_points": 100, "top_words": 3, "gold_words": str(tmp / "words.parquet")},
        output_dir=str(tmp / "concepts"),
    )
    results = {}
    for layer in LAYERS:
        at = assignments.filter(pl.col("layer") == layer)
        src, tgt, joint = (at.filter(pl.col("view") == v) for v in ("xx", "yy", "joint"))
        clusters = [word_clusters(f["word"].to_list(), f["cluster"].to_numpy()) for f in (src, tgt)]
        results[layer] = {
            "calign.xx_yy": calign(clusters[0], clusters[1], forward, cfg.calign).value,
            "calign.yy_xx": calign(clusters[1], clusters[0], reverse, cfg.calign).value,
            "colap": colap(joint["cluster"].to_numpy(), joint["language"].to_list(), ("xx", "yy"), cfg.colap).value,
            "noise_fraction.joint": float((joint["cluster"] < 0).mean()),
        }
    return cfg, assignments, results, forward, reverse


@pytest.fixture(scope="module")
def data(fake_run):
    cfg, assignments, results, forward, reverse = fake_run
    return explorer_data(cfg, assignments, results, forward, reverse, "test run")


def test_the_pages_alignment_details_agree_with_calign_and_colap(data, fake_run):
    _, _, results, _, _ = fake_run
    assert [layer["layer"] for layer in data["layers"]] == LAYERS
    for layer in data["layers"]:
        res = results[layer["layer"]]
        assert layer["metrics"] == res
        for view, metric in (("source", "calign.xx_yy"), ("target", "calign.yy_xx")):
            v = layer["views"][view]
            assert len(v["matches"]) == len(v["id"])
            aligned = sum(any(m[3] for m in found) for found in v["matches"]) / len(v["id"])
            assert aligned == pytest.approx(res[metric])
        joint = layer["views"]["joint"]
        assert sum(joint["overlap"]) / len(joint["id"]) == pytest.approx(res["colap"])


def test_a_concepts_members_counts_and_a_words_home(data, fake_run):
    _, assignments, _, _, _ = fake_run
    layer = data["layers"][1]
    v, vocab = layer["views"]["source"], data["vocab"]["xx"]
    kept = assignments.filter((pl.col("layer") == 1) & (pl.col("view") == "xx") & (pl.col("cluster") >= 0))
    for r, label in enumerate(v["id"]):
        members = kept.filter(pl.col("cluster") == label)["word"].value_counts()
        counts = dict(members.iter_rows())
        assert v["size"][r] == sum(counts.values()) and v["types"][r] == [len(counts)]
        top = [(vocab[w], n) for w, n in zip(v["words"][r][0], v["counts"][r][0], strict=True)]
        assert len(top) == min(3, len(counts)) and all(counts[w] == n for w, n in top)
        assert [n for _, n in top] == sorted(counts.values(), reverse=True)[: len(top)]
    word = "x7"
    per_cluster = kept.filter(pl.col("word") == word)["cluster"].value_counts().sort(["count", "cluster"])
    best = per_cluster.filter(pl.col("count") == per_cluster["count"].max())["cluster"].min()
    assert v["home"]["xx"][vocab.index(word)] == best


def test_matches_list_every_aligned_concept_then_the_best_by_m():
    src = pl.DataFrame({"word": ["a", "b", "c", "d", "e", "f"], "cluster": [0, 0, 0, 0, 1, 1]})
    tgt = pl.DataFrame({"word": ["A", "B", "C", "D", "A2", "E"], "cluster": [5, 5, 6, 7, 8, -1]})
    d = {"a": ["A"], "b": ["B"], "c": ["C"], "d": ["D"], "e": ["A2"], "f": ["E"]}
    index = ({w: i for i, w in enumerate("abcdef")}, {w: i for i, w in enumerate(["A", "A2", "B", "C", "D", "E"])})
    rows = calign_view(src, tgt, d, CalignConfig(theta=0.3), index, top=2)
    # S0: T5 has m=2 (a, b) of 4 > 0.3, T6 and T7 m=1 (0.25, not aligned): T5 then the best other (T6, by id)
    assert rows[0] == [[5, 2, 2, 1, [0, 0, 1, 2]], [6, 1, 1, 0, [2, 3]]]
    # S1: e -> A2 in T8 (1 of 2 > 0.3, aligned); f's translation is noise
    assert rows[1] == [[8, 1, 1, 1, [4, 1]]]
    assert calign_view(src, tgt, d, CalignConfig(theta=0.1), index, top=1)[0] == [
        [5, 2, 2, 1, [0, 0, 1, 2]], [6, 1, 1, 1, [2, 3]], [7, 1, 1, 1, [3, 4]],
    ]  # fmt: skip


def test_gold_majority_and_purity_on_a_hand_made_case(tmp_path):
    ids = ["c:1", "c:1", "c:2", "c:2", "c:3", "other", "c:3"]
    frame = pl.DataFrame({
        "layer": [0] * 7, "view": ["xx"] * 7, "language": ["xx"] * 7, "sentence_id": ids,
        "word": ["cat", "dog", "cat", "red", "cat", "cat", "blue"], "word_index": [0, 1, 0, 1, 0, 0, 1],
        "cluster": [0, 0, 0, 0, 1, 1, -1],
    })  # fmt: skip
    gold = pl.DataFrame({
        "language": ["xx"] * 6, "sentence": [0, 0, 1, 1, 2, 2], "index": [0, 1, 0, 1, 0, 1],
        "word": ["cat", "dog", "cat", "red", "cat", "blue"],
        "concept": ["animal", "animal", "animal", "colour", "animal", "colour"],
    })  # fmt: skip
    gold.write_parquet(tmp_path / "words.parquet")
    labelled = with_gold(frame, read_gold(str(tmp_path / "words.parquet")))
    # Occurrence-level: line 1 of the ids is gold sentence 0; 'other' has no line, so no label.
    assert labelled["gold"].to_list() == ["animal", "animal", "animal", "colour", "animal", None, "colour"]
    purity = {row[0]: row[1:] for row in gold_purity(labelled).sort("cluster").iter_rows()}
    assert purity == {0: ("animal", 0.75, 4), 1: ("animal", 1.0, 1)}  # noise (-1) is no concept
    with pytest.raises(Exception, match="explorer.gold_words: .*no such file"):
        read_gold(str(tmp_path / "missing.parquet"))


def test_the_gold_labels_of_the_page(data):
    gold = data["gold"]
    assert gold["matched"] == gold["occurrences"] > 0 and gold["concepts"] == ["c0", "c1", "c2", "c3"]
    vocab = data["vocab"]["xx"]
    assert gold["concepts"][gold["word"]["xx"][vocab.index("x17")]] == "c1"
    joint = data["layers"][0]["views"]["joint"]
    # layer 0 clusters k // 5: each holds the words of one gold concept k // 10
    assert all(purity == 1.0 for _, purity in joint["gold"])


def test_sample_quota_is_bounded_and_proportional():
    assert sample_quota({"a": 10, "b": 20}, 100) == {"a": 10, "b": 20}
    quota = sample_quota({"a": 1001, "b": 2002, "c": 7}, 1000)
    assert sum(quota.values()) == 1000 and abs(quota["a"] - 333) <= 1 and abs(quota["b"] - 666) <= 1
    assert quota["c"] in (2, 3)


def test_the_map_samples_at_most_map_points_a_layer(data, fake_run):
    _, assignments, _, _, _ = fake_run
    for layer in data["layers"]:
        m = layer["map"]
        assert m["total"] == 1200 and m["shown"] == 100 == len(m["x"]) == len(m["word"]) == len(m["concept"]["joint"])
        assert m["method"] == "PCA" and 0 <= min(m["x"]) and max(m["x"]) <= 1000
        assert sorted(set(m["language"])) == [0, 1]
        # A point's concept is its occurrence's concept: check the joint labels of one word's sampled points.
        joint = assignments.filter((pl.col("layer") == layer["layer"]) & (pl.col("view") == "joint"))
        for i in range(5):
            lang = data["languages"][m["language"][i]]
            word = data["vocab"][lang][m["word"][i]]
            labels = set(joint.filter((pl.col("language") == lang) & (pl.col("word") == word))["cluster"].to_list())
            assert m["concept"]["joint"][i] in labels
        own = m["concept"]["source"]
        assert all(c == -1 for c, lang in zip(own, m["language"], strict=True) if lang == 1)


class Links(HTMLParser):
    """Every src and href attribute of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]


def test_the_page_is_self_contained(fake_run, tmp_path):
    cfg, assignments, results, forward, reverse = fake_run
    tricky = assignments.with_columns(
        word=pl.when(pl.col("word") == "x3").then(pl.lit("</script><b>")).otherwise(pl.col("word"))
    )
    names = write_explorer(cfg, str(tmp_path), tricky, results, forward, reverse, "A <title>")
    assert names == ["explorer.html", "explorer.json"]
    page = (tmp_path / "explorer.html").read_text(encoding="utf-8")
    links = Links()
    links.feed(page)
    assert not [url for url in links.urls if re.match(r"\s*(https?:)?//", url)]
    assert not re.search(r"https?://", page)
    assert "default-src 'none'" in page and "<title>A &lt;title&gt;</title>" in page
    # The embedded data is explorer.json, and no word, '</script>' included, shows in the page as text.
    on_disk = json.loads((tmp_path / "explorer.json").read_text(encoding="utf-8"))
    assert unembedded(page) == on_disk and "</script><b>" in on_disk["vocab"]["xx"]
    outside_data = re.sub(r'(id="explorer-data"[^>]*>)[A-Za-z0-9+/=]*<', r"\1<", page)  # base64 may hold "x3"
    assert "x3" not in outside_data and page.count("</script>") == 2  # the data's and the script's
