"""ClipBERT for video QA (task frameqa), written for this project from the architecture facts in
../shared/upstream/next_stage.md section B4 and the project's research notes: the published code
needs detectron2, NVIDIA apex and transformers 2.11 internals, none of which install here.

State-dict names and shapes are ClipBERT's (`cnn.*`, `transformer.*`; 495 keys at the base config
with 12,911 labels), so its checkpoints (`ckpt/model_step_N.pt`: a flat dict of tensors) load
strictly and ours load into it:

* `cnn.feature.backbone`: detectron2's ResNet-50 up to res5 (MSRA style: stride in the 1x1 conv,
  FrozenBN, res5 dilation 1), every conv a `Conv2d` with a `norm` child and no bias;
* `cnn.feature.proposal_generator`, `cnn.feature.roi_heads`: the RPN and attribute ROI heads that
  ClipBERT's GridFeatBackbone builds as part of a GeneralizedRCNN and never runs. They are kept
  (as parameters, unused in forward) only so the checkpoint layout round-trips;
* `cnn.grid_encoder`: conv3x3 (no bias) -> MaxPool2d(2) -> ReLU;
* `transformer.bert`: BERT (post-LN, erf GELU, additive mask (1 - m) * -10000) over
  [text tokens; visual grid tokens]; the visual embedding averages the clip's frames, adds row and
  column position embeddings and its own one-row token type, then LayerNorm and dropout (its
  `position_embeddings` table exists in the checkpoint and is unused, as upstream);
* `transformer.classifier`: Linear(h, 2h) -> ReLU -> Linear(2h, num_labels).

Clips are independent forwards; their logits (not probabilities) are aggregated by mean, max or
log-sum-exp (`aggregate_clips`). Frames enter normalised RGB (mean subtracted, std 1: `normalize`)
and the CNN flips them to BGR, as ClipBERT's ImageNorm + GridFeatBackbone do.

Widths: the base config is base_model.json's. The mini scale narrows everything through the same
config keys (`hidden_size`, `num_hidden_layers`, ..., `backbone_channel_in_size`): the ResNet's
stem width is `backbone_channel_in_size // 32` (64 for 2048) and the unused detector heads scale
with it, so a mini checkpoint has the real key names at reduced widths (a project choice; upstream
has no width knob for the CNN).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from zoorepro.errors import ZooreproError

MIN_NUM_LABELS = 1540          # run_video_qa: num_labels = max(len(ans2label), 1540)
PIXEL_MEAN_RGB = (123.675, 116.28, 103.53)   # the run config's img_pixel_mean (std 1, no /255)
STAGE_BLOCKS = (3, 4, 6, 3)    # ResNet-50: res2..res5
N_ANCHORS = 15                 # detectron2 RPN defaults: 5 sizes x 3 aspect ratios
ANCHOR_SIZES, ANCHOR_RATIOS = (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)
N_DET_CLASSES, N_ATTRIBUTES = 1600, 400   # grid-feat's Visual Genome heads
AGGREGATIONS = ("mean", "max", "lse")


@dataclass(frozen=True)
class ClipBertConfig:
    """base_model.json's fields plus num_labels (set at run time from ans2label)."""

    num_labels: int
    # base_model.json (ClipBERT src/configs/base_model.json): its values, in its key order
    max_temporal_position_embeddings: int = 100
    backbone_channel_in_size: int = 2048
    max_grid_row_position_embeddings: int = 100
    max_grid_col_position_embeddings: int = 100
    attention_probs_dropout_prob: float = 0.1
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    hidden_size: int = 768
    initializer_range: float = 0.02
    intermediate_size: int = 3072
    layer_norm_eps: float = 1e-12
    max_position_embeddings: int = 512
    model_type: str = "bert"
    num_attention_heads: int = 12
    num_hidden_layers: int = 12
    pad_token_id: int = 0
    type_vocab_size: int = 2
    vocab_size: int = 30522

    def __post_init__(self):
        problems = []
        if self.hidden_act != "gelu":
            problems.append(f"hidden_act {self.hidden_act!r} (ClipBERT's base model uses gelu)")
        if self.hidden_size % self.num_attention_heads:
            problems.append(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                            f"{self.num_attention_heads}")
        if self.backbone_channel_in_size % 32 or self.backbone_channel_in_size < 64:
            problems.append(f"backbone_channel_in_size {self.backbone_channel_in_size} is not 32 x a stem width "
                            "(ResNet-50's res5 has 32 x the stem's 64 channels: 2048)")
        if self.num_labels < 1:
            problems.append(f"num_labels {self.num_labels}")
        if problems:
            raise ZooreproError("ClipBERT model config: " + "; ".join(problems))

    @classmethod
    def from_model_config(cls, model_config: dict, num_labels: int) -> "ClipBertConfig":
        """From a log/model_config.json (base_model.json's keys) and the label count."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(model_config) - known)
        if unknown:
            raise ZooreproError(f"model_config.json: unknown keys {unknown}")
        return cls(num_labels=num_labels, **model_config)

    def model_config(self) -> dict:
        """What log/model_config.json holds: base_model.json's keys (no num_labels), its order."""
        values = asdict(self)
        return {k: values[k] for k in BASE_MODEL}

    @property
    def stem_width(self) -> int:
        return self.backbone_channel_in_size // 32


