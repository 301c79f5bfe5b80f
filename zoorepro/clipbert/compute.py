"""FLOPs of ClipBERT's work per item, for the `cuda` table's "% of peak" rows.

Counted, not estimated: torch.utils.flop_counter.FlopCounterMode over one real batch's forward
(every matmul, convolution and attention kernel the step runs: the ResNet on every frame, the grid
encoder, BERT over text and visual tokens, the classifier), divided by the batch's items. A training
step costs its forward and backward: 3 × the forward (the backward computes two matmuls per forward
matmul, gradients for inputs and weights; the frozen stem and res2 make this an upper bound). The
GPU's peak is data with its source (zoorepro/peaks.yaml)."""
from __future__ import annotations

TRAIN_FACTOR = 3.0


def forward_flops(forward) -> float:
    """FLOPs of one call of `forward()` (a closure over the model and a batch), no gradients."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        forward()
    return float(counter.get_total_flops())


def percent_of_peak(items_per_s: float, flops_per_item: float, gpu_name: str, dtype: str):
    """(percent, peak FLOP/s, source) on a listed GPU, else None."""
    from zoorepro.peaks import gpu_peak

    peak = gpu_peak(gpu_name, dtype)
    if peak is None:
        return None
    flops, source = peak
    return 100.0 * items_per_s * flops_per_item / flops, flops, source
