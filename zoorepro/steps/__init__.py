"""Steps every model uses, each runnable alone: `python -m zoorepro.steps.<step> --help`.

compile (the document's atc / ixrtexec build / onnxruntime load), infer (ais_bench inference over
per-sample folders), perf (ais_bench --loop timing), compare (a target's raw outputs against a
reference's), simplify (the document's `python -m onnxsim` with its shapes checked), sources (an
upstream tree copied from the venv and patched).
"""
