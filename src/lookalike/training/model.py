"""The fashion embedder: a frozen EfficientNet-Lite0 trunk and a trainable head.

The trunk (stem and blocks ``0 .. split-1``) is frozen; its outputs are computed once per augmented
view and cached (see :mod:`lookalike.training.cache`). It returns two maps:

* ``feat``: the output of block ``split - 1`` (the input of the trainable blocks);
* ``low``: colour-rich early features at 7x7, the average-pooled outputs of block 4 (40 channels,
  28x28) and block 10 (112 channels, 14x14) plus the input pixels themselves (3 channels).

The head runs the remaining blocks and the 1x1 head convolution (frozen, or fine-tuned), pools the
high-level and the low-level maps twice (a plain average, and an average weighted towards the centre,
where the garment of a shopper's photo usually is, so its colour counts more than the background's)
and projects them with a small MLP to the main part of an L2-normalised embedding; a colour branch
sees only the low-level features and adds a short colour part.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lookalike.extractors.export import load_torch_backbone

__all__ = ["FashionEmbedder", "Head", "HeadCfg", "Trunk", "build_model"]

LOW_BLOCKS = (4, 10)  # blocks whose outputs feed the low-level (colour) features
LOW_CHANNELS = 40 + 112 + 3
GRID = 7


@dataclass(frozen=True)
class HeadCfg:
    """Shape of the trainable head."""

    split: int = 15  # first block of the head (blocks before it are frozen and cached)
    finetune: bool = False  # also train the head's backbone blocks and conv_head (else only the projection)
    dim: int = 256
    hidden: int = 448  # 0: a linear projection (448 keeps the ONNX file under 20 MB)
    centre: bool = True  # add centre-weighted pooling (the garment, not the background)
    low_level: bool = True
    centre_sigma: float = 0.3  # of the image side
    colour_dim: int = 64  # a colour branch on the low-level features only (0: none)
    colour_share: float = 0.35  # its share of the squared norm of the embedding


def _pool_to_grid(x: torch.Tensor) -> torch.Tensor:
    """Average-pool a square map whose side is a multiple of :data:`GRID` down to GRID x GRID."""
    k = int(x.shape[-1]) // GRID
    return F.avg_pool2d(x, kernel_size=k, stride=k) if k > 1 else x


class Trunk(nn.Module):
    """Frozen stem + blocks ``[0, split)``; returns (feat, low) as described in the module docs."""

    def __init__(self, backbone: nn.Module, split: int) -> None:
        super().__init__()
        self.conv_stem = backbone._conv_stem
        self.bn0 = backbone._bn0
        self.act = backbone._swish
        self.blocks = nn.ModuleList(list(backbone._blocks)[:split])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lows = [_pool_to_grid(x)]
        h = self.act(self.bn0(self.conv_stem(x)))
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in LOW_BLOCKS:
                lows.append(_pool_to_grid(h))
        return h, torch.cat(lows, dim=1)


class Head(nn.Module):
    """Trainable part: remaining blocks, conv_head, pooling and projection to ``dim``."""

    def __init__(self, backbone: nn.Module, cfg: HeadCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList(list(backbone._blocks)[cfg.split :])
        self.conv_head = backbone._conv_head
        self.bn1 = backbone._bn1
        self.act = backbone._swish
        width = self.conv_head.out_channels
        ax = (torch.arange(GRID, dtype=torch.float32) + 0.5) / GRID - 0.5
        g = torch.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * cfg.centre_sigma**2)).flatten()
        self.register_buffer("centre_weights", g / g.sum())
        n_in = (width + (LOW_CHANNELS if cfg.low_level else 0)) * (2 if cfg.centre else 1)
        self.n_features = n_in
        layers: list[nn.Module] = [nn.BatchNorm1d(n_in)]
        if cfg.hidden:
            layers += [nn.Linear(n_in, cfg.hidden), nn.BatchNorm1d(cfg.hidden), nn.ReLU(inplace=True)]
        main_dim = cfg.dim - cfg.colour_dim
        layers.append(nn.Linear(cfg.hidden or n_in, main_dim))
        self.proj = nn.Sequential(*layers)
        self.colour_proj: nn.Module | None = None
        if cfg.colour_dim:
            n_low = LOW_CHANNELS * (2 if cfg.centre else 1)
            self.colour_proj = nn.Sequential(
                nn.BatchNorm1d(n_low), nn.Linear(n_low, 256), nn.ReLU(inplace=True), nn.Linear(256, cfg.colour_dim)
            )
        for p in self.backbone_parameters():
            p.requires_grad_(cfg.finetune)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The pretrained parameters the head holds (blocks and conv_head)."""
        return [*self.blocks.parameters(), *self.conv_head.parameters(), *self.bn1.parameters()]

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters initialised from scratch (the projections)."""
        mods = [self.proj] + ([self.colour_proj] if self.colour_proj is not None else [])
        return [p for m in mods for p in m.parameters()]

    def tail(self, feat: torch.Tensor) -> torch.Tensor:
        """The pretrained blocks and conv_head: ``feat`` -> (n, 1280, 7, 7)."""
        h = feat
        for block in self.blocks:
            h = block(h)
        return self.act(self.bn1(self.conv_head(h)))

    def features(self, top: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """Fixed pooling: average and centre-weighted average of the final and the low-level maps."""
        maps = torch.cat([top, low], dim=1) if self.cfg.low_level else top
        flat = maps.flatten(2)  # (n, c, hw)
        parts = [flat.mean(dim=2)]
        if self.cfg.centre:
            # a weighted sum, not ``flat @ w``: onnxruntime's MatMul with a 1-D right operand took 7 % of the
            # INT8 model's time; as Mul + ReduceSum the whole model runs 4-7 % faster (FP32 and INT8)
            parts.append((flat * self.centre_weights).sum(dim=2))
        return torch.cat(parts, dim=1)

    def project_parts(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(main, colour) unit vectors; the colour part (or None) sees only the low-level features."""
        main = F.normalize(self.proj(v), dim=1)
        if self.colour_proj is None:
            return main, None
        low = v.view(v.shape[0], -1, 1280 + LOW_CHANNELS)[:, :, 1280:].flatten(1)
        return main, F.normalize(self.colour_proj(low), dim=1)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """Pooled features -> L2-normalised embedding (main and colour parts weighted by ``colour_share``)."""
        return self.combine(*self.project_parts(v))

    def combine(self, main: torch.Tensor, colour: torch.Tensor | None) -> torch.Tensor:
        """The embedding from its unit-length parts."""
        if colour is None:
            return main
        share = self.cfg.colour_share
        return torch.cat([main * (1 - share) ** 0.5, colour * share**0.5], dim=1)

    def pool(self, top: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """Pool the final map and the low-level map, project, L2-normalise."""
        return self.project(self.features(top, low))

    def forward(self, feat: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return self.pool(self.tail(feat), low)


class FashionEmbedder(nn.Module):
    """Trunk + head: (n, 3, 224, 224) with pixels ``(p - 127) / 128`` -> (n, dim) L2-normalised."""

    def __init__(self, trunk: Trunk, head: Head) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat, low = self.trunk(x)
        return self.head(feat, low)


def build_model(cfg: HeadCfg, seed: int = 0) -> tuple[Trunk, Head]:
    """A frozen trunk (eval mode) and a fresh head around the ImageNet Lite0 weights."""
    torch.manual_seed(seed)
    backbone = load_torch_backbone("efficientnet-lite0")
    trunk = Trunk(backbone, cfg.split).eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    head = Head(backbone, cfg)
    return trunk, head
