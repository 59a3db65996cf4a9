"""Benchmark sweep overhead: the share of a sweep's wall time not spent inside trial compute.

    python tests/benchmarks/bench_sweep.py                      # 4 trials, one at a time (~35 s each on 2 cores)
    python tests/benchmarks/bench_sweep.py --trials 2 --epochs 2 --repeats 3

Runs a real `xlray sweep` (local Ray, Tune, sqlite MLflow, report) on the synthetic world: the tiny bert adjusted on
one language with --trials values of reg_lambda, then NLI base / adjusted / continual. Trials run one at a time so
they do not share the 2 cores, hence ideal wall time = the sum of the trials' own compute (``trial_seconds``, timed
inside each trial from its first to its last step). Overhead = 1 - sum(trial_seconds) / wall, where wall covers
everything `run_sweep` does on a running Ray: checks, the parent run, Tune scheduling and trial actors, and the
report. Starting the local Ray is timed apart (a cluster job joins a running one) and also printed included.
The synthetic world and tiny model are built once, before timing. Target: overhead < 10% with trials of >= 30 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument(
        "--epochs", type=int, default=24, help="NLI epochs per condition: 16 gave 25 s trials here, 60 gave 90 s"
    )
    p.add_argument("--repeats", type=int, default=1, help="whole sweeps; medians are printed")
    return p.parse_args(argv)


def sweep_config(assets: Path, out: Path, trials: int, epochs: int):
    from xlray.sweep.config import SweepConfig

    world, xnli = assets / "world", assets / "world" / "tasks" / "xnli"
    return SweepConfig.model_validate({
        "stage": "sweep", "name": "bench", "output_dir": str(out),
        "models": {"bert": {"name": str(assets / "models" / "bert")}},
        "languages": ["xl"],
        "space": {"adjust.loss.reg_lambda": {"grid": [round(i / max(1, trials - 1), 3) for i in range(trials)]}},
        "adjust": {"corpus": {"format": "lines", "source": str(world / "parallel" / "{lang}-en.{lang}"),
                              "english": str(world / "parallel" / "{lang}-en.en")},
                   "pairs": {"max_sent": 2000, "heldout_sent": 200}, "optim": {"lr": 5e-4}},
        "evaluate": {"task": {"kind": "nli", "train": str(xnli / "multinli.train.en.tsv"),
                              "test": str(xnli / "xnli.test.tsv"), "lr": 1e-3, "epochs": epochs, "batch_size": 16},
                     "significance": {"n_resamples": 1000}},
        "search": {"max_concurrent_trials": 1},
        "resources": {"cpu": 2},
        "ray": {"num_cpus": 2},
        "tracking": {"uri": f"sqlite:///{out / 'mlflow.db'}", "experiment": "bench"},
    })  # fmt: skip


def one_sweep(assets: Path, out: Path, trials: int, epochs: int) -> tuple[float, float, list[float]]:
    """Seconds to start the local Ray, wall seconds of the sweep on it, and each trial's own compute seconds.

    Ray is started first and timed apart: on a cluster the job joins a running Ray, so only local debug runs pay it.
    """
    import ray

    from xlray.runtime import start_ray
    from xlray.sweep.run import run_sweep

    cfg = sweep_config(assets, out, trials, epochs)
    started = time.perf_counter()
    start_ray(cfg.ray)
    ray_start = time.perf_counter() - started
    started = time.perf_counter()
    manifest = run_sweep(cfg)
    wall = time.perf_counter() - started
    ray.shutdown()
    return ray_start, wall, [t["result"]["trial_seconds"] for t in manifest["trials"].values()]


def main(argv: list[str] | None = None) -> None:
    from xlray.world.assets import write_assets

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        assets = write_assets(Path(tmp) / "assets", families=["bert"])
        rows = []
        for k in range(args.repeats):
            ray_start, wall, trial_s = one_sweep(assets, Path(tmp) / f"sweep-{k}", args.trials, args.epochs)
            overhead = 1 - sum(trial_s) / wall
            with_start = 1 - sum(trial_s) / (wall + ray_start)
            rows.append((wall, statistics.median(trial_s), overhead, with_start))
            print(f"run {k + 1}: wall {wall:.1f} s, {len(trial_s)} trials of median {statistics.median(trial_s):.1f} s "
                  f"(min {min(trial_s):.1f}), sum {sum(trial_s):.1f} s -> overhead {overhead:.1%}; "
                  f"with the local Ray start-up ({ray_start:.1f} s) {with_start:.1%}")  # fmt: skip
    wall, trial, overhead, with_start = (statistics.median(col) for col in zip(*rows, strict=True))
    print(f"median over {len(rows)} sweep(s): wall {wall:.1f} s, trial {trial:.1f} s, overhead {overhead:.1%} "
          f"(target < 10% with trials >= 30 s); {with_start:.1%} counting the local Ray start-up")  # fmt: skip


if __name__ == "__main__":
    main()
