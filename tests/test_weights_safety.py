"""No code from downloaded torch weights: allennlp's load_archive reads weights.th through
`nn.util.read_state_dict` -> `torch.load(path, map_location=...)`, which on torch >= 2.6 (pinned
2.14.1) unpickles weights-only; a crafted weights.th is refused and its payload never runs."""
import pickle

import pytest
import torch
from conftest import RunsCommand


def test_torch_load_is_weights_only_by_default_on_the_pinned_torch():
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    assert (major, minor) >= (2, 6), torch.__version__


def test_a_malicious_weights_file_is_refused_by_allennlps_loader(patched_src, tmp_path, monkeypatch):
    from allennlp.nn.util import read_state_dict

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "weights.th"
    evil.write_bytes(pickle.dumps({"linear.weight": RunsCommand()}))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        read_state_dict(str(evil))
    assert not (tmp_path / "marker").exists()
    good = tmp_path / "good.th"
    torch.save({"linear.weight": torch.ones(2, 2)}, good)
    assert torch.equal(read_state_dict(str(good))["linear.weight"], torch.ones(2, 2))
