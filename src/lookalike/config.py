"""Where lookalike keeps user-level files (exported models, user model specs)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUNDLED_MODEL_DIR", "model_dirs", "user_model_dir"]

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "models"


def lookalike_home() -> Path:
    """``$LOOKALIKE_HOME``, else ``$XDG_CACHE_HOME/lookalike``, else ``~/.cache/lookalike``."""
    env = os.environ.get("LOOKALIKE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lookalike"


def user_model_dir() -> Path:
    """Folder for exported ONNX graphs and user model specs (``*.json``)."""
    env = os.environ.get("LOOKALIKE_MODEL_DIR")
    return Path(env).expanduser() if env else lookalike_home() / "models"


def model_dirs() -> list[Path]:
    """Folders searched for model files, in order: the user's, then the ones bundled with the package."""
    return [user_model_dir(), BUNDLED_MODEL_DIR]


def num_threads() -> int:
    """Threads for inference: ``$LOOKALIKE_THREADS`` or the number of usable cores."""
    env = os.environ.get("LOOKALIKE_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