# base_model.json itself: the config's defaults, in its key order
BASE_MODEL = {f.name: f.default for f in fields(ClipBertConfig) if f.name != "num_labels"}


def num_labels_for(n_answers: int) -> int:
    return max(n_answers, MIN_NUM_LABELS)


def _torch():
    import torch
    from torch import nn
    return torch, nn


def build_model(config: ClipBertConfig):
    """A ClipBertQA (torch.nn.Module). Built lazily so importing this module does not import torch."""
    return _classes()["ClipBertQA"](config)


_CLASSES: dict = {}


def _classes() -> dict:  # noqa: C901 - the module definitions, kept together in reading order
    if _CLASSES:
        return _CLASSES
    torch, nn = _torch()
    F = torch.nn.functional

    class FrozenBatchNorm2d(nn.Module):
        """detectron2's FrozenBN: four buffers, y = x * scale + (bias - mean * scale), eps 1e-5."""

        def __init__(self, n: int, eps: float = 1e-5):
            super().__init__()
            self.eps = eps
            self.register_buffer("weight", torch.ones(n))
            self.register_buffer("bias", torch.zeros(n))
            self.register_buffer("running_mean", torch.zeros(n))
            self.register_buffer("running_var", torch.ones(n) - eps)

        def forward(self, x):
            scale = self.weight * (self.running_var + self.eps).rsqrt()
            shift = self.bias - self.running_mean * scale
            return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    class NormConv2d(nn.Conv2d):
        """detectron2's Conv2d with a `norm` child (no bias): keys <name>.weight, <name>.norm.*."""

        def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
            super().__init__(cin, cout, kernel, stride=stride, padding=padding, bias=False)
            self.norm = FrozenBatchNorm2d(cout)

        def forward(self, x):
            return self.norm(super().forward(x))

    class Stem(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.conv1 = NormConv2d(3, width, 7, stride=2, padding=3)

        def forward(self, x):
            return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, bottleneck: int, cout: int, stride: int):
            super().__init__()
            self.shortcut = NormConv2d(cin, cout, 1, stride=stride) if cin != cout else None
            self.conv1 = NormConv2d(cin, bottleneck, 1, stride=stride)     # stride in the 1x1 (MSRA)
            self.conv2 = NormConv2d(bottleneck, bottleneck, 3, padding=1)
            self.conv3 = NormConv2d(bottleneck, cout, 1)

        def forward(self, x):
            out = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
            return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))

    class ResNetC5(nn.Module):
        """stem + res2..res5 (3, 4, 6, 3 blocks); output stride 32, 32 x stem width channels."""

        def __init__(self, width: int):
            super().__init__()
            self.stem = Stem(width)
            cin = width
            for i, n in enumerate(STAGE_BLOCKS):
                bottleneck, cout = width * 2 ** i, width * 4 * 2 ** i
                blocks = [Bottleneck(cin if b == 0 else cout, bottleneck, cout, (1 if i == 0 else 2) if b == 0 else 1)
                          for b in range(n)]
                self.add_module(f"res{i + 2}", nn.Sequential(*blocks))
                cin = cout

        def forward(self, x):
            x = self.stem(x)
            for i in range(len(STAGE_BLOCKS)):
                x = getattr(self, f"res{i + 2}")(x)
            return x

    class AnchorGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell_anchors = nn.Module()  # detectron2's BufferList: key cell_anchors.0
            self.cell_anchors.register_buffer("0", cell_anchors())

    class RPNHead(nn.Module):
        def __init__(self, c: int):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.objectness_logits = nn.Conv2d(c, N_ANCHORS, 1)
            self.anchor_deltas = nn.Conv2d(c, N_ANCHORS * 4, 1)

    class ProposalGenerator(nn.Module):
        """Unused in forward (ClipBERT reads res5 only); kept for the checkpoint layout."""

        def __init__(self, c: int):
            super().__init__()
            self.anchor_generator = AnchorGenerator()
            self.rpn_head = RPNHead(c)

    class BoxHead(nn.Module):
        def __init__(self, c: int, fc: int):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(c, fc), nn.Linear(fc, fc)

    class BoxPredictor(nn.Module):
        def __init__(self, fc: int):
            super().__init__()
            self.cls_score = nn.Linear(fc, N_DET_CLASSES + 1)
            self.bbox_pred = nn.Linear(fc, N_DET_CLASSES * 4)

    class AttributePredictor(nn.Module):
        def __init__(self, fc: int, embed: int, hidden: int):
            super().__init__()
            self.obj_embed = nn.Embedding(N_DET_CLASSES + 1, embed)
            self.fc = nn.Sequential(nn.Linear(fc + embed, hidden), nn.ReLU())
            self.attr_score = nn.Linear(hidden, N_ATTRIBUTES)

    class ROIHeads(nn.Module):
        """Unused in forward; kept for the checkpoint layout (grid-feat's attribute ROI heads)."""

        def __init__(self, c: int):
            super().__init__()
            fc = c // 2                       # 1024 for res5's 2048 channels
            self.box_head = BoxHead(c, fc)
            self.box_predictor = BoxPredictor(fc)
            self.attribute_predictor = AttributePredictor(fc, c // 8, c // 4)   # 256 and 512 at 2048

    class Detector(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.backbone = ResNetC5(config.stem_width)
            self.proposal_generator = ProposalGenerator(config.backbone_channel_in_size)
            self.roi_heads = ROIHeads(config.backbone_channel_in_size)

    class GridFeatBackbone(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.feature = Detector(config)
            self.grid_encoder = nn.Sequential(
                nn.Conv2d(config.backbone_channel_in_size, config.hidden_size, 3, padding=1, bias=False),
                nn.MaxPool2d(kernel_size=2, stride=2), nn.ReLU(inplace=True))

        def forward(self, frames):
            """frames (B, T, 3, H, W) normalised RGB -> grid (B, T, H/64, W/64, hidden)."""
            b, t = frames.shape[:2]
            if min(frames.shape[-2:]) < 64:
                raise ZooreproError(f"frames of {tuple(frames.shape[-2:])} pixels: the grid (stride 64) needs "
                                    "at least 64")
            x = frames.reshape(b * t, *frames.shape[2:])[:, [2, 1, 0]]      # RGB -> BGR
            grid = self.grid_encoder(self.feature.backbone(x))
            return grid.reshape(b, t, *grid.shape[1:]).permute(0, 1, 3, 4, 2)

    class TextEmbeddings(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            h = config.hidden_size
            self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
            self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

        def forward(self, ids):
            positions = torch.arange(ids.shape[1], device=ids.device)
            x = self.word_embeddings(ids) + self.position_embeddings(positions)[None] \
                + self.token_type_embeddings(torch.zeros_like(ids))
            return self.dropout(self.LayerNorm(x))

    class VisualInputEmbedding(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            h = config.hidden_size
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)   # unused, as upstream
            self.row_position_embeddings = nn.Embedding(config.max_grid_row_position_embeddings, h)
            self.col_position_embeddings = nn.Embedding(config.max_grid_col_position_embeddings, h)
            self.token_type_embeddings = nn.Embedding(1, h)
            self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

        def forward(self, grid):
            """grid (B, T, H, W, h) -> (B, H*W, h): frames averaged, 2-D positions, type 0."""
            grid = grid.mean(1)
            b, rows, cols, h = grid.shape
            if rows > self.row_position_embeddings.num_embeddings or cols > self.col_position_embeddings.num_embeddings:
                raise ZooreproError(f"a {rows}x{cols} grid exceeds the model's position tables")
            grid = grid + self.row_position_embeddings(torch.arange(rows, device=grid.device))[None, :, None] \
                + self.col_position_embeddings(torch.arange(cols, device=grid.device))[None, None]
            tokens = grid.reshape(b, rows * cols, h)
            tokens = tokens + self.token_type_embeddings(torch.zeros(1, dtype=torch.long, device=grid.device))
            return self.dropout(self.LayerNorm(tokens))

    class SelfAttention(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            h = config.hidden_size
            self.heads = config.num_attention_heads
            self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
            self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

        def forward(self, x, additive_mask):
            b, n, h = x.shape
            split = lambda t: t.reshape(b, n, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + additive_mask
            context = self.dropout(scores.softmax(-1)) @ v
            return context.transpose(1, 2).reshape(b, n, h)

    class DenseLayerNorm(nn.Module):
        """dense -> dropout -> LayerNorm(x + residual): BertSelfOutput and BertOutput."""

        def __init__(self, cin: int, config: ClipBertConfig):
            super().__init__()
            self.dense = nn.Linear(cin, config.hidden_size)
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

        def forward(self, x, residual):
            return self.LayerNorm(self.dropout(self.dense(x)) + residual)

    class Attention(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.self = SelfAttention(config)
            self.output = DenseLayerNorm(config.hidden_size, config)

        def forward(self, x, additive_mask):
            return self.output(self.self(x, additive_mask), x)

    class Intermediate(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

        def forward(self, x):
            return F.gelu(self.dense(x))      # erf GELU (transformers' "gelu")

    class Layer(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.attention = Attention(config)
            self.intermediate = Intermediate(config)
            self.output = DenseLayerNorm(config.intermediate_size, config)

        def forward(self, x, additive_mask):
            attended = self.attention(x, additive_mask)
            return self.output(self.intermediate(attended), attended)

    class Encoder(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))

        def forward(self, x, additive_mask):
            for layer in self.layer:
                x = layer(x, additive_mask)
            return x

    class Pooler(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)

        def forward(self, sequence):
            return torch.tanh(self.dense(sequence[:, 0]))

    class ClipBertBaseModel(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.embeddings = TextEmbeddings(config)
            self.visual_embeddings = VisualInputEmbedding(config)
            self.encoder = Encoder(config)
            self.pooler = Pooler(config)

        def forward(self, text_ids, text_mask, grid=None):
            """[text; visual] tokens through BERT -> (sequence, pooled). grid None: text only."""
            tokens, mask = self.embeddings(text_ids), text_mask
            if grid is not None:
                visual = self.visual_embeddings(grid)
                tokens = torch.cat([tokens, visual], 1)
                mask = torch.cat([mask, mask.new_ones(visual.shape[:2])], 1)
            additive = (1.0 - mask[:, None, None, :].to(tokens.dtype)) * -10000.0
            sequence = self.encoder(tokens, additive)
            return sequence, self.pooler(sequence)

    class ClipBertForSequenceClassification(nn.Module):
        def __init__(self, config: ClipBertConfig):
            super().__init__()
            h = config.hidden_size
            self.bert = ClipBertBaseModel(config)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.classifier = nn.Sequential(nn.Linear(h, 2 * h), nn.ReLU(True), nn.Linear(2 * h, config.num_labels))

        def forward(self, text_ids, text_mask, grid):
            return self.classifier(self.dropout(self.bert(text_ids, text_mask, grid)[1]))

    class ClipBertQA(nn.Module):
        """ClipBERT (cnn + transformer) for frameqa; `forward` runs one clip."""

        def __init__(self, config: ClipBertConfig):
            super().__init__()
            self.config = config
            self.cnn = GridFeatBackbone(config)
            self.transformer = ClipBertForSequenceClassification(config)
            self.apply(self._init_weights)
            for frozen in (self.cnn.feature.backbone.stem, self.cnn.feature.backbone.res2):
                frozen.requires_grad_(False)     # detectron2's FREEZE_AT 2: stem and res2 stay as loaded

        def _init_weights(self, module):
            """BERT's init for the transformer and the detector heads (N(0, 0.02), zero bias, unit
            LayerNorm); He (fan-out) for the CNN's convolutions, as detectron2's c2_msra_fill."""
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=self.config.initializer_range)
                if isinstance(module, nn.Linear):
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

        def forward(self, text_ids, text_mask, frames):
            """One clip: frames (B, T, 3, H, W) normalised RGB -> logits (B, num_labels)."""
            return self.transformer(text_ids, text_mask, self.cnn(frames))

        def clip_logits(self, text_ids, text_mask, video, n_clips: int):
            """video (B, n_clips * T, 3, H, W): clip k is frames [k*T, (k+1)*T) -> (n_clips, B, labels)."""
            b, total = video.shape[:2]
            if total % n_clips:
                raise ZooreproError(f"{total} frames do not split into {n_clips} clips")
            clips = video.reshape(b, n_clips, total // n_clips, *video.shape[2:])
            return torch.stack([self(text_ids, text_mask, clips[:, k]) for k in range(n_clips)])

    _CLASSES.update({k: v for k, v in locals().items() if isinstance(v, type)})
    return _CLASSES


def cell_anchors():
    """detectron2's default RPN cell anchors (sizes outer, aspect ratios inner): (15, 4)."""
    torch, _ = _torch()
    rows = []
    for size in ANCHOR_SIZES:
        for ratio in ANCHOR_RATIOS:
            w = math.sqrt(size * size / ratio)
            h = ratio * w
            rows.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(rows)


def aggregate_clips(logits, how: str):
    """(n_clips, B, labels) logits -> (B, labels): ClipBERT's --score_agg_func at evaluation."""
    if how == "mean":
        return logits.mean(0)
    if how == "max":
        return logits.max(0)[0]
    if how == "lse":
        return logits.logsumexp(0)
    raise ZooreproError(f"score_agg_func {how!r} (one of {', '.join(AGGREGATIONS)})")


def training_loss(logits, labels, how: str):
    """Mean over the batch of ClipBERT's training loss on clip logits (n_clips, B, labels): cross
    entropy of the mean- or max-aggregated logits; for lse, -log(sum_k exp(l_k,y) / sum_k,c exp(l_k,c))."""
    torch, _ = _torch()
    if how in ("mean", "max"):
        return torch.nn.functional.cross_entropy(aggregate_clips(logits, how), labels)
    if how == "lse":
        per_clip = logits.permute(1, 0, 2)                          # (B, K, C)
        total = per_clip.flatten(1).logsumexp(1)                    # over every clip and class
        own = per_clip.logsumexp(1).gather(1, labels[:, None])[:, 0]  # over clips, the label's class
        return (total - own).mean()
    raise ZooreproError(f"score_agg_func {how!r} (one of {', '.join(AGGREGATIONS)})")


def normalize(frames):
    """ClipBERT's ImageNorm: float RGB in [0, 255] minus the RGB pixel mean (std 1, no /255)."""
    torch, _ = _torch()
    mean = torch.tensor(PIXEL_MEAN_RGB, dtype=frames.dtype, device=frames.device).reshape(1, 1, 3, 1, 1)
    return frames.float() - mean


def check_state_dict(model, state: dict, what: str) -> None:
    """Strict key and shape match against the model, one error naming every difference."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})"
                    for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise ZooreproError(f"{what} does not fit ClipBERT ({model.config.num_hidden_layers} layers, hidden "
                            f"{model.config.hidden_size}, {model.config.num_labels} labels): " + "; ".join(parts))


def load_checkpoint(model, path) -> None:
    """A `model_step_N.pt` (a flat dict of tensors), read weights-only, loaded strictly."""
    torch, _ = _torch()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable or non-tensor file: one clear error
        raise ZooreproError(f"{path}: not a weights-only torch state dict ({exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ZooreproError(f"{path}: expected a flat dict of tensors (ClipBERT's model_step_N.pt)")
    check_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=True)


# The e2e pretrained checkpoint is ClipBertForPreTraining's: its MLM/ITM heads are not in the QA
# model, and the QA classifier is not in it (upstream loads name- and shape-matching keys only).
PRETRAINED_ONLY_PREFIX = "transformer.cls."
FINETUNE_ONLY_PREFIX = "transformer.classifier."


def load_pretrained(model, path) -> dict:
    """The e2e pretrained weights as ClipBERT's load_state_dict_with_mismatch loads them, but fail
    closed: only the pretraining heads may be extra and only the classifier missing. Returns
    what was skipped (for the step's log)."""
    torch, _ = _torch()
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    extra = sorted(k for k in set(state) - set(own))
    missing = sorted(k for k in set(own) - set(state))
    bad = [k for k in extra if not k.startswith(PRETRAINED_ONLY_PREFIX)] + \
          [k for k in missing if not k.startswith(FINETUNE_ONLY_PREFIX)]
    shapes = [k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad or shapes:
        raise ZooreproError(f"{path}: not ClipBERT's e2e pretrained checkpoint for this model "
                            f"(unexpected or missing: {', '.join(bad[:8]) or '-'}; wrong shape: "
                            f"{', '.join(sorted(shapes)[:8]) or '-'})")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return {"skipped_from_file": extra, "kept_at_init": missing}
