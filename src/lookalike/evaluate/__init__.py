"""Search-quality evaluation: pure metrics, the labelled tasks of EVALUATION.md, a harness, reports.

``report`` (charts) needs matplotlib and is imported on its own: ``from lookalike.evaluate import report``.
"""

from lookalike.evaluate.cache import EmbeddingCache
from lookalike.evaluate.datasets import (
    Criterion,
    EvalTask,
    ImageSet,
    catalog_task,
    custom_task,
    default_datasets_root,
    photo_task,
    subsample_queries,
)
from lookalike.evaluate.harness import TaskResult, evaluate_task, run_evaluation
from lookalike.evaluate.ranking import CriterionResult, rank_exact

__all__ = [
    "Criterion",
    "CriterionResult",
    "EmbeddingCache",
    "EvalTask",
    "ImageSet",
    "TaskResult",
    "catalog_task",
    "custom_task",
    "default_datasets_root",
    "evaluate_task",
    "photo_task",
    "rank_exact",
    "run_evaluation",
    "subsample_queries",
]
