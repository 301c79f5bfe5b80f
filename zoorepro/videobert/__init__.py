"""VideoBERT as ByteMLPerf runs it (videobert-onnx-fp32): the open_cifar data set and the ONNX export."""
