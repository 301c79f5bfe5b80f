"""LLaVA-NeXT-Video on Video-Bench (document 001): sampling, MindIE NPU and transformers GPU/cpu
inference, the precision test and Video-Bench's score (issue 10)."""
