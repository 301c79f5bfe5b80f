"""FLOPs per generated token and the GPU's peak, for the `cuda` table's "% of peak" row.

Counting method: 2 × the language model's matmul parameters (every decoder layer's linear weights
plus the lm_head; the token embedding is a lookup and is left out), i.e. the multiply-adds one new
token costs at batch 1 with a KV cache, attention over the cached context excluded (≈5 % at the
~1,300-token Video-Bench prompts of the 7B: ../shared/upstream/next_stage.md §A4). Counted from the
loaded model, so it holds for each checkpoint's real sizes (7B: ≈13.2 GFLOP a token). The peaks are
data with their sources (zoorepro/peaks.yaml, read by zoorepro/peaks.py)."""
from __future__ import annotations

from zoorepro.peaks import gpu_peak

__all__ = ["flops_per_token", "gpu_peak"]


def flops_per_token(model) -> float:
    """2 × matmul parameters of the language model and lm_head (embeddings excluded)."""
    import torch

    lm = model.get_decoder() if hasattr(model, "get_decoder") else model.language_model
    embed = lm.get_input_embeddings()
    params = sum(m.weight.numel() for m in lm.modules() if isinstance(m, torch.nn.Linear) and m is not embed)
    head = model.get_output_embeddings()
    return 2.0 * (params + (head.weight.numel() if head is not None else 0))

