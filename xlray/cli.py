"""The `xlray` command: one subcommand per stage; user errors are one line and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable

from xlray.errors import RunFailure, XlrayError

# Stage subcommands: name -> "module:function" taking the config path (lazy imports keep start-up cheap).
STAGE_RUNNERS: dict[str, str] = {
    "extract": "xlray.extract.run:main",
    "concepts": "xlray.concepts.run:main",
    "sentence-alignment": "xlray.sentence_alignment.run:main",
    "adjust": "xlray.adjust.run:main",
    "evaluate": "xlray.evaluate.run:main",
    "findings": "xlray.findings.run:main",
}


def load(target: str) -> Callable:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def cmd_config_show(args: argparse.Namespace) -> int:
    from xlray.configs import load_stage_config

    cfg = load_stage_config(args.file)
    print(json.dumps(cfg.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Load each config; a sweep also passes every check `xlray sweep` makes before its first trial
    (``xlray.sweep.checks.preflight``). Only whether a trial's resources fit a node waits for the running cluster."""
    from xlray.configs import load_stage_config
    from xlray.sweep.config import SweepConfig

    for path in args.files:
        cfg = load_stage_config(path)
        note = ""
        if isinstance(cfg, SweepConfig):
            from xlray.sweep.checks import preflight

            try:
                preflight(cfg)
            except XlrayError as exc:
                raise XlrayError(f"{path}: {exc}") from None
            note = " (resources: checked against the cluster when the sweep starts)"
        print(f"{path}: ok{note}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from xlray.demo import run_demo

    return run_demo(args.config, args.output)


def share(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def cmd_world(args: argparse.Namespace) -> int:
    from xlray.families import FAMILY_NAMES
    from xlray.world.assets import write_assets
    from xlray.world.build import WorldConfig
    from xlray.world.pretrain import PretrainConfig, objective

    pretrain = None
    if args.pretrain:
        pretrain = PretrainConfig(**({"steps": args.pretrain_steps} if args.pretrain_steps else {}))
        if args.families != list(FAMILY_NAMES):  # a family named explicitly that cannot be pretrained is an error
            for family in args.families:
                objective(family)
    world = WorldConfig(anchors=args.anchors, word_order=args.word_order)
    out = write_assets(args.output, families=args.families, world=world, pretrain=pretrain)
    print(f"synthetic world and tiny models: {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from xlray.sweep.run import main as sweep

    return sweep(args.config, resume=args.resume, output=args.output)


def cmd_report(args: argparse.Namespace) -> int:
    from xlray.sweep.report import main as report

    return report(args.config)


def cmd_stage(args: argparse.Namespace) -> int:
    return load(STAGE_RUNNERS[args.command])(args.config) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlray", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks (or set XLRAY_DEBUG=1)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show Ray's, Tune's and MLflow's logs (always in output_dir/xlray.log)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="inspect configs").add_subparsers(dest="action", required=True)
    show = config.add_parser("show", help="print the fully resolved config")
    show.add_argument("file")
    show.set_defaults(func=cmd_config_show)

    validate = sub.add_parser("validate", help="check configs fully without running anything")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_validate)

    demo = sub.add_parser("demo", help="run the main job locally on the synthetic world and tiny models")
    demo.add_argument("--config", default=None, help="a demo config (default: the embedded one)")
    demo.add_argument("--output", default="xlray-runs/demo", help="output folder")
    demo.set_defaults(func=cmd_demo)

    from xlray.families import FAMILY_NAMES

    world = sub.add_parser("world", help="write the synthetic world and tiny models")
    world.add_argument("--output", default="xlray-runs/world")
    world.add_argument(
        "--families", nargs="+", choices=FAMILY_NAMES, default=list(FAMILY_NAMES), help="default: every family"
    )
    world.add_argument(
        "--pretrain",
        action="store_true",
        help="also pretrain the tiny models on the world (models/<family>-pretrained)",
    )
    world.add_argument("--pretrain-steps", type=int, help="optimiser steps per model (default 1500)")
    world.add_argument("--anchors", type=share, default=0.0, help="share of content words written as in English")
    world.add_argument("--word-order", type=share, default=0.0, help="share of sentences in English's word order")
    world.set_defaults(func=cmd_world)

    from xlray.submit import add_submit_parser

    add_submit_parser(sub)

    sweep = sub.add_parser("sweep", help="run a Ray Tune sweep (trials: adjust -> zero-shot tasks -> alignment)")
    sweep.add_argument("config")
    sweep.add_argument("--resume", action="store_true", help="finish a sweep that stopped; done trials are kept")
    sweep.add_argument("--output", default=None, help="output folder instead of the config's output_dir")
    sweep.set_defaults(func=cmd_sweep)

    report = sub.add_parser("report", help="tables and plots comparing a sweep's trials, from MLflow")
    report.add_argument("config", help="the sweep's config file")
    report.set_defaults(func=cmd_report)

    for name in STAGE_RUNNERS:
        stage = sub.add_parser(name, help=f"run the {name} stage from a config file")
        stage.add_argument("config")
        stage.set_defaults(func=cmd_stage)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand: bad input is one line and exit status 2, a failed run one line and exit status 1."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("XLRAY_DEBUG", "") not in ("", "0")
    if args.verbose:
        os.environ["XLRAY_VERBOSE"] = "1"  # read by xlray.console here and in Ray workers started from here
    try:
        return int(args.func(args) or 0)
    except XlrayError as exc:
        if debug:
            raise
        print(f"xlray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xlray: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a failed run is one line; the traceback is for --debug
        if debug:
            if isinstance(exc, RunFailure) and exc.detail:
                print(exc.detail, file=sys.stderr)
            raise
        failure = as_failure(exc)
        if isinstance(failure, XlrayError):  # the user's error, raised inside a Ray worker
            print(f"xlray: error: {failure}", file=sys.stderr)
            return 2
        print(f"xlray: failed: {failure} (xlray --debug shows the traceback)", file=sys.stderr)
        return 1


def run() -> None:
    """The console script (``xlray`` and ``python -m xlray``): ``main``, then a quick exit.

    Everything this process wrote is complete when ``main`` returns, so Ray is shut down here, output and logs are
    flushed, and the process ends without the interpreter's slow teardown of torch, transformers and Ray (seconds
    on a small machine). Code that calls ``main`` in-process (tests, notebooks) keeps its process as it is.
    """
    code = main()
    import logging

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def as_failure(exc: Exception) -> XlrayError | RunFailure:
    """A failure that is not plain bad input, as one line: Ray's cause dug out of its wrappers, or the exception."""
    if isinstance(exc, RunFailure):
        return exc
    from xlray.ray_failures import ray_failure

    return ray_failure(exc, "run")
