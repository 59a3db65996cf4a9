"""The cluster-scale run of tests/test_multinode_s3.py, in a process of its own (a Ray driver can join only one
cluster, and the test session already holds a local Ray): a real 3-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``: three raylets with one CPU each), every input and every output in one bucket of the
S3-compatible server at $AWS_ENDPOINT_URL, and nothing under a local path but the scratch folder.

    python tests/multinode_s3_run.py ASSETS BUCKET SCRATCH   ->  one JSON line on stdout: what the test checks

ASSETS is a local world and tiny bert (``xlray.world.assets.write_assets``); it is uploaded to BUCKET/assets first,
so the stages read the world, the corpora, the dictionary's parallel files, the task files and the model from
the bucket, as on a cluster without a shared volume.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(assets: str, bucket: str, scratch: str) -> dict:
    os.environ["XLRAY_SCRATCH"] = scratch
    from ray.cluster_utils import Cluster

    from xlray.concepts.config import ConceptsConfig
    from xlray.concepts.run import run_concepts
    from xlray.extract.config import ExtractConfig
    from xlray.extract.run import run_extract
    from xlray.outputs import upload
    from xlray.storage import join
    from xlray.sweep.config import SweepConfig
    from xlray.sweep.run import run_sweep

    for part in ("world", "models/bert"):
        upload(Path(assets) / part, join(bucket, "assets", *part.split("/")))
    world, model = join(bucket, "assets", "world"), join(bucket, "assets", "models", "bert")
    parallel = join(world, "parallel")
    xl, en = join(parallel, "xl-en.xl"), join(parallel, "xl-en.en")

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray_cfg = {"address": cluster.address}
    tracking = {"uri": f"sqlite:///{Path(scratch) / 'mlflow.db'}", "experiment": "multinode"}
    try:
        extract = ExtractConfig.model_validate({
            "model": {"name": model}, "languages": ["en", "xl"], "output_dir": join(bucket, "extract"),
            "inputs": [{"format": "parallel", "source": xl, "target": en, "source_language": "xl",
                        "target_language": "en"}],
            "chunk_lines": 100, "actors": 2, "ray": ray_cfg, "tracking": tracking,
        })  # fmt: skip
        run_extract(extract)
        concepts = ConceptsConfig.model_validate({
            "activations": extract.output_dir, "source": "xl", "target": "en", "output_dir": join(bucket, "concepts"),
            "dictionary": {"kind": "eflomal", "source": xl, "target": en},
            "points": {"pca_dim": 8}, "clustering": {"method": "fast-hdbscan", "min_cluster_size": 5},
            "ray": ray_cfg, "tracking": tracking,
        })  # fmt: skip
        manifest = run_concepts(concepts)
        xnli = join(world, "tasks", "xnli")
        sweep = SweepConfig.model_validate({
            "stage": "sweep", "name": "multinode", "output_dir": join(bucket, "sweep"),
            "models": {"bert": {"name": model}}, "languages": ["xl"],
            "space": {"adjust.loss.reg_lambda": {"grid": [0.0, 1.0]}},
            "adjust": {"corpus": {"format": "lines", "source": join(parallel, "{lang}-en.{lang}"),
                                  "english": join(parallel, "{lang}-en.en")},
                       "pairs": {"max_sent": 200, "heldout_sent": 50}, "optim": {"lr": 5e-4}},
            "evaluate": {"task": {"kind": "nli", "train": join(xnli, "multinli.train.en.tsv"),
                                  "test": join(xnli, "xnli.test.tsv"), "dev": join(xnli, "xnli.dev.tsv"),
                                  "epochs": 1, "batch_size": 16},
                         "seeds": [0], "significance": {"n_resamples": 100}},
            "conditions": ["base", "adjusted"],
            "search": {"algorithm": "grid", "metric": "zero_shot.adjusted.targets_mean.dev_accuracy", "mode": "max"},
            "resources": {"cpu": 1}, "ray": ray_cfg, "tracking": tracking,
        })  # fmt: skip
        swept = run_sweep(sweep)
        nodes = sorted(node["NodeID"] for node in __import__("ray").nodes() if node["Alive"])
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    return {"nodes": nodes, "concepts": manifest, "sweep": swept}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4]), default=str))
