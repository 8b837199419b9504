"""The training core: one GradientTape loop under tf.distribute, with checkpoints, resume and summaries."""

from rlhf_tf.training.config import LoopConfig
from rlhf_tf.training.distribution import (
    configure_cpu_devices,
    create_strategy,
    global_mean,
    per_replica_batch_size,
    replica_share,
    shard_for_input_pipeline,
    square_of_global,
)
from rlhf_tf.training.early_stopping import EarlyStopping
from rlhf_tf.training.gradient_step import GradientStep
from rlhf_tf.training.loop import TrainingDiverged, TrainLoop, enable_determinism, seed_everything
from rlhf_tf.training.minibatches import ReplicaSplitStep, run_minibatches
from rlhf_tf.training.run_directory import PLOTS_DIR, RunDirectory, RunPaths, read_scalars

__all__ = [
    "PLOTS_DIR",
    "EarlyStopping",
    "GradientStep",
    "LoopConfig",
    "ReplicaSplitStep",
    "RunDirectory",
    "RunPaths",
    "TrainLoop",
    "TrainingDiverged",
    "configure_cpu_devices",
    "create_strategy",
    "enable_determinism",
    "global_mean",
    "per_replica_batch_size",
    "read_scalars",
    "replica_share",
    "run_minibatches",
    "seed_everything",
    "shard_for_input_pipeline",
    "square_of_global",
]
