"""ZOOREPRO STAND-IN for torch_npu (Ascend's PyTorch adapter): importable, so the MindIE runner's
probe passes against the stand-in tree; it provides no NPU device and imports nothing."""
__version__ = "0.0.0+zoorepro.standin"
STANDIN = True


def is_available() -> bool:
    return False
