"""Metric learning for the ``lookalike-fashion`` embedding (needs the ``torch`` extra).

Modules: :mod:`~lookalike.training.data` (records and splits), :mod:`~lookalike.training.augment`
(Pillow/numpy views), :mod:`~lookalike.training.model` (frozen EfficientNet-Lite0 trunk + head),
:mod:`~lookalike.training.cache` (backbone maps computed once with onnxruntime),
:mod:`~lookalike.training.config` (``TrainConfig``), :mod:`~lookalike.training.targets` (the run's
records, cached views and label masks), :mod:`~lookalike.training.loop` (losses, the optimisation),
:mod:`~lookalike.training.train` (``run_training``: train, evaluate, export) and
:mod:`~lookalike.training.export` (ONNX export, checks, speed comparison).

Nothing is imported here, so ``import lookalike.training`` stays cheap; the serving path never imports
this package.
"""

__all__: list[str] = []
