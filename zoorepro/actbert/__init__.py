"""ActBERT text-to-video retrieval on MSR-VTT as PaddleVideo runs it: the data formats, a safe
reader for the lmdb feature records, and the retrieval metrics."""
