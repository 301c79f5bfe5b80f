"""ActBERT's shape scale: the FLOP count of its test forward (checked against hand counts), the
shape generator's files, and the test step's shape-scale options (the first captions against
every video, throughput rows only, % of peak).

Everything that imports PaddleVideo runs in a subprocess (tests/test_actbert_pipeline.py says why).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from zoorepro.actbert.count_flops import matmul_flops, linear_flops
from zoorepro.actbert.make_shape import N_UNUSED, VOCAB_SIZE, shape_vocab
from zoorepro.actbert.msrvtt import FEATURES_DIR, read_captions, read_record
from zoorepro.actbert.sources import prepare_sources
from zoorepro.errors import ZooreproError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "zoorepro" / "actbert" / "configs"
MINI = Path("data/mini/actbert")
TOKENS, REGIONS, ACTIONS = 36, 36, 5  # MSRVTTDataset's max_seq_length, max_region_num, max_action_num

# One BertLayer at a tiny size and the mini model's affine count, counted by count_flops.counting.
COUNT_DRIVER = """
import json, sys
from pathlib import Path
repo, src, config = sys.argv[1:4]
sys.path.insert(0, repo)
from zoorepro.actbert.sources import activate
activate(Path(src))
import paddle
from paddlevideo.modeling.backbones.actbert import BertLayer
from zoorepro.actbert.count_flops import affine_count, count_test_forward, counting
from zoorepro.actbert.make_mini_model import build_model

paddle.seed(0)
layer = BertLayer(16, 32, "gelu", 0.1, 2, 0.1)
layer.eval()
with paddle.no_grad(), counting(layer) as tally:
    layer(paddle.randn([2, 5, 16]), paddle.zeros([2, 1, 1, 5]))
model = build_model(Path(config), 0)
model.eval()
vocab = int(model.backbone.bert.embeddings.word_embeddings.weight.shape[0])
print("RESULT " + json.dumps({"layer": dict(tally), "affine": affine_count(model, vocab),
                              "five": count_test_forward(model, 5, vocab)["total"]}))
"""


def run(args: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False)
    if check:
        assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def result_line(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("RESULT "))[len("RESULT "):])


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("src") / "actbert"
    prepare_sources(dest, REPO / "patches")
    return dest


@pytest.fixture(scope="module")
def counted(src, tmp_path_factory) -> dict:
    driver = tmp_path_factory.mktemp("count") / "driver.py"
    driver.write_text(COUNT_DRIVER)
    return result_line(run([driver, REPO, src, CONFIGS / "mini_msrvtt.yaml"], cwd=REPO).stdout)


def backbone(config: Path) -> dict:
    """The backbone's sizes: BertForMultiModalPreTraining's defaults (the document's config sets
    none), then what the config's MODEL.backbone sets."""
    sizes = {"vocab_size": 30522, "v_target_size": 1601, "a_target_size": 700, "v_feature_size": 2048,
             "a_feature_size": 2048, "num_hidden_layers": 12, "v_num_hidden_layers": 2, "a_num_hidden_layers": 3,
             "t_ent_attention_id": [10, 11], "hidden_size": 768, "v_hidden_size": 1024, "a_hidden_size": 768,
             "bi_hidden_size": 1024, "intermediate_size": 3072, "v_intermediate_size": 1024,
             "a_intermediate_size": 3072}
    sizes.update({k: v for k, v in yaml.safe_load(config.read_text())["MODEL"]["backbone"].items() if k != "name"})
    return sizes


