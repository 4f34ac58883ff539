"""Training the kind branch (``lookalike train-kind --branch``): a deeper, class-balanced fine-tune for the kind.

The kind head reads the 256-d embedding, which was trained for likeness and (on the training contributors' photos)
remembers its training photos. The branch reads earlier: the 7 x 7 maps of block 14 of the shipped INT8
``lookalike-fashion`` graph (the frozen ImageNet trunk's output), through its own copy of EfficientNet-Lite0's last
block and head convolution (ImageNet weights, fine-tuned) and a linear softmax over the head's classes. The maps of
every training view are computed once by the shipped graph itself (an extra output), so the branch learns on what
it will read at search time. Data: the catalogue's training split (one mild view each), the small catalogue (at most
``per_class`` per kind), the training contributors' photos (the picture, its mirror and ``photo_views`` phone-like
views each; partial labels as the head's); each half of the loss class-balanced. The result is one graph: the
shipped model unchanged plus the branch (``embedding`` and ``kind`` outputs), written next to the head's JSON, which
names it (:class:`lookalike.kind.KindBranchSpec`). Needs the training extras (torch, onnx).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.kind.model import KindBranchSpec, KindModel
from lookalike.training.kind import _balance

__all__ = ["FEATURE_TENSOR", "BranchCfg", "branch_graph", "train_kind_branch"]

ProgressFn = Callable[[str, int, int], None]
#: The shipped INT8 graph's tensor the branch reads: block 14's output (quantised), (n, 192, 7, 7).
FEATURE_TENSOR = "/trunk/blocks.14/Add_output_0"


@dataclass(frozen=True)
class BranchCfg:
    """How the branch is trained (the shipped one: these defaults)."""

    steps: int = 800
    batch: int = 128  # half catalogue shots, half photo views
    lr: float = 3e-4  # the fine-tuned block and convolution (the new linear layer: 3x)
    weight_decay: float = 1e-4
    dropout: float = 0.2
    balance: float = 0.5  # example weight = (count of its class or label set) ** -balance
    photo_views: int = 3  # phone-like views of each training photo, beside the picture and its mirror
    per_class: int = 400  # small-catalogue products per article type
    weight: float = 0.5  # the branch's weight in the geometric mean with the head
    seed: int = 0


def _with_feature_output(model_path: Path) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path))
    graph = model.graph
    q = FEATURE_TENSOR
    graph.node.append(helper.make_node("DequantizeLinear", [f"{q}_quantized", f"{q}_scale", f"{q}_zero_point"],
                                       ["feat"], name="kind_branch_feat"))  # fmt: skip
    graph.output.append(helper.make_tensor_value_info("feat", TensorProto.FLOAT, None))
    return model.SerializeToString()


def _maps(session: Any, items: Sequence[Any], view: Callable[[Any, np.random.Generator], Any], seed: int,
          progress: ProgressFn | None, part: str) -> np.ndarray:  # fmt: skip
    """Block-14 maps (float16) of ``view(item, rng)`` for each item, two decoding threads ahead of the model."""
    out = np.zeros((len(items), 192, 7, 7), np.float16)

    def prep(i: int) -> np.ndarray:
        return view(items[i], np.random.default_rng([seed, i]))

    with ThreadPoolExecutor(2) as pool:
        for s in range(0, len(items), 32):
            x = np.stack(list(pool.map(prep, range(s, min(len(items), s + 32)))))
            out[s : s + len(x)] = session.run(["feat"], {"x": x})[0]
            if progress is not None:
                progress(part, s + len(x), len(items))
    return out


def branch_data(root: Path, fashion: Path, cfg: BranchCfg, progress: ProgressFn | None = None) -> dict[str, Any]:
    """The training views' maps and labels, and the held-out photos' (picture and mirror) for the report."""
    import onnxruntime as ort
    from PIL import Image

    from lookalike.evaluate.datasets import catalog_rows, photo_task
    from lookalike.evaluate.harness import load_model
    from lookalike.imaging.decode import load_image
    from lookalike.training import augment as A
    from lookalike.training.kind import _small_rows, photo_labels

    _, ex = load_model("lookalike-fashion")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(_with_feature_output(fashion), opts, providers=["CPUExecutionProvider"])
    gallery, grows = catalog_rows(root)
    classes = tuple(sorted({r["articleType"] for r in grows}))
    index = {c: i for i, c in enumerate(classes)}
    train = [i for i, r in enumerate(grows) if int(r["id"]) % 5 != 0]

    def shot(p: Path, rng: np.random.Generator) -> np.ndarray:
        return ex.preprocess(A.catalog_view(load_image(p), rng))

    def plain(p: Path, _rng: np.random.Generator) -> np.ndarray:
        return ex.preprocess(load_image(p))

    def phone(p: Path, rng: np.random.Generator) -> np.ndarray:
        return ex.preprocess(A.photo_view(load_image(p, draft_size=448), rng))

    shots = [_maps(session, [gallery.paths[i] for i in train], shot, cfg.seed + 1, progress, "catalogue")]
    labels = [index[grows[i]["articleType"]] for i in train]
    small_folder = root / "fashion-product-images-small"
    if (small_folder / "labels.csv").is_file() and cfg.per_class > 0:
        rows = _small_rows(small_folder, set(classes), cfg.per_class, cfg.seed)
        small = [small_folder / r["image"] for r in rows]
        shots.append(_maps(session, small, plain, cfg.seed, progress, "small catalogue"))
        labels += [index[r["articleType"]] for r in rows]
    task = photo_task(root)
    sets, side, has_fine = photo_labels(root, task.queries.ids, task.query_groups, index)
    paths = list(task.queries.paths)

    def clean(p: Path, _rng: np.random.Generator, flip: bool = False) -> np.ndarray:
        img = load_image(p).convert("RGB")
        return ex.preprocess(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else img)

    picture = _maps(session, paths, clean, 0, progress, "photos")
    mirror = _maps(session, paths, lambda p, r: clean(p, r, True), 0, progress, "mirrored photos")
    tr, held = np.flatnonzero(side), np.flatnonzero(~side)
    aug_items = [paths[i] for _ in range(cfg.photo_views) for i in tr]
    augmented = _maps(session, aug_items, phone, cfg.seed + 2, progress, "photo views")
    return {
        "classes": classes,
        "shots": np.concatenate(shots),
        "shot_labels": np.array(labels, dtype=np.int64),
        "photos": np.concatenate([picture[tr], mirror[tr], augmented]),
        "photo_sets": [sets[i] for i in tr] * (2 + cfg.photo_views),
        "held": (picture[held], mirror[held], [sets[i] for i in held], [bool(has_fine[i]) for i in held]),
        "counts": {
            "catalogue shots": len(train),
            "small-catalogue shots": len(labels) - len(train),
            "photos": len(tr),
            "photo views": len(tr) * (2 + cfg.photo_views),
        },
    }


def _branch_module(classes: int, dropout: float) -> Any:
    import torch
    from torch import nn

    from lookalike.extractors.export import load_torch_backbone

    backbone = load_torch_backbone("efficientnet-lite0")

    class Branch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = copy.deepcopy(backbone._blocks[15])
            self.conv_head = copy.deepcopy(backbone._conv_head)
            self.bn1 = copy.deepcopy(backbone._bn1)
            self.act = backbone._swish
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(self.conv_head.out_channels, classes)
            nn.init.zeros_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            h = self.act(self.bn1(self.conv_head(self.block(x))))
            return self.fc(self.drop(h.mean(dim=(2, 3))))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.logits(x), dim=-1)

    return Branch()


def _weights(keys: Sequence[Any], power: float) -> np.ndarray:
    w = _balance(keys, power)
    return w / w.mean()


def fit_branch(data: dict[str, Any], cfg: BranchCfg, progress: ProgressFn | None = None) -> Any:
    """The branch trained on ``data``'s maps: AdamW, one-cycle schedule, batch norms kept as ImageNet's."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(cfg.seed)
    n_classes = len(data["classes"])
    net = _branch_module(n_classes, cfg.dropout)
    shots, shot_y = data["shots"], data["shot_labels"]
    photos, sets = data["photos"], data["photo_sets"]
    shot_w = _weights(shot_y.tolist(), cfg.balance)
    photo_w = _weights([tuple(sorted(s)) for s in sets], cfg.balance)
    masks = np.zeros((len(sets), n_classes), np.float32)
    for i, s in enumerate(sets):
        masks[i, sorted(s)] = 1.0
    pretrained = [*net.block.parameters(), *net.conv_head.parameters(), *net.bn1.parameters()]
    groups = [{"params": list(net.fc.parameters()), "lr": cfg.lr * 3}, {"params": pretrained, "lr": cfg.lr}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=cfg.steps,
                                                pct_start=0.05)  # fmt: skip
    rng = np.random.default_rng(cfg.seed)
    half = cfg.batch // 2

    def take(x: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x[idx].astype(np.float32))
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        t[flip] = t[flip].flip(-1)
        return t

    for step in range(cfg.steps):
        net.train()
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        si, pi = rng.integers(0, len(shots), half), rng.integers(0, len(photos), half)
        logits = net.logits(torch.cat([take(shots, si), take(photos, pi)]))
        shot_loss = F.cross_entropy(logits[:half], torch.from_numpy(shot_y[si]), reduction="none")
        log_p = torch.log_softmax(logits[half:], dim=-1) + torch.log(torch.from_numpy(masks[pi]).clamp_min(1e-12))
        photo_loss = -torch.logsumexp(log_p, dim=-1)
        loss = (shot_loss * torch.from_numpy(shot_w[si])).mean() + (photo_loss * torch.from_numpy(photo_w[pi])).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress("branch", step + 1, cfg.steps)
    return net.eval()


