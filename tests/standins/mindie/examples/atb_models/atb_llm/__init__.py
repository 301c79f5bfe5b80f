"""ZOOREPRO STAND-IN for MindIE-LLM's atb_llm package (examples/atb_models/atb_llm): only the file
checks of atb_llm.utils.file_utils that the llava_videobench stand-in uses."""
__version__ = "0.0.0+zoorepro.standin"
STANDIN = True
