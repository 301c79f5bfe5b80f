"""The dense peak FLOP/s of the GPUs a `cuda` table may run on, for its "% of peak" rows: data with
a source per row (gpu_peaks.yaml beside this file); a GPU not listed gets no such row."""
from __future__ import annotations

from pathlib import Path

from zoorepro import yamlutil

PEAKS = Path(__file__).with_name("gpu_peaks.yaml")


def gpu_peak(device_name: str, dtype: str) -> tuple[float, str] | None:
    """(peak FLOP/s, source) for a GPU name and dtype, or None when the GPU is not listed."""
    for gpu in yamlutil.load_file(PEAKS)["gpus"]:
        if gpu["match"] in device_name and dtype in gpu["peak_tflops"]:
            return 1e12 * float(gpu["peak_tflops"][dtype]), gpu["source"]
    return None
