"""Extractors by name: ``@register_extractor``, ``create_extractor(name)``, ``list_extractors(pattern)``.

Modelled on timm's registry: a factory per name, plus what the name needs (dimension, description,
whether its weights are present). Families of checkpoints are named ``PREFIX:REFERENCE`` (e.g.
``clip:/models/clip``): a module registers the prefix with :func:`register_extractor_prefix` and
resolves the reference to a spec whose ``name`` is canonical. User ONNX models join the registry with
:func:`register_onnx_model` (for this process) or by a spec file ``NAME.json`` in
:func:`lookalike.config.user_model_dir` (persisted; written by ``lookalike models add``).

The registry imports no implementation: ``builtin`` and ``hub_names`` register themselves when
``lookalike.extractors`` (the package, which Python imports before any of its modules) loads them.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.config import user_model_dir
from lookalike.errors import ExtractorNotFoundError, ModelLoadError
from lookalike.extractors.base import Extractor, PreprocessCfg

__all__ = [
    "ExtractorSpec",
    "create_extractor",
    "extractor_prefixes",
    "extractor_spec",
    "list_extractors",
    "register_extractor",
    "register_extractor_prefix",
    "register_onnx_model",
    "remove_onnx_model",
]

Factory = Callable[..., Extractor]
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ExtractorSpec:
    """What the registry knows about a name before building it."""

    name: str
    factory: Factory
    description: str = ""
    dim: int | None = None
    kind: str = "builtin"
    is_available: Callable[[], bool] = field(default=lambda: True)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        try:
            return bool(self.is_available())
        except Exception:
            return False


_REGISTRY: dict[str, ExtractorSpec] = {}
# prefix -> (resolver of the reference after "PREFIX:", description)
_PREFIXES: dict[str, tuple[Callable[[str], ExtractorSpec], str]] = {}


def register_extractor(
    name: str,
    description: str = "",
    dim: int | None = None,
    kind: str = "builtin",
    is_available: Callable[[], bool] | None = None,
) -> Callable[[Factory], Factory]:
    """Decorator: register ``factory`` under ``name``."""

    def deco(factory: Factory) -> Factory:
        _REGISTRY[name] = ExtractorSpec(
            name=name,
            factory=factory,
            description=description or _first_line(factory.__doc__),
            dim=dim,
            kind=kind,
            is_available=is_available or (lambda: True),
        )
        return factory

    return deco


def register_extractor_prefix(prefix: str, resolver: Callable[[str], ExtractorSpec], description: str = "") -> None:
    """Route names ``PREFIX:REFERENCE`` to ``resolver(REFERENCE)``, which returns the spec (or raises)."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", prefix):
        raise ValueError(f"invalid extractor prefix {prefix!r}")
    _PREFIXES[prefix] = (resolver, description)


def extractor_prefixes() -> dict[str, str]:
    """Registered name prefixes (``clip`` for ``clip:<...>``) and their descriptions."""
    return {p: desc for p, (_, desc) in sorted(_PREFIXES.items())}


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _user_specs() -> dict[str, ExtractorSpec]:
    specs: dict[str, ExtractorSpec] = {}
    folder = user_model_dir()
    if not folder.is_dir():
        return specs
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("type") != "onnx" or "name" not in data or "path" not in data:
            continue
        specs[data["name"]] = _onnx_spec(
            data["name"],
            Path(data["path"]) if Path(data["path"]).is_absolute() else folder / data["path"],
            PreprocessCfg.from_dict(data.get("preprocess", {})),
            data.get("description", "user ONNX model"),
            data.get("dim"),
        )
    return specs


def _onnx_spec(name: str, path: Path, cfg: PreprocessCfg, description: str, dim: int | None) -> ExtractorSpec:
    from lookalike.extractors.onnx import OnnxExtractor

    def factory(**kwargs: Any) -> Extractor:
        return OnnxExtractor(name, path, cfg, **kwargs)

    return ExtractorSpec(
        name=name,
        factory=factory,
        description=description,
        dim=dim,
        kind="onnx",
        is_available=path.is_file,
        extra={"path": str(path), "preprocess": cfg.to_dict()},
    )