def hand_count(c: dict) -> tuple[int, int]:
    """(fixed, per video) FLOPs of one caption's test forward, written out from the backbone's code:
    2 x MACs of every Linear and matmul. The text runs at batch 1 up to the first connection layer
    (its layers before it and that layer's text projections); from the connection layer's attention
    on, every text tensor carries the videos' batch."""
    St, Sv, Sa = TOKENS, REGIONS, ACTIONS
    H, Hv, Ha, Hb = c["hidden_size"], c["v_hidden_size"], c["a_hidden_size"], c["bi_hidden_size"]
    It, Iv, Ia = c["intermediate_size"], c["v_intermediate_size"], c["a_intermediate_size"]

    def bert_layer(seq, hidden, inter):  # QKV, attention output, FFN; QK^T and AV
        return seq * (4 * hidden * hidden + 2 * hidden * inter) + 2 * seq * seq * hidden

    n_connect = len(c["t_ent_attention_id"])
    text_before = c["t_ent_attention_id"][0]
    fixed = text_before * bert_layer(St, H, It) + St * 3 * H * Hb  # + the first connection's text QKV
    video = (Sv * (c["v_feature_size"] + 5) * Hv + Sa * c["a_feature_size"] * Ha  # region, action embeddings
             + c["v_num_hidden_layers"] * bert_layer(Sv, Hv, Iv) + c["a_num_hidden_layers"] * bert_layer(Sa, Ha, Ia)
             + (c["num_hidden_layers"] - text_before) * bert_layer(St, H, It))
    connect = (Sv * 3 * Hv * Hb + Sa * 3 * Ha * Hb  # region and action QKV
               + 2 * Sa * Sv * Hb + 2 * Sa * St * Hb  # actions attending to regions and to text
               + 4 * Sa * Hb * Hb  # key_av, key_at, value_at twice
               + 2 * Sv * Sv * Hb + 2 * St * St * Hb + 2 * Sa * Sa * Hb  # the three entangled attentions
               + Sv * Hb * Hv + St * Hb * H + Sa * Hb * Ha  # ent_output's three denses
               + 2 * Sv * Hv * Iv + 2 * St * H * It + 2 * Sa * Ha * Ia)  # the three FFNs
    video += n_connect * connect + (n_connect - 1) * St * 3 * H * Hb  # later connections' text QKV at batch N
    video += H * Hb + Hv * Hb + Ha * Hb + Hb * 2  # poolers, alignment head
    video += (St * (H * H + H * c["vocab_size"]) + Sv * (Hv * Hv + Hv * c["v_target_size"])
              + Sa * (Ha * Ha + Ha * c["a_target_size"]))  # masked-LM, region and action heads
    return 2 * fixed, 2 * video


# ---- the FLOP count ----------------------------------------------------------------------------

def test_matmul_flops_broadcast_the_batch_dims_and_honour_transposes():
    assert matmul_flops([1, 8, 36, 128], [7, 8, 128, 36]) == 2 * 7 * 8 * 36 * 128 * 36
    assert matmul_flops([4, 36, 768], [30522, 768], transpose_y=True) == 2 * 4 * 36 * 768 * 30522
    assert matmul_flops([3, 5], [3, 4], transpose_x=True) == 2 * 5 * 3 * 4
    assert linear_flops([2, 9, 16], [16, 48]) == 2 * 18 * 16 * 48
    with pytest.raises(ZooreproError, match="inner dimensions"):
        matmul_flops([2, 3], [4, 5])


def test_one_bert_layer_is_counted_as_the_hand_count(counted):
    batch, seq, hidden, inter = 2, 5, 16, 32
    linears = batch * seq * (3 * hidden * hidden + hidden * hidden + hidden * inter + inter * hidden)
    attention = 2 * batch * seq * seq * hidden  # QK^T and attention x V over both heads
    assert counted["layer"]["linear"] == 2 * linears
    assert counted["layer"]["matmul"] == 2 * attention
    assert counted["layer"]["calls"] == 6 + 2


def test_the_mini_models_count_is_affine_in_the_videos_and_matches_the_hand_count(counted):
    affine = counted["affine"]
    assert (affine["fixed"], affine["per_video"]) == hand_count(backbone(CONFIGS / "mini_msrvtt.yaml"))
    assert counted["five"] == affine["fixed"] + 5 * affine["per_video"]


def test_the_registered_full_size_count_is_the_hand_count_at_1000_videos():
    entry = yaml.safe_load((REPO / "claims" / "flops.yaml").read_text())["models"]["actbert"]
    fixed, per_video = hand_count(backbone(CONFIGS / "actbert_msrvtt.yaml"))
    assert entry["flops_per_sample"] == fixed + 1000 * per_video == entry["per_batch_size"][1]
    assert entry["parameters"] == 206012985 and "against 1000 videos" in entry["shapes"]
    assert entry["counted_by"] == "python -m zoorepro.actbert.count_flops"


# ---- the shape generator -----------------------------------------------------------------------

