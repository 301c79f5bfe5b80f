"""Test stand-in for a ByteMLPerf checkout with DeepSparkInference's ILUVATAR backend.

It imitates IMITATES (below): DeepSparkInference tag 25.03's copy of ByteMLPerf
(`toolbox/ByteMLPerf/byte_infer_perf/general_perf`, which has the ILUVATAR backend) with the
videobert workload fetched from bytedance/ByteMLPerf. tests/standins/README.md ("Conformance")
lists what was checked against which file.

`make_tree(root, onnx_path, cifar_dir)` lays out `root/byte_infer_perf/general_perf/` as the
VideoBERT document leaves it before its accuracy run (model, data set, model-zoo entry, no
`workloads/`), with two launchers that run code from this file and the stand-in optimizer:
`core/perf_engine.py` and `backends/ILUVATAR/optimizer/optimizer.py`.

`main(argv, root)` is that perf_engine: its CLI (`--task`, `--hardware_type`, `--compile_only`)
and the flow of general_perf's perf_engine with the ILUVATAR backend, enough to write the report
`general_perf/reports/ILUVATAR/<task>/result-fp16.json` in its layout:
- chdir to byte_infer_perf; read `general_perf/workloads/<task>.json` and the model-zoo entry;
- load the open_cifar data set *before* compiling, as the real loader does in its constructor:
  the `test` pickle, the `meta` pickle (its `fine_label_names`), CLIP preprocessing of every
  image, then `text.npy`; a missing file fails the run there, whatever the workload asks for;
- "compile": run the backend's optimizer on the model (exit code ignored, as upstream), then
  "build" `<model>_end.onnx` into `<model>_end.engine` (a stand-in engine, the format of
  standin_ixrtexec, with the ILUVATAR build profile: image 1/32/max_batch_size, text static);
- compile-only mode (`--compile_only` or the workload's `compile_only`): stop right after the
  compile, with the engine written and `general_perf/reports/ILUVATAR/<task>/` created but no
  report, exit 0, as perf_engine does;
- otherwise load the engine and measure accuracy at `batch_sizes[0]` (`text.npy` with every
  batch, floor(N/bs) batches, `data_percent` of them), Top-1 as a 5-decimal fraction, the batch
  outputs saved as `open_cifar.npy`;
- numeric diffs against `general_perf/reports/CPU/<task>/open_cifar.npy` when that folder exists
  (else "Fetch CPU Data Failed" and none);
- no `{'metricResult': ...}` line: the 25.03 perf_engine does not print one (DeepSparkInference
  added it later); read the report;
- performance per batch size as the ILUVATAR backend measures it: two "device cores" run one after
  the other (here both on the CPU), 30 warm-up predicts, `iterations` timed predicts on random
  images and all-zero text, QPS summed and latencies averaged over the two (where
  STANDIN_PERF_ITERATIONS is set, at most that many of each: tests keep the stand-in's loop short;
  its figures are a stand-in's either way).
Console lines go through `logging` (stderr, `INFO:<logger>:...`) under the real loggers' names.
Everything it writes says it is a stand-in (a `Standin` key in the report).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from PIL import Image
from standin_ixrtexec import StandinError as EngineError
from standin_ixrtexec import model_inputs, read_engine, write_engine

MARK = "ZOOREPRO STAND-IN"
IMITATES = ("ByteMLPerf @a30b4f97b174 (workloads/videobert-onnx-fp32.json) + DeepSparkInference 25.03 "
            "@fdf68dc91734 (toolbox/ByteMLPerf general_perf, ILUVATAR backend)")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MODEL_ZOO_JSON = REPO / "workloads" / "model_zoo" / "videobert-onnx-fp32.json"
HARDWARE = "ILUVATAR"
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
IMAGE_SIZE = 224
WARMUP = 30
CORES = 2
NUMPY_TYPES = {"FLOAT32": np.float32, "LONG": np.int64}
PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 carry bytes
}
LAUNCHER = """# {mark} launcher (tests only): runs {target} from zoorepro's tests/standins.
import sys
from pathlib import Path

