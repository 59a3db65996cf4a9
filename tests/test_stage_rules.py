"""The rules every stage shares: when an output is finished, and how runs are named and tagged."""

import pytest

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.extract.config import ExtractConfig
from xlray.outputs import write_json
from xlray.stage_rules import finished, result_config, run_name, run_tags


def extract_config(tmp_path, **changes) -> ExtractConfig:
    fields = {"model": ModelConfig(name="m"), "inputs": [{"format": "text", "path": "c.txt", "language": "en"}],
              "languages": ["en"], "output_dir": str(tmp_path)}  # fmt: skip
    return ExtractConfig(**(fields | changes))


def test_a_finished_output_is_returned_unless_its_config_decides_another_result(tmp_path, capsys):
    cfg = extract_config(tmp_path)
    path = tmp_path / "manifest.json"
    assert finished(path, cfg, "extraction") is None
    write_json(path, {"config": cfg.model_dump(mode="json"), "n": 3})  # as extract stores it: tracking and ray too
    elsewhere = extract_config(tmp_path, tracking={"enabled": False}, ray={"address": "auto", "gpu_wait_s": 5})
    assert finished(path, elsewhere, "extraction")["n"] == 3  # where it runs and logs decides nothing
    assert capsys.readouterr().out == f"[extract] {tmp_path} is already complete (manifest.json); nothing to do\n"
    with pytest.raises(XlrayError, match=rf"{path}: output_dir holds a finished extraction with a different config"):
        finished(path, extract_config(tmp_path, cap=3), "extraction")
    assert "tracking" not in result_config(cfg) and "ray" not in result_config(cfg) and "cap" in result_config(cfg)


def test_run_names_and_tags():
    assert run_name("adjust", "bert", "xl+xc") == "adjust-bert-xl+xc"
    assert run_tags("concepts", pair="xd-en") == {"xlray.stage": "concepts", "pair": "xd-en"}


def test_a_stage_that_reuses_part_of_a_finished_run_is_not_refused(tmp_path):
    cfg = extract_config(tmp_path)
    path = tmp_path / "manifest.json"
    write_json(path, {"config": cfg.model_dump(mode="json")})
    assert finished(path, extract_config(tmp_path, cap=3), "extraction", refuse=False) is None


def test_every_stage_config_names_its_stage_by_default():
    from xlray.configs import STAGES, stage_class

    for stage in STAGES:
        assert stage_class(stage).model_fields["stage"].default == stage
