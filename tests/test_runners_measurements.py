"""Runners (the paddle one) and the one measurement vocabulary."""
import json
import sys

import numpy as np
import pytest

from zoorepro.errors import ConfigError, ToolchainMissing, ZooreproError
from zoorepro.measurements import Measurement, latency_stats, read_measurements, write_measurements
from zoorepro.runners import get_runner


def test_paddle_runner_maps_targets_to_paddle_devices(params):
    assert get_runner("paddle", "cpu", params).device == "cpu"
    assert get_runner("paddle", "cuda", params).device == "gpu"


def test_paddle_runner_refuses_a_chip_target_naming_the_model_and_the_portable_target(params):
    runner = get_runner("paddle", "310P3", params)
    with pytest.raises(ToolchainMissing, match="somemodel runs on PaddlePaddle") as exc:
        runner.check("somemodel", probe=False)
    assert "results[/mini]/somemodel_cpu.csv" in str(exc.value)  # the planner names the scale (for_table)


def test_paddle_runner_refuses_gpu_on_a_cpu_build(params):
    import paddle

    runner = get_runner("paddle", "cuda", params)
    if paddle.device.is_compiled_with_cuda():
        pytest.skip("this paddle is a CUDA build")
    with pytest.raises(ToolchainMissing, match="paddlepaddle-gpu"):
        runner.check("m")
    runner.check("m", probe=False)  # a dry run checks the params alone


def test_paddle_launch_command_is_the_documents_launcher_on_gpu_ids_or_cpu_processes(params):
    cpu, cuda = get_runner("paddle", "cpu", params), get_runner("paddle", "cuda", params)
    assert cuda.launch_command("main.py", ["--validate", "-c", "actbert.yaml"], "0,1,2,3,4,5,6,7", "log_actbert") == [
        sys.executable, "-B", "-m", "paddle.distributed.launch", "--gpus=0,1,2,3,4,5,6,7", "--log_dir=log_actbert",
        "main.py", "--validate", "-c", "actbert.yaml"]
    assert cpu.launch_command("main.py", [], 2, "log")[4:6] == ["--nproc_per_node=2", "--log_dir=log"]
    assert cpu.launch_command("main.py", [], 1, "log")[4] == "--nproc_per_node=1"  # one process: still the launcher
    assert (cuda.process_count("0,1,2,3,4,5,6,7"), cpu.process_count(2)) == (8, 2)


@pytest.mark.parametrize("target,devices,message", [
    ("cuda", 8, "must be the GPU ids"), ("cuda", "0,0", "listed twice"), ("cuda", True, "must be the GPU ids"),
    ("cpu", "0,1", "a number of processes"), ("cpu", 0, "a number of processes")])
def test_paddle_launch_refuses_devices_of_the_wrong_kind(params, target, devices, message):
    with pytest.raises(ConfigError, match=message):
        get_runner("paddle", target, params).launch_args(devices, "log")


def test_paddle_launcher_takes_a_script_not_a_module(params):
    with pytest.raises(ConfigError, match="script path ending in .py"):
        get_runner("paddle", "cpu", params).launch_command("zoorepro.actbert.main", [], 2, "log")


def test_amp_is_refused_on_cpu_and_allowed_on_gpu(params):
    with pytest.raises(ConfigError, match="AMP needs a GPU"):
        get_runner("paddle", "cpu", params).check_amp()
    get_runner("paddle", "cuda", params).check_amp()


def test_unknown_runner_is_refused(params):
    with pytest.raises(KeyError, match="unknown runner"):
        get_runner("tensorflow", "cpu", params)


def test_latency_stats_match_numpy():
    times = list(np.random.default_rng(0).random(101) * 10)
    stats = latency_stats(times)
    assert stats.mean_ms == pytest.approx(float(np.mean(times)))
    assert stats.median_ms == pytest.approx(float(np.median(times)))
    assert stats.p99_ms == pytest.approx(float(np.percentile(times, 99)))
    with pytest.raises(ZooreproError):
        latency_stats([])


def test_records_round_trip_and_carry_their_raw_files(tmp_path):
    records = [Measurement("throughput", "throughput", 12, "samples/s", batch_size=4, raw=("work/x.json",)),
               Measurement("fscore", "accuracy", 0.5, "fraction", precision="fp16", note="n")]
    write_measurements(tmp_path / "m.json", records)
    assert read_measurements(tmp_path / "m.json") == records
    assert json.loads((tmp_path / "m.json").read_text())[0]["raw"] == ["work/x.json"]
    with pytest.raises(ZooreproError, match="unknown kind"):
        Measurement("x", "vibes", 1, "u")
    (tmp_path / "bad.json").write_text('[{"metric": "x"}]')
    with pytest.raises(ZooreproError, match="malformed"):
        read_measurements(tmp_path / "bad.json")
