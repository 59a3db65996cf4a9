"""Config loading: strict fields, errors that name the file and the field path."""

import pytest

from xlray.configs import ModelConfig, Strict, load_config, load_stage_config
from xlray.errors import XlrayError


class Inner(Strict):
    size: int = 1


class Outer(Strict):
    model: ModelConfig
    inner: list[Inner] = []


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_valid_config_loads_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "model: {name: bert-base-multilingual-cased}\n"), Outer)
    assert cfg.model.name == "bert-base-multilingual-cased"
    assert cfg.model.trust_remote_code is False and cfg.model.allow_pickle_weights is False


def test_unknown_key_names_file_and_field(tmp_path):
    path = write(tmp_path, "model: {name: x, trust_remote: true}\n")
    with pytest.raises(XlrayError, match=rf"^{path}: model\.trust_remote: unknown field$"):
        load_config(path, Outer)


def test_wrong_type_names_nested_list_index(tmp_path):
    path = write(tmp_path, "model: {name: x}\ninner: [{size: 2}, {size: big}]\n")
    with pytest.raises(XlrayError, match=rf"^{path}: inner\[1\]\.size: Input should be a valid integer"):
        load_config(path, Outer)


def test_malformed_yaml_names_line(tmp_path):
    path = write(tmp_path, "model:\n  name: x\n  - broken\n")
    with pytest.raises(XlrayError, match=rf"^{path}:3: malformed YAML"):
        load_config(path, Outer)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(XlrayError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", Outer)
    with pytest.raises(XlrayError, match="expected a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"), Outer)


def test_stage_key_is_required_and_checked(tmp_path):
    with pytest.raises(XlrayError, match=r"stage: missing"):
        load_stage_config(write(tmp_path, "model: {name: x}\n"))
    with pytest.raises(XlrayError, match=r"stage: unknown stage 'trian'"):
        load_stage_config(write(tmp_path, "stage: trian\n"))


def test_opening_a_run_leaves_the_tracking_environment_alone(tmp_path, monkeypatch):
    import os

    from xlray.configs import TrackingConfig
    from xlray.tracking import open_run

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with open_run(TrackingConfig(uri=f"sqlite:///{tmp_path / 'a.db'}"), "a") as sink:
        sink.log_metrics({"x": 1.0})
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_a_run_opened_in_the_background_gets_every_call_and_its_status(tmp_path):
    """open_run(background=True): calls made while the run opens are replayed in order; an error marks it FAILED."""
    import pytest
    from mlflow.tracking import MlflowClient

    from xlray.configs import TrackingConfig
    from xlray.tracking import DeferredSink, open_run

    uri = f"sqlite:///{tmp_path / 'bg.db'}"
    cfg = TrackingConfig(uri=uri, experiment="bg")
    (tmp_path / "note.txt").write_text("n")
    with open_run(cfg, "ok", tags={"stage": "t"}, background=True) as sink:
        assert isinstance(sink, DeferredSink)
        sink.log_params({"a": {"b": 1}})
        for step in range(3):
            sink.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        sink.log_artifact(tmp_path / "note.txt")
        sink.set_tags({"k": "v"})
    with pytest.raises(ValueError), open_run(cfg, "bad", background=True) as sink:
        sink.log_metrics({"x": 2.0})
        raise ValueError("boom")
    client = MlflowClient(uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("bg").experiment_id])}
    ok, bad = runs["ok"], runs["bad"]
    assert ok.info.status == "FINISHED" and bad.info.status == "FAILED"
    assert ok.data.params == {"a.b": "1"} and ok.data.tags["k"] == "v" and ok.data.tags["stage"] == "t"
    assert [m.value for m in client.get_metric_history(ok.info.run_id, "loss")] == [1.0, 0.5, 1.0 / 3]
    assert [a.path for a in client.list_artifacts(ok.info.run_id)] == ["note.txt"]
    assert bad.data.metrics == {"x": 2.0}