def branch_probabilities(net: Any, maps: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(maps[s : s + 256].astype(np.float32))).numpy()
                               for s in range(0, len(maps), 256)]) if len(maps) else np.zeros((0, 1))  # fmt: skip


def branch_graph(net: Any, fashion: Path, out: Path) -> Path:
    """Write the shipped graph with the branch grafted on (outputs ``embedding`` and ``kind``) to ``out``."""
    import io

    import onnx
    import torch
    from onnx import compose

    buf = io.BytesIO()
    torch.onnx.export(net, (torch.zeros(2, 192, 7, 7),), buf, input_names=["feat"], output_names=["kind"],
                      dynamic_axes={"feat": {0: "n"}, "kind": {0: "n"}}, opset_version=17, dynamo=False)  # fmt: skip
    branch = compose.add_prefix(onnx.load_from_string(buf.getvalue()), "kind/")
    trunk = onnx.load_from_string(_with_feature_output(fashion))
    merged = compose.merge_models(trunk, branch, io_map=[("feat", "kind/feat")], outputs=["embedding", "kind/kind"])
    for o in merged.graph.output:
        if o.name == "kind/kind":
            o.name = "kind"
    for node in merged.graph.node:
        node.output[:] = ["kind" if x == "kind/kind" else x for x in node.output]
    tmp = out.with_suffix(".tmp")
    onnx.save(merged, str(tmp))
    tmp.replace(out)
    return out