def _all_specs() -> dict[str, ExtractorSpec]:
    specs = dict(_REGISTRY)
    for name, spec in _user_specs().items():
        specs.setdefault(name, spec)
    return specs


def list_extractors(pattern: str = "*", available_only: bool = False) -> list[str]:
    """Registered extractor names matching a glob ``pattern``, sorted."""
    names = [
        n for n, spec in _all_specs().items() if fnmatch.fnmatch(n, pattern) and (not available_only or spec.available)
    ]
    return sorted(names)


def extractor_spec(name: str) -> ExtractorSpec:
    """The registry entry for ``name``, a ``PREFIX:REFERENCE`` name, or an ``.onnx`` path."""
    specs = _all_specs()
    if name in specs:
        return specs[name]
    prefix, sep, reference = name.partition(":")
    if sep and prefix in _PREFIXES:
        return _PREFIXES[prefix][0](reference)
    path = Path(name)
    if name.endswith(".onnx"):
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        sidecar = path.with_suffix(".json")
        cfg_data: dict[str, Any] = {}
        if sidecar.is_file():
            try:
                cfg_data = json.loads(sidecar.read_text()).get("preprocess", {})
            except ValueError as exc:
                raise ModelLoadError(f"{sidecar}: not valid JSON ({exc})") from exc
        return _onnx_spec(str(path.resolve()), path.resolve(), PreprocessCfg.from_dict(cfg_data), "ONNX file", None)
    close = difflib.get_close_matches(name, list(specs), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    forms = "".join(f", {p}:<...>" for p in sorted(_PREFIXES))
    raise ExtractorNotFoundError(f"no extractor named {name!r}{hint} (known: {', '.join(sorted(specs))}{forms})")


def create_extractor(name: str, **kwargs: Any) -> Extractor:
    """Build the extractor registered as ``name`` (or ``PREFIX:REFERENCE``, or an ONNX file by path)."""
    return extractor_spec(name).factory(**kwargs)


def register_onnx_model(
    name: str,
    path: str | os.PathLike[str],
    preprocess: PreprocessCfg | None = None,
    description: str = "user ONNX model",
    persist: bool = False,
) -> ExtractorSpec:
    """Make a user's ONNX model available as ``name``.

    The model is checked first: its declared input must take ``preprocess``'s pictures (without
    ``preprocess``, the size the graph fixes is used, else 224) and one dummy batch must give ``(batch,
    dim)`` embeddings; otherwise :class:`ModelLoadError` says why and nothing is registered. With
    ``persist=True`` a spec file is written to the user model folder so other processes (the CLI, the
    server) find it too.
    """
    if not _NAME_RE.match(name):
        raise ExtractorNotFoundError(f"invalid model name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    if name in _REGISTRY and _REGISTRY[name].kind == "builtin":
        raise ExtractorNotFoundError(f"{name!r} is a built-in extractor; choose another name")
    model_path = Path(path).expanduser().resolve()
    if not model_path.is_file():
        raise ModelLoadError(f"model file not found: {model_path}")
    from lookalike.extractors.onnx import OnnxExtractor, onnx_input_size

    cfg = preprocess or PreprocessCfg(size=onnx_input_size(model_path) or PreprocessCfg.size)
    dim = OnnxExtractor(name, model_path, cfg, threads=1).dim  # raises ModelLoadError on a mismatch
    spec = _onnx_spec(name, model_path, cfg, description, dim)
    if persist:
        folder = user_model_dir()
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "type": "onnx",
            "name": name,
            "path": str(model_path),
            "preprocess": cfg.to_dict(),
            "description": description,
            "dim": dim,
        }
        tmp = folder / f".{name}.json.tmp"
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, folder / f"{name}.json")
    else:
        _REGISTRY[name] = spec
    return spec


def remove_onnx_model(name: str) -> bool:
    """Forget a user model (both in-process and persisted). Returns whether anything was removed."""
    removed = False
    if name in _REGISTRY and _REGISTRY[name].kind == "onnx":
        del _REGISTRY[name]
        removed = True
    spec_file = user_model_dir() / f"{name}.json"
    if spec_file.is_file():
        spec_file.unlink()
        removed = True
    return removed
