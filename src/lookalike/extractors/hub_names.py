"""The hub extractors' names: the ``PREFIX:REFERENCE`` families and the named checkpoints.

Imported by :mod:`lookalike.extractors` for its side effect (registering; nothing is loaded).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from lookalike.extractors.base import Extractor
from lookalike.extractors.hub import HubExtractor
from lookalike.extractors.hub_config import HUB_FAMILIES, HubSource, _source_available, in_hf_cache, resolve_source
from lookalike.extractors.registry import ExtractorSpec, register_extractor, register_extractor_prefix

__all__: list[str] = []


def _hub_factory(name: str, family: str, source: HubSource, **kwargs: Any) -> Extractor:
    return HubExtractor(name, family, source, **kwargs)


def _prefix_spec(family: str, ref: str) -> ExtractorSpec:
    source = resolve_source(ref, family)
    name = f"{family}:{source.ref}"
    return ExtractorSpec(
        name=name,
        factory=partial(_hub_factory, name, family, source),
        description=f"{HUB_FAMILIES[family].label} checkpoint {source.ref} (transformers)",
        kind="hub",
        is_available=partial(_source_available, source),
        extra={"family": family, "source": source.ref},
    )


for _family in HUB_FAMILIES.values():
    register_extractor_prefix(
        _family.prefix,
        partial(_prefix_spec, _family.prefix),
        description=f"{_family.label} checkpoint: {_family.prefix}:<directory or hub id>",
    )

# name -> (family, hub repo id, dimension, description)
_NAMED: dict[str, tuple[str, str, int, str]] = {
    "clip-vit-b32": ("clip", "openai/clip-vit-base-patch32", 512, "OpenAI CLIP ViT-B/32"),
    "fashion-clip": ("fashionclip", "patrickjohncyh/fashion-clip", 512, "FashionCLIP (CLIP ViT-B/32)"),
    "siglip-base": ("siglip", "google/siglip-base-patch16-224", 768, "SigLIP ViT-B/16 224px"),
    "dinov2-small": ("dinov2", "facebook/dinov2-small", 384, "DINOv2 ViT-S/14 CLS token"),
}

for _name, (_fam, _repo, _dim, _desc) in _NAMED.items():
    register_extractor(
        _name,
        description=f"{_desc} (transformers; weights from the HF cache: {_repo})",
        dim=_dim,
        kind="hub",
        is_available=partial(in_hf_cache, _repo),
    )(partial(_hub_factory, _name, _fam, HubSource(_repo, False)))