sys.path.insert(0, {path!r})
from {module} import main

sys.exit(main(sys.argv[1:]{extra}))
"""


class StandinError(Exception):
    """A failure perf_engine would end with (a traceback upstream): message, exit 1."""


# -- the tree ---------------------------------------------------------------------------------


def _launcher(path: Path, module: str, extra: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LAUNCHER.format(mark=MARK, target=f"{module}.py", path=str(HERE), module=module, extra=extra))


def make_tree(root: Path, onnx_path: Path, cifar_dir: Path) -> Path:
    """Lay out the stand-in checkout under root; return its byte_infer_perf folder (what the IxRT
    backend calls bytemlperf_root)."""
    byte_infer_perf = Path(root) / "byte_infer_perf"
    general = byte_infer_perf / "general_perf"
    info = json.loads(MODEL_ZOO_JSON.read_text())
    (general / "model_zoo").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MODEL_ZOO_JSON, general / "model_zoo" / f"{info['model']}.json")
    model = byte_infer_perf / info["model_path"]
    model.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, model)
    data = general / "datasets" / info["dataset_name"] / "cifar-100-python"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.symlink_to(Path(cifar_dir).resolve(), target_is_directory=True)
    _launcher(general / "core" / "perf_engine.py", "standin_bytemlperf", ", Path(__file__).resolve().parents[2]")
    _launcher(general / "backends" / HARDWARE / "optimizer" / "optimizer.py", "standin_ixrt_optimizer", "")
    (general / "STANDIN.md").write_text(f"{MARK}: a generated ByteMLPerf layout for zoorepro's tests, not ByteMLPerf.\n")
    return byte_infer_perf


# -- open_cifar ---------------------------------------------------------------------------------


class _Unpickler(pickle.Unpickler):
    """CIFAR pickles hold dicts, lists, strings and numpy arrays: nothing else is admitted."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in PICKLE_GLOBALS:
            raise StandinError(f"refusing pickle global {module}.{name}")
        return super().find_class(module, name)


class OpenCifar:
    """The open_cifar DataLoader as its constructor leaves it: the `test` pickle (`labels` or else
    `fine_labels`), the `meta` pickle's `fine_label_names` (class names, unused for inference but
    read), every image through CLIP's preprocessing, and `text.npy`, in that order. Opening a
    missing file raises FileNotFoundError, as the real loader's open() does."""

    def __init__(self, dataset_name: str) -> None:
        log = logging.getLogger("CIFAR100")
        log.info("Initial...")
        folder = Path(f"general_perf/datasets/{dataset_name}/cifar-100-python")
        with open(folder / "test", "rb") as f:
            entry = _Unpickler(f, encoding="latin1").load()
        images = np.asarray(entry["data"], np.uint8).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
        self.labels = list(entry["labels"] if "labels" in entry else entry["fine_labels"])
        with open(folder / "meta", "rb") as f:
            self.classes = _Unpickler(f, encoding="latin1").load()["fine_label_names"]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.images = [clip_preprocess(img) for img in images]
        self.text = np.load(folder / "text.npy")
        self.name = dataset_name


