"""The settings of a ``lookalike train`` run, and the preprocessing the trained model is served with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lookalike.extractors.base import PreprocessCfg
from lookalike.training.model import HeadCfg

__all__ = ["EVAL_PREPROCESS", "TrainConfig"]

#: The preprocessing the trained model is served with (and evaluated with here).
EVAL_PREPROCESS = PreprocessCfg(size=224, resize_mode="center_crop", mean=(127.0,) * 3, std=(128.0,) * 3)


@dataclass
class TrainConfig:
    """Everything a training run depends on."""

    datasets: Path
    out: Path
    cache_dir: Path
    seed: int = 0
    epochs: int = 6
    steps: int | None = None  # overrides epochs when set
    batch_size: int = 256
    lr: float = 2e-3
    backbone_lr: float = 2e-4
    weight_decay: float = 1e-4
    composite_views: int = 0  # composited views per training product (measured: they did not help)
    photo_views: int = 3  # augmented views per training photo
    small_products: int = 0  # products of the 60 x 80 full catalogue to add (-1: every one allowed)
    photo_weight: float = 2.0
    photo_balance: float = 0.0  # photos of rare labels weigh more: (mean count / label count) ** this
    scale: float = 24.0
    margin: float = 0.2
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {"type": 1.0, "colour": 0.5, "type_colour": 1.0, "gender": 0.2}
    )
    max_images: int | None = None  # tiny runs: at most this many products and photos
    head: HeadCfg = field(default_factory=HeadCfg)
    threads: int = 2  # onnxruntime threads (caching, export check, speed comparison)
    torch_threads: int = 1  # torch threads for the head (small matrices: one thread is fastest on a busy CPU)
    evaluate: bool = True
    benchmark: bool = True  # images/s vs ImageNet Lite0 after export
