import copy

import pytest
import yaml

from zoorepro.config import PARAMS_PATH, load_params, results_dir, target_settings, validate
from zoorepro.errors import ConfigError


def test_params_yaml_is_valid():
    params = load_params()
    assert params["vilbert"]["batch_sizes"] == [1, 4, 8, 16, 32, 64]
    assert params["vilbert"]["pad_len"] == 32 and params["vilbert"]["box_num"] == 100
    assert params["vilbert"]["perf"] == {"loop": 20, "warmup": 1}


@pytest.mark.parametrize("mutate, key", [
    (lambda p: p["vilbert"]["batch_sizes"].__setitem__(2, 0), "vilbert.batch_sizes[2]"),
    (lambda p: p.__setitem__("scale", "huge"), "scale"),
    (lambda p: p["vilbert"].__setitem__("pad_len", "32"), "vilbert.pad_len"),
    (lambda p: p["tolerances"].__setitem__("throughput_relative", -0.1), "tolerances.throughput_relative"),
    (lambda p: p["targets"]["310P3"].__setitem__("soc_version", "Kirin9000"), "targets.310P3.soc_version"),
    (lambda p: p["vilbert"].__setitem__("surprise", 1), "vilbert"),
    (lambda p: p["tables"]["mini"].__setitem__("vilbert", ["tpu"]), "tables.mini.vilbert[0]"),
    (lambda p: p["vilbert"].__setitem__("accuracy_batch_size", 2), "vilbert.accuracy_batch_size"),
    (lambda p: p["targets"].__setitem__(310, p["targets"].pop("310")), "targets.310"),
    (lambda p: p["actbert"]["shape"].__setitem__("captions", 0), "actbert.shape.captions"),
    (lambda p: p["actbert"].pop("shape"), "actbert"),
])
def test_bad_value_names_the_key(mutate, key):
    params = copy.deepcopy(yaml.safe_load(PARAMS_PATH.read_text()))
    mutate(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert key in str(err.value)


def test_unknown_target_lists_known_ones(params):
    with pytest.raises(ConfigError, match="unknown target 'tpu'.*310P3"):
        target_settings(params, "tpu")


def test_scales_never_share_a_results_dir():
    assert results_dir("full") == "results" and results_dir("mini") == "results/mini"
    with pytest.raises(ConfigError):
        results_dir("medium")


def test_a_bad_config_override_is_reported_as_an_override_not_as_params_yaml(tmp_path):
    import subprocess

    from conftest import VENV_BIN, copy_repo

    repo = copy_repo(tmp_path / "repo")
    proc = subprocess.run([str(VENV_BIN / "snakemake"), "-n", "--cores", "1", "--config", "scale=huge"],
                          cwd=repo, capture_output=True, text=True)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "invalid parameters (params.yaml with --config overrides)" in out and "scale" in out


def test_an_unknown_videobert_task_is_refused_naming_the_shipped_ones(params):
    import copy

    from zoorepro.config import ConfigError, validate

    bad = copy.deepcopy(params)
    bad["videobert"]["task"] = "videobert-onnx-int8"
    with pytest.raises(ConfigError, match=r"videobert.task: 'videobert-onnx-int8' has no workloads/.*shipped: "
                                          r"videobert-onnx-fp32"):
        validate(bad)


def test_every_targets_settings_are_checked_at_validation_even_if_no_table_uses_it(params):
    """A chip target's settings are read only by its backend; they are checked when the params
    are, not first on the chip host (the schema allows `provider`; the ascend backend has none)."""
    import copy

    from zoorepro.config import ConfigError, validate

    bad = copy.deepcopy(params)
    bad["targets"]["310P3"]["provider"] = "CPUExecutionProvider"
    assert "310P3" not in str(bad["tables"])
    with pytest.raises(ConfigError, match="targets.310P3.provider is not a setting of the ascend backend"):
        validate(bad)