def train_kind_branch(
    root: str | Path, head_file: str | Path, cfg: BranchCfg | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Train the branch for the kind head at ``head_file`` (its classes), write ``lookalike-kind.onnx`` next to it
    and name it in the head's file; returns the report (also in the head's ``info["branch"]``)."""
    from lookalike.evaluate.datasets import resolve_datasets_root
    from lookalike.extractors.identity import file_sha256, spec_weights

    cfg = cfg or BranchCfg()
    start = time.perf_counter()
    base = resolve_datasets_root(root)
    head_file = Path(head_file)
    head = KindModel.load(head_file)
    fashion = spec_weights("lookalike-fashion")  # the graph a catalogue of the default model runs
    if fashion is None:
        raise FileNotFoundError("the lookalike-fashion model file is not installed")
    data = branch_data(base, fashion, cfg, progress)
    if tuple(data["classes"]) != head.classes:
        raise ValueError(f"the head's classes are not the catalogue's kinds ({head_file})")
    net = fit_branch(data, cfg, progress)
    picture, mirror, held_sets, held_fine = data["held"]
    branch = (branch_probabilities(net, picture) + branch_probabilities(net, mirror)) / 2
    right = [int(p.argmax()) in s for p, s in zip(branch, held_sets, strict=True)]
    out = head_file.with_suffix(".onnx")
    branch_graph(net, fashion, out)
    report = {
        "data": data["counts"],
        "settings": asdict(cfg),
        "heldout_top1": round(float(np.mean(right)), 4) if right else None,
        "heldout_fine_top1": round(float(np.mean([r for r, f in zip(right, held_fine, strict=True) if f])), 4)
        if any(held_fine)
        else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    head = replace(head, branch=KindBranchSpec(out.name, file_sha256(fashion), cfg.weight))
    head.info = {**head.info, "branch": report}
    head.save(head_file)
    return report