def clip_preprocess(image: np.ndarray) -> np.ndarray:
    """CLIP's transform for a square image: bicubic resize to 224 (the centre crop is then the
    whole image), RGB, scale to [0, 1], CLIP mean/std; CHW float32."""
    resized = Image.fromarray(image).convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
    scaled = np.asarray(resized, np.float32) / 255.0
    return ((scaled - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)


# -- the engine ---------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="perf_engine.py", description=f"{MARK} of general_perf's perf_engine")
    parser.add_argument("--task", default="resnet50-tf-fp32")
    parser.add_argument("--hardware_type", default="GPU")
    parser.add_argument("--compile_only", action="store_true")
    return parser.parse_args(argv)


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise StandinError(f"No such file or directory: '{path}'")
    return json.loads(path.read_text())


def load_workload(task: str) -> dict:
    """general_perf's workload_store: `general_perf/workloads/<task>.json` (a missing folder is
    an error from listing it; a missing task is logged and there is no workload)."""
    folder = Path("general_perf/workloads")
    if not folder.is_dir():
        raise StandinError(f"No such file or directory: '{folder}'")
    path = folder / f"{task}.json"
    if not path.is_file():
        logging.getLogger("WorkloadStore").error(f"Task name: [ {task} ] was not found, please check your task name")
        raise StandinError(f"no workload for task {task}")
    return json.loads(path.read_text())


def host_info() -> str:
    """The CPU model name, as perf_engine reads it from lscpu."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor()


def model_stem(info: dict) -> str:
    """The ILUVATAR backend's naming for videobert: model_path up to its first dot."""
    return info["model_path"].split(".")[0]


def compile_model(info: dict) -> dict:
    """The ILUVATAR compile step: optimizer.py on the model (its exit code ignored, as upstream),
    then `<stem>_end.onnx` built into `<stem>_end.engine` with build_engine's profile. Returns the
    compile result (its keys printed as the backend prints them)."""
    subprocess.call([sys.executable, f"general_perf/backends/{HARDWARE}/optimizer/optimizer.py", "--onnx", info["model_path"]])
    print("***Convert onnx model to plugin operator model success!***")
    end_onnx = Path(model_stem(info) + "_end.onnx")
    if not end_onnx.is_file():
        raise StandinError(f"{end_onnx} was not written: the optimizer failed")
    onnx_bytes = end_onnx.read_bytes()
    try:
        model = onnx.load_from_string(onnx_bytes)
        inputs = model_inputs(model)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a build failure
        raise StandinError(f"cannot parse {end_onnx}: {exc}") from None
    # build_engine for videobert: input 0 becomes [-1,3,224,224] with the profile
    # 1 / 32 / max_batch_size on "image"; every other input is [100,77].
    for i, inp in enumerate(inputs):
        inp["dims"] = [-1, 3, IMAGE_SIZE, IMAGE_SIZE] if i == 0 else [100, 77]
    image = [IMAGE_SIZE, IMAGE_SIZE]
    meta = {
        "standin": f"{MARK}: ONNX run by onnxruntime on the CPU in fp32, not an IxRT engine",
        "precision": "fp16",
        "inputs": inputs,
        "outputs": [o.name for o in model.graph.output],
        "profile": {"image": {"min_shape": [1, 3, *image], "opt_shape": [32, 3, *image],
                              "max_shape": [info["max_batch_size"], 3, *image]}},
        "plugins": ["ixrt_plugin"],
    }
    write_engine(Path(model_stem(info) + "_end.engine"), meta, onnx_bytes)
    print("***Build dynamic shape engine success!***")
    result = {
        "model": info["model"], "model_name": info["model"].split("-")[0], "model_path": info["model_path"],
        "framework": info["framework"], "compile_precision": info["model_precision"].replace("FP32", "FP16"),
        "input_type": info["input_type"].split(","), "max_batch_size": info["max_batch_size"],
        "compile_status": "success", "sg_percent": 100,
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    return result


def load_engine(info: dict) -> onnxruntime.InferenceSession:
    """The runtime backend's load(): the `_end.engine` the compile wrote (a stand-in engine)."""
    path = Path(model_stem(info) + "_end.engine")
    try:
        _, onnx_bytes = read_engine(path)
    except EngineError as exc:
        raise StandinError(str(exc)) from None
    return onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


def feeds(info: dict, batch: dict[str, object]) -> dict[str, np.ndarray]:
    """Cast each input per the model-zoo input_type, as the ILUVATAR predict does."""
    types = [NUMPY_TYPES[t] for t in info["input_type"].split(",")]
    names = info["inputs"].split(",")
    return {name: np.array(batch[name], dtype=dtype) for name, dtype in zip(names, types)}


def accuracy(session: onnxruntime.InferenceSession, info: dict, data: OpenCifar, bs: int, data_percent: float,
             out_dir: Path) -> dict:
    """Top-1 over the first data_percent of floor(N/bs) batches; batch outputs saved for the diff."""
    log = logging.getLogger("TestAccuracy")
    log.info("Start to calculate accuracy...")
    batches = len(data.images) // bs
    count = int(data_percent / 100 * batches) if data_percent else batches
    good = total = 0
    outputs = []
    for i in range(count):
        batch = {"image": data.images[i * bs:(i + 1) * bs], "text": data.text}
        logits_per_image = session.run(None, feeds(info, batch))[0]
        outputs.append(logits_per_image)
        for row, label in zip(logits_per_image, data.labels[i * bs:(i + 1) * bs]):
            good += int(np.argmax(row) == label)
            total += 1
    np.save(out_dir / f"{data.name}.npy", outputs, allow_pickle=True)
    top1 = round(good / total, 5)
    log.info(f"Batch size is {bs}, Accuracy: {top1}")
    return {"Top-1": top1}


def numeric_diff(task: str, data: OpenCifar, out_dir: Path) -> dict:
    """general_perf's diff against the CPU reference outputs, when a CPU report folder exists."""
    log = logging.getLogger("TestAccuracy")
    cpu_dir = Path("general_perf/reports/CPU") / task
    if not cpu_dir.exists():
        log.info("Fetch CPU Data Failed")
        return {}
    ori = np.load(cpu_dir / f"{data.name}.npy").flatten()
    cur = np.load(out_dir / f"{data.name}.npy").flatten()
    ori[~np.isfinite(ori)] = 0.0
    cur[~np.isfinite(cur)] = 0.0
    diff = ori - cur
    rel = np.nan_to_num(diff / np.where(ori == 0, 1, ori))
    values = [np.mean(abs(diff)), np.std(abs(diff)), abs(diff).max(), abs(rel).max(), np.mean(abs(rel))]
    keys = ["Mean Diff", "Std Diff", "Max Diff", "Max Rel-Diff", "Mean Rel-Diff"]
    result = {key: round(float(v), 5) for key, v in zip(keys, values)}
    log.info("Mean Diff: {}, Std Diff: {}, Max Diff: {}, Max Rel-Diff: {}, Mean Rel-Diff: {}".format(*result.values()))
    return result


def one_core(session: onnxruntime.InferenceSession, info: dict, bs: int, iterations: int) -> tuple[list[float], list[float]]:
    """One core's timings: (whole predict incl. input casts, session.run only) per iteration, in s."""
    shapes = info["input_shape"]
    fake = {name: np.random.rand(*([shape[0] * bs, *shape[1:]] if name != "text" else shape))
            for name, shape in shapes.items()}
    cap = int(os.environ.get("STANDIN_PERF_ITERATIONS") or max(WARMUP, iterations))
    for _ in range(min(WARMUP, cap)):
        session.run(None, feeds(info, fake))
    total, pure = [], []
    for _ in range(min(iterations, cap)):
        start = time.time()
        inputs = feeds(info, fake)
        run_start = time.time()
        session.run(None, inputs)
        end = time.time()
        total.append(end - start)
        pure.append(end - run_start)
    return total, pure


def figures(latencies: list[float], bs: int) -> tuple[int, float, float]:
    """(QPS, AVG Latency ms, P99 Latency ms) with general_perf's rounding."""
    avg = round(sum(latencies) / len(latencies) * 1000, 2)
    tail = round(sorted(latencies)[int(len(latencies) * 0.99)] * 1000, 2)
    return int(1000.0 * bs / avg), avg, tail


def performance(session: onnxruntime.InferenceSession, info: dict, bs: int, iterations: int) -> dict:
    """The ILUVATAR benchmark: two cores measured one after the other (each logs its own line),
    QPS summed, latencies averaged."""
    log = logging.getLogger("RuntimeBackendILUVATAR")
    runs = [one_core(session, info, bs, iterations) for _ in range(CORES)]
    whole = [figures(total, bs) for total, _ in runs]
    pure = [figures(p, bs) for _, p in runs]
    for qps, avg, tail in whole:
        log.info(f"Batch size is {bs}, QPS: {qps}, Avg Latency:{avg}, Tail Latency:{tail}")
    return {
        "BS": bs,
        "QPS": sum(f[0] for f in whole),
        "AVG Latency": round(sum(f[1] for f in whole) / CORES, 2),
        "P99 Latency": round(sum(f[2] for f in whole) / CORES, 2),
        "predict QPS": sum(f[0] for f in pure),
        "predict AVG Latency": round(sum(f[1] for f in pure) / CORES, 2),
        "predict P99 Latency": round(sum(f[2] for f in pure) / CORES, 2),
    }


def run_engine(args: argparse.Namespace) -> None:
    """perf_engine's single_workload_perf, in its order."""
    log = logging.getLogger("PerfEngine")
    workload = load_workload(args.task)
    if args.hardware_type != HARDWARE or not Path(f"general_perf/backends/{HARDWARE}").is_dir():
        raise StandinError(f"the stand-in implements only the {HARDWARE} backend, got {args.hardware_type}")
    Path(f"general_perf/reports/{args.hardware_type}").mkdir(parents=True, exist_ok=True)
    log.info(f"Start to test model: {workload['model']}.")
    compile_only = bool(args.compile_only or workload["compile_only"])
    report = {"Model": workload["model"].upper(), "Backend": args.hardware_type, "Host Info": host_info()}
    info = read_json(Path(f"general_perf/model_zoo/{workload['model']}.json"))
    data = OpenCifar(info["dataset_name"])  # before the compile, whatever the workload tests
    report["Dataset"] = info["dataset_name"].upper()
    log.info("Start to compile the model...")
    start = time.time()
    compiled = compile_model(info)
    duration = time.time() - start
    precision = compiled["compile_precision"]
    report["Graph Compile"] = {"Compile Duration": round(duration, 5), "Compile Precision": precision,
                               "Subgraph Coverage": compiled["sg_percent"]}
    out_dir = Path(f"general_perf/reports/{args.hardware_type}/{workload['model']}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if compile_only:  # perf_engine returns here: engine built, no runtime, no report
        return
    report["Standin"] = f"{MARK}: onnxruntime on the CPU in fp32; not IxRT, not ByteMLPerf; imitates {IMITATES}"
    bs = workload["batch_sizes"][0]
    session = load_engine(info)
    accuracy_report: dict = {}
    if workload["test_accuracy"]:
        accuracy_report["Data Percent"] = workload["data_percent"]
        accuracy_report.update(accuracy(session, info, data, bs, workload["data_percent"], out_dir))
    if workload["test_numeric"]:
        if not workload["test_accuracy"]:
            accuracy(session, info, data, bs, workload["data_percent"], out_dir)
        accuracy_report.update(numeric_diff(workload["model"], data, out_dir))
    if accuracy_report:
        report["Accuracy"] = accuracy_report
    if workload["test_perf"]:
        report["Performance"] = [performance(session, info, b, workload["iterations"]) for b in workload["batch_sizes"]]
    log.warning("Vendors need to Add # of instances")
    log.warning("Vendors need to Add # of devices")
    path = out_dir / f"result-{precision.lower()}.json"
    path.write_text(json.dumps(report, indent=4))
    log.info(f"Testing Finish. Report is saved in path: [ {out_dir}/{path.name} ]")


def main(argv: list[str], root: Path) -> int:
    args = parse_args(argv)
    os.chdir(root)
    logging.basicConfig(level=logging.INFO)
    print(f"[W] {MARK}: this is not ByteMLPerf's perf_engine; it imitates {IMITATES}", flush=True)
    try:
        run_engine(args)
    except StandinError as exc:
        print(f"[E] {exc}", flush=True)
        return 1
    # Anything else (a data-set file the loader cannot open, a key it cannot find) ends the run
    # with Python's traceback and exit 1, as it ends the real perf_engine.
    return 0