def test_the_vocabulary_has_bert_base_uncaseds_size_and_special_ids():
    vocab = shape_vocab()
    assert len(vocab) == len(set(vocab)) == VOCAB_SIZE
    assert [vocab.index(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 100, 101, 102, 103]
    assert vocab[N_UNUSED] == "[unused98]"


def test_make_shape_writes_the_formats_the_test_reads_at_their_real_sizes(src, tmp_path):
    out = tmp_path / "shape"
    run(["-m", "zoorepro.actbert.make_shape", "--out", out, "--src", src, "--config", CONFIGS / "mini_msrvtt.yaml",
         "--n-videos", 3], cwd=REPO)
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"ActBERT-shape.pdparams", "MSRVTT_JSFUSION_test.csv", "bert-vocab/vocab.txt",
                                      "msrvtt_test.lmdb/data.mdb"}
    assert manifest["params"]["n_videos"] == 3 and manifest["params"]["regions"] == REGIONS
    captions = read_captions(out / "MSRVTT_JSFUSION_test.csv")
    assert len(captions) == 3 and not captions.truncated
    assert all(6 <= len(caption.split()) <= 20 for _, caption in captions)
    for video_id, _ in captions:
        record = read_record(out / FEATURES_DIR, video_id)
        assert record["features"].shape == (REGIONS - 1, 2048) and record["features"].dtype == np.float32
        assert record["boxes"].shape == (REGIONS - 1, 4)
        assert record["action_features"].shape == (ACTIONS, 2048)
        assert record["action_features"].dtype == np.float32
    weights = run(["-c", "import sys; from zoorepro.actbert.weights import load_state; "
                         "s = load_state(sys.argv[1]); print(sum(v.size for k, v in s.items() if hasattr(v, 'size')))",
                   out / "ActBERT-shape.pdparams"], cwd=REPO).stdout
    tied = backbone(CONFIGS / "mini_msrvtt.yaml")
    assert int(weights.split()[-1]) == manifest["params"]["saved_values"]
    assert manifest["params"]["saved_values"] == manifest["params"]["parameters"] + tied["vocab_size"] * tied["hidden_size"]


# ---- the test step at shape scale --------------------------------------------------------------

def test_the_first_captions_are_scored_against_every_video_with_throughput_rows_only(src, tmp_path, mini_stage):
    import shutil

    shutil.copytree(mini_stage("actbert_data_mini") / MINI, tmp_path / MINI)
    work = tmp_path / "work"
    flops = {"fixed": 1_000_000, "per_video": 2_000_000, "method": "hand"}
    work.mkdir()
    (work / "flops.json").write_text(json.dumps(flops))
    (work / "peak.json").write_text(json.dumps({"chip": "cpu", "precision": "fp32", "flops": 1e10,
                                                "source": "a test's", "cards": []}))
    run(["-m", "zoorepro.actbert.test", "-c", CONFIGS / "mini_msrvtt.yaml", "-w", MINI / "ActBERT-mini.pdparams",
         "--src", src, "--device", "cpu", "--work-dir", "work/test", "--out", "work/metrics.json",
         "--measurements", "work/m.json", "--captions", 5, "--throughput-only",
         "--flops", "work/flops.json", "--peak", "work/peak.json"], cwd=tmp_path)
    metrics = json.loads((work / "metrics.json").read_text())
    assert (metrics["n_captions"], metrics["n_videos"], metrics["logged"]["batch_id"]) == (5, 24, 4)
    scores = np.load(work / "test" / "score_matrix.npy")
    assert scores.shape == (5, 24) and np.all(scores > 0)
    records = {r["metric"]: r for r in json.loads((work / "m.json").read_text())}
    assert set(records) == {"throughput", "throughput_pairs", "batch_latency", "harness_overhead",
                            "throughput % of peak"}
    rate = 5 / metrics["timing"]["loop_s"]
    assert math.isclose(records["throughput"]["value"], rate)
    assert math.isclose(records["throughput_pairs"]["value"], 24 * rate)
    assert math.isclose(records["throughput % of peak"]["value"], 100 * rate * (1e6 + 24 * 2e6) / 1e10)
    assert "0.049 GFLOP a caption against 24 videos" in records["throughput % of peak"]["note"]


def test_a_caption_count_below_one_is_refused(src, tmp_path):
    result = run(["-m", "zoorepro.actbert.test", "-c", CONFIGS / "mini_msrvtt.yaml", "-w", __file__,
                  "--work-dir", tmp_path, "--captions", 0], cwd=REPO, check=False)
    assert result.returncode != 0 and "--captions 0" in result.stdout + result.stderr
