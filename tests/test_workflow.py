"""The Snakemake DAG: every documented step planned, clear failures before any job runs."""
import re

import pytest
import yaml
from conftest import ROOT, copy_repo, run

# The document's steps (rules/vilbert.smk) and the shared stages every model runs (sources,
# download, compare, table: rules/data.smk, rules/compare.smk, rules/table.smk).
VILBERT_STEPS = ("sources", "download", "vilbert_preprocess", "vilbert_export_onnx",
                 "vilbert_onnxsim", "vilbert_fix_onnx", "vilbert_compile", "vilbert_infer", "vilbert_golden",
                 "vilbert_postprocess", "vilbert_perf", "compare", "table")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("repo"))


def dry_run(repo, target):
    return run(["snakemake", "-n", "--cores", "1", target], cwd=repo, check=False)


def test_dry_run_of_the_310P3_table_lists_every_documented_step_for_every_batch_size(repo):
    proc = dry_run(repo, "results/vilbert_310P3.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for step in VILBERT_STEPS:
        assert re.search(rf"rule {step}:", out), step
    for bs in (1, 4, 8, 16, 32, 64):
        for path in (f"work/full/vilbert/onnx/vqa-vilbert_bs{bs}_sim.onnx",
                     f"work/full/vilbert/onnx/vqa-vilbert_bs{bs}_sim_fix.onnx",
                     f"work/full/vilbert/310P3/model_bs{bs}.om",
                     f"work/full/vilbert/310P3/perf_bs{bs}.json"):
            assert path in out, path
    manifest = yaml.safe_load((ROOT / "manifests/vilbert.yaml").read_text())
    for entry in manifest["entries"]:
        assert f"data/full/vilbert/.done/{entry['name']}" in out


def test_unknown_target_is_refused_with_the_known_ones(repo):
    proc = dry_run(repo, "results/mini/vilbert_tpu.csv")
    assert proc.returncode != 0
    assert "unknown target 'tpu'" in proc.stdout + proc.stderr


def test_chip_target_without_its_toolchain_fails_before_any_job(repo, tmp_path):
    proc = run(["snakemake", "--cores", "1", "results/mini/vilbert_310P3.csv"], cwd=repo, check=False,
               env_extra={"ASCEND_HOME": str(tmp_path)})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "atc" in out and "set_env.sh" in out and "snakemake results/mini/vilbert_cpu.csv" in out  # this scale
    assert not (repo / "work").exists() and not (repo / "results" / "mini" / "vilbert_310P3.csv").exists()


def test_bad_params_value_stops_the_dag_naming_the_key(tmp_path):
    bad = copy_repo(tmp_path / "bad")
    text = (bad / "params.yaml").read_text().replace("pad_len: 32", "pad_len: -3")
    (bad / "params.yaml").write_text(text)
    proc = dry_run(bad, "results/mini/vilbert_cpu.csv")
    assert proc.returncode != 0
    assert "vilbert.pad_len" in proc.stdout + proc.stderr


def test_snakemake_lint_is_clean(repo):
    proc = run(["snakemake", "--lint"], cwd=repo, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_dry_run_of_the_mrv100_table_lists_every_documented_step(repo):
    proc = dry_run(repo, "results/videobert_mrv100.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for step in ("download", "videobert_perf_engine", "videobert_compile", "videobert_perf", "compare", "table"):
        assert re.search(rf"rule {step}:", out), step
    assert "work/full/videobert/mrv100/model_bs16.engine" in out  # the perf script's BS=16
    assert "work/full/videobert/cpu/open_cifar.npy" in out        # the compare step's CPU reference
    manifest = yaml.safe_load((ROOT / "manifests/videobert.yaml").read_text())
    for entry in manifest["entries"]:
        assert f"data/full/videobert/.done/{entry['name']}" in out


def test_mini_videobert_is_generated_and_exported_not_downloaded(repo):
    proc = dry_run(repo, "results/mini/videobert_cpu.csv")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "rule videobert_mini_data:" in out and "rule videobert_export_onnx:" in out
    assert "rule download:" not in out


def test_dry_run_of_the_actbert_table_lists_every_documented_step(repo):
    proc = dry_run(repo, "results/actbert_cpu.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for step in ("sources", "download", "actbert_test", "table"):
        assert re.search(rf"rule {step}:", out), step
    manifest = yaml.safe_load((ROOT / "manifests/actbert.yaml").read_text())
    for entry in manifest["entries"]:
        assert f"data/full/actbert/.done/{entry['name']}" in out
    # the HowTo100M pretraining, a target of its own: the launcher tests below


DOCUMENT_LAUNCH = ('python -B -m paddle.distributed.launch --gpus="0,1,2,3,4,5,6,7" '
                   "--log_dir=work/full/actbert/pretrain/run/log_actbert zoorepro/actbert/main.py {amp}--validate "
                   "-c zoorepro/actbert/configs/actbert.yaml ")
DOCUMENT_AMP_FLAGS = ("FLAGS_conv_workspace_size_limit=800 FLAGS_cudnn_exhaustive_search=1 "
                      "FLAGS_cudnn_batchnorm_spatial_persistent=1 ")


def printed_command(repo, target, *configfiles):
    """`snakemake -n -p TARGET` with params.yaml and `configfiles` after it; (returncode, output)."""
    extra = ["--configfile", "params.yaml", *map(str, configfiles)] if configfiles else []
    proc = run(["snakemake", "-n", "-p", "--cores", "1", target, *extra], cwd=repo, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_full_pretraining_on_cuda_prints_the_documents_launcher_command_and_with_amp_its_flags(repo, tmp_path):
    rc, out = printed_command(repo, "work/full/actbert/pretrain/loss.json")  # the HowTo100M step, a target of its own
    assert rc == 0 and "rule actbert_pretrain:" in out, out[-3000:]
    assert DOCUMENT_LAUNCH.format(amp="") in out and "FLAGS_" not in out and "--amp" not in out
    assert "--device gpu" in out and "--pretrained data/full/actbert/bert-base-uncased.pdparams" in out
    (tmp_path / "amp.yaml").write_text("actbert:\n  amp: true\n")
    rc, out = printed_command(repo, "work/full/actbert/pretrain/loss.json", tmp_path / "amp.yaml")
    assert rc == 0, out[-3000:]
    assert DOCUMENT_AMP_FLAGS + DOCUMENT_LAUNCH.format(amp="--amp ") in out


def test_mini_pretraining_launches_two_cpu_processes_and_amp_there_is_refused_before_any_job(repo, tmp_path):
    rc, out = printed_command(repo, "work/mini/actbert/pretrain/loss.json")
    assert rc == 0, out[-3000:]
    assert ("python -B -m paddle.distributed.launch --nproc_per_node=2 "
            "--log_dir=work/mini/actbert/pretrain/run/log_actbert zoorepro/actbert/main.py --validate ") in out
    (tmp_path / "amp.yaml").write_text("actbert:\n  amp: true\n")
    rc, out = printed_command(repo, "results/mini/actbert_cpu.csv", tmp_path / "amp.yaml")
    assert rc != 0 and "AMP needs a GPU" in out and "actbert.pretrain.mini.target" in out
    assert "actbert.amp: false" in out and "paddle.distributed.launch" not in out


def test_actbert_on_a_chip_target_is_refused_before_any_job(repo):
    proc = dry_run(repo, "results/mini/actbert_310P3.csv")
    assert proc.returncode != 0
    assert "actbert runs on PaddlePaddle" in proc.stdout + proc.stderr


CLIPBERT_STEPS = ("download", "clipbert_check_anetqa", "clipbert_select_videos", "clipbert_sample_imgs_clipbert",
                  "clipbert_aux_csv", "clipbert_aux_jsonl", "clipbert_make_config", "clipbert_run_video_qa",
                  "clipbert_inference", "clipbert_inference_test", "clipbert_eval_res", "table")


def test_dry_run_of_the_clipbert_cuda_table_lists_every_documented_step_with_horovodruns_four_processes(repo):
    rc, out = printed_command(repo, "results/clipbert_cuda.csv")
    assert rc == 0, out[-3000:]
    for step in CLIPBERT_STEPS:
        assert re.search(rf"rule {step}:", out), step
    launch = "python -m torch.distributed.run --standalone --nproc_per_node 4 -m zoorepro.clipbert.run_video_qa "
    assert (launch + "--config work/full/clipbert/prep/anetqa_frameqa_base_resnet50.json "
            "--output_dir work/full/clipbert/cuda/finetune --device cuda") in out
    assert ("--checkpoint_dir work/full/clipbert/cuda/finetune --device cuda --do_inference 1 --inference_split val "
            "--inference_model_step last --inference_txt_db work/full/clipbert/prep/txt/data_val.jsonl") in out
    assert "--inference_batch_size 64 --inference_n_clips 16" in out


SHAPE_VIDEOBERT_STEPS = ("videobert_shape_data", "videobert_export_onnx", "peak", "videobert_perf_engine", "table")


@pytest.mark.parametrize("target", ["cpu", "mrv100"])
def test_the_shape_videobert_table_downloads_nothing_and_records_no_accuracy(repo, target):
    rc, out = printed_command(repo, f"results/shape/videobert_{target}.csv")
    assert rc == 0, out[-3000:]
    for step in SHAPE_VIDEOBERT_STEPS:
        assert re.search(rf"rule {step}:", out), step
    for absent in ("download", "videobert_mini_data", "compare"):
        assert not re.search(rf"rule {absent}:", out), absent
    assert "python -m zoorepro.videobert.make_shape --out data/shape/videobert --seed 0 --n-images 8 --clip " in out
    assert ("--model_dir data/shape/videobert/open_videobert/shape-clip "
            "--save_path work/shape/videobert/onnx/video-bert.onnx") in out
    engine = re.search(r"python -m zoorepro.videobert.perf_engine .*", out).group(0)
    assert "--throughput-only" in engine and "--data data/shape/videobert/cifar-100-python" in engine
    if target == "cpu":  # a short benchmark on a CPU; a chip runs the workload's 30 + 100 predicts
        assert "--iterations 5 --warmup 1" in engine
        assert not re.search(r"rule videobert_(compile|perf):", out)
    else:  # the document's ixrtexec run at BS 16, with % of the chip's peak
        assert "--iterations" not in engine
        assert ("--flops-onnx work/shape/videobert/onnx/video-bert.onnx --flops-input-shape "
                '"image:16,3,224,224" "text:100,77" --peak work/shape/videobert/mrv100/peak.json') in out


SHAPE_VILBERT_STEPS = ("sources", "vilbert_shape_data", "vilbert_export_onnx", "vilbert_onnxsim", "vilbert_fix_onnx",
                       "vilbert_compile", "peak", "vilbert_perf", "table")


@pytest.mark.parametrize("target", ["cpu", "310P3"])
def test_the_shape_vilbert_table_downloads_nothing_and_measures_throughput_only(repo, target):
    rc, out = printed_command(repo, f"results/shape/vilbert_{target}.csv")
    assert rc == 0, out[-3000:]
    for step in SHAPE_VILBERT_STEPS:
        assert re.search(rf"rule {step}:", out), step
    for absent in ("download", "vilbert_mini_data", "vilbert_preprocess", "vilbert_infer", "vilbert_postprocess",
                   "compare"):
        assert not re.search(rf"rule {absent}:", out), absent
    assert "python -m zoorepro.vilbert.make_shape --out data/shape/vilbert" in out
    loop = 5 if target == "cpu" else 20  # a chip runs the document's loop
    for bs in (1, 4, 8, 16, 32, 64):
        assert (f"--loop {loop} --warmup 1 --out work/shape/vilbert/{target}/perf_bs{bs}.json" in out
                and f"--flops-onnx work/shape/vilbert/onnx/vqa-vilbert_bs{bs}_sim_fix.onnx "
                    f"--peak work/shape/vilbert/{target}/peak.json" in out), bs
    assert "--archive_file data/shape/vilbert/vilbert-vqa-shape.tar.gz" in out


SHAPE_ACTBERT_STEPS = ("sources", "actbert_shape_data", "actbert_flops", "peak", "actbert_test", "table")


def test_the_shape_actbert_table_downloads_nothing_and_times_the_real_batches_without_accuracy(repo):
    rc, out = printed_command(repo, "results/shape/actbert_cpu.csv")
    assert rc == 0, out[-3000:]
    for step in SHAPE_ACTBERT_STEPS:
        assert re.search(rf"rule {step}:", out), step
    for absent in ("download", "actbert_mini_data", "actbert_pretrain", "actbert_pretrain_measurements"):
        assert not re.search(rf"rule {absent}:", out), absent
    assert ("python -m zoorepro.actbert.make_shape --out data/shape/actbert --src work/src/actbert "
            "--config zoorepro/actbert/configs/actbert_msrvtt.yaml --seed 0 --n-videos 1000") in out
    assert ("python -m zoorepro.actbert.count_flops --config zoorepro/actbert/configs/actbert_msrvtt.yaml "
            "--src work/src/actbert --out work/shape/actbert/flops.json") in out
    assert ("python -m zoorepro.actbert.test -c zoorepro/actbert/configs/actbert_msrvtt.yaml "
            "-w data/shape/actbert/ActBERT-shape.pdparams --file-path data/shape/actbert/MSRVTT_JSFUSION_test.csv "
            "--features-path data/shape/actbert/msrvtt_test.lmdb --vocab-dir data/shape/actbert/bert-vocab") in out
    assert ("--flops work/shape/actbert/flops.json --peak work/shape/actbert/cpu/peak.json "
            "--captions 2 --throughput-only") in out


SHAPE_CLIPBERT_STEPS = ("clipbert_shape_data", "clipbert_select_videos", "clipbert_sample_imgs_clipbert",
                        "clipbert_aux_csv", "clipbert_aux_jsonl", "clipbert_make_config", "peak",
                        "clipbert_run_video_qa", "clipbert_inference", "clipbert_inference_test", "table")


def test_the_shape_clipbert_table_runs_the_full_scale_steps_on_generated_data_and_downloads_nothing(repo):
    rc, out = printed_command(repo, "results/shape/clipbert_cpu.csv")
    assert rc == 0, out[-3000:]
    for step in SHAPE_CLIPBERT_STEPS:
        assert re.search(rf"rule {step}:", out), step
    for absent in ("download", "clipbert_mini_data", "clipbert_check_anetqa", "clipbert_eval_res"):
        assert not re.search(rf"rule {absent}:", out), absent
    assert ("python -m zoorepro.clipbert.make_shape --out data/shape/clipbert --seed 0 --videos 1 1 2 "
            "--per-video 2 --video-frames 48 --video-size 640 360") in out
    # the full layout: videos under dataset/video, frames at 512, the base model config, bert-base-uncased
    assert "--video_dir data/shape/clipbert/dataset/video" in out and "--size 512" in out
    assert ("--tokenizer_dir data/shape/clipbert/bert-base-uncased --model_config base "
            "--e2e_weights_path data/shape/clipbert/pretrained/clipbert_image_text_pretrained.pt") in out
    launch = "python -m torch.distributed.run --standalone --nproc_per_node 2 -m zoorepro.clipbert.run_video_qa "
    assert (launch + "--config work/shape/clipbert/prep/anetqa_frameqa_base_resnet50.json --output_dir "
            "work/shape/clipbert/cpu/finetune --device cpu --measurements work/shape/clipbert/cpu/finetune.measurements.json "
            "--peak work/shape/clipbert/cpu/peak.json --throughput-only") in out
    assert ("--checkpoint_dir work/shape/clipbert/cpu/finetune --device cpu --do_inference 1 --inference_split val "
            "--inference_model_step last") in out
    assert out.count("--inference_batch_size 1 --inference_n_clips 16") == 2   # val and test
    assert out.count("--peak work/shape/clipbert/cpu/peak.json") == 3


def test_clipbert_peak_rows_come_from_the_peak_rule_on_cpu_and_from_the_gpu_name_on_cuda(repo):
    rc, out = printed_command(repo, "results/mini/clipbert_cpu.csv")
    assert rc == 0, out[-3000:]
    assert "--peak work/mini/clipbert/cpu/peak.json" in out and "--throughput-only" not in out
    rc, out = printed_command(repo, "results/clipbert_cuda.csv")
    assert rc == 0, out[-3000:]
    assert "--peak" not in out and "--inference_batch_size 64" in out


SHAPE_LLAVA_STEPS = {"cpu": ("llava_video_shape_data", "llava_video_extract_dataset", "peak", "llava_video_llava_gpu",
                             "table"),
                     "npu": ("llava_video_shape_data", "llava_video_extract_dataset", "llava_video_run_pa_videobench",
                             "table")}


@pytest.mark.parametrize("target", ["cpu", "npu"])
def test_the_shape_llava_table_runs_the_documents_inference_on_the_real_sizes_and_downloads_nothing(repo, target):
    rc, out = printed_command(repo, f"results/shape/llava_video_{target}.csv")
    assert rc == 0, out[-3000:]
    for step in SHAPE_LLAVA_STEPS[target]:
        assert re.search(rf"rule {step}:", out), step
    for absent in ("download", "llava_video_download_checkpoint", "llava_video_mini_data", "llava_video_score",
                   "llava_video_precision_test"):
        assert not re.search(rf"rule {absent}:", out), absent
    assert ("python -m zoorepro.llava_video.make_shape --out data/shape/llava_video --ckpt 7B --seed 0 "
            "--video-frames 96 --width 640 --height 360") in out
    assert "--nums 1 " in out  # extract_dataset over the synthetic Video-Bench tree
    weights = "data/shape/llava_video/models/LLaVA-NeXT-Video-7B-hf"
    if target == "cpu":
        assert (f"python -m zoorepro.llava_video.llava_gpu --model_path {weights} --dataset_name sampling_data "
                "--Eval_QA_root work/shape/llava_video/sample/Video-Bench") in out
        assert "--dtype bfloat16 --device cpu --max_new_tokens 4 --frames 8" in out
        assert "--peak work/shape/llava_video/cpu/peak.json --cpu-threads 1" in out  # every core Snakemake gives
        assert "python -m zoorepro.peaks --hardware cpu --precision bfloat16" in out
    else:  # MindIE's run_pa_videobench.sh: MAX_OUTPUT_LENGTH is the shape scale's fixed token count
        assert (f"python -m zoorepro.llava_video.run_pa_videobench {weights} "
                "work/shape/llava_video/sample/VideoBench/Eval_video/sampling_data work/shape/llava_video/sample/"
                "Video-Bench work/shape/llava_video/npu/7B/mindie/Chat_results 1 2048 4 --ckpt 7B") in out
    # one checkpoint's perf only: no accuracy at this scale
    assert f"--measurements work/shape/llava_video/{target}/7B/" in out and "score.measurements" not in out
