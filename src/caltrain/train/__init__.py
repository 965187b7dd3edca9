"""The trainer: one loop for every objective, driven by a validated configuration; suites of runs; aggregation."""

from caltrain.train.aggregate import aggregate
from caltrain.train.config import ConfigError, TrainConfig, build_config
from caltrain.train.suite import Suite, builtin_suites, load_suite, run_suite
from caltrain.train.trainer import Trainer, TrainingDiverged, train

__all__ = [
    "ConfigError", "Suite", "TrainConfig", "Trainer", "TrainingDiverged", "aggregate", "build_config",
    "builtin_suites", "load_suite", "run_suite", "train",
]
