"""The run-directory contract: every path inside a run directory is named here and nowhere else (README, "Run
directories"; the layering test fails on a run-directory path literal outside this module).

`RunPaths` only names paths (no side effects: use it to read another run); `RunDirectory` is the run being written,
with atomic writers.
"""

import logging
import os

import tensorflow as tf

from rlhf_tf import configs, files
from rlhf_tf.errors import UserInputError

# Entries of a run directory, each named once. The layering test reads `ENTRIES`.
METRICS = "metrics.json"
CONFIG = "config.json"
TENSORBOARD = "tb"
CHECKPOINTS = "ckpt"
EXPORT = "export"
PLOTS_DIR = "plots"
POLICY_DIR = "policy"
SAMPLES = "samples.jsonl"
REPORT = "report.md"
STAGES = "stages.json"
FEEDBACK_STORE = "feedback.sqlite"
TRAIN_RECORDS = "train.jsonl"
EVAL_RECORDS = "eval.jsonl"
LABELER_REPORT = "labeler.json"
REJECTED_RECORDS = "rejected_records.jsonl"
POOL = "pool.json"
ROUNDS_DIR = "rounds"
SEGMENTS_DIR = "segments"
DEMONSTRATIONS = "demonstrations.jsonl"
RELIABILITY_PLOT = "reliability.png"
CALIBRATION = "calibration.json"
REWARD_MODEL_DESCRIPTION = "reward_model.json"
# Inside ckpt/: the reward model's weights with its score normalisation (`tf.train.Checkpoint(model=...)`).
FINAL_REWARD_CHECKPOINT = "final-with-normalization"
# Inside ckpt/: the weights of the best evaluation so far (`training.EarlyStopping`).
BEST_CHECKPOINTS = "best"
ENTRIES = (
    METRICS,
    CONFIG,
    TENSORBOARD,
    CHECKPOINTS,
    EXPORT,
    PLOTS_DIR,
    SAMPLES,
    REPORT,
    STAGES,
    FEEDBACK_STORE,
    TRAIN_RECORDS,
    EVAL_RECORDS,
    LABELER_REPORT,
    REJECTED_RECORDS,
    POOL,
    ROUNDS_DIR,
    SEGMENTS_DIR,
    DEMONSTRATIONS,
    RELIABILITY_PLOT,
    CALIBRATION,
    REWARD_MODEL_DESCRIPTION,
    FINAL_REWARD_CHECKPOINT,
)


class RunPaths:
    """The named paths of one run directory (another run's, to read, or the current one's)."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def _join(self, *parts):
        return os.path.join(self.path, *parts)

    @property
    def metrics_path(self):
        return self._join(METRICS)

    @property
    def config_path(self):
        return self._join(CONFIG)

    @property
    def tensorboard_dir(self):
        return self._join(TENSORBOARD)

    @property
    def checkpoint_dir(self):
        return self._join(CHECKPOINTS)

    @property
    def best_checkpoint_dir(self):
        """The best evaluation's weights (`training.EarlyStopping`), inside the checkpoint directory."""
        return os.path.join(self.checkpoint_dir, BEST_CHECKPOINTS)

    def export_dir(self, name):
        return self._join(EXPORT, name)

    @property
    def final_reward_checkpoint(self):
        """The prefix of the reward model's final checkpoint (weights and normalisation)."""
        return self._join(CHECKPOINTS, FINAL_REWARD_CHECKPOINT)

    @property
    def policy_dir(self):
        """The saved policy (a keras-hub preset plus its tokenizer) that later stages load."""
        return self._join(POLICY_DIR)

    @property
    def samples_path(self):
        return self._join(SAMPLES)

    @property
    def plots_dir(self):
        return self._join(PLOTS_DIR)

    def plot_path(self, name):
        return self._join(PLOTS_DIR, name)

    @property
    def report_path(self):
        return self._join(REPORT)

    @property
    def stages_path(self):
        return self._join(STAGES)

    @property
    def feedback_store_path(self):
        return self._join(FEEDBACK_STORE)

    @property
    def train_records_path(self):
        return self._join(TRAIN_RECORDS)

    @property
    def eval_records_path(self):
        return self._join(EVAL_RECORDS)

    @property
    def labeler_report_path(self):
        return self._join(LABELER_REPORT)

    @property
    def rejected_records_path(self):
        return self._join(REJECTED_RECORDS)

    @property
    def pool_path(self):
        return self._join(POOL)

    def round_dir(self, index):
        return self._join(ROUNDS_DIR, f"round-{index}")

    @property
    def segments_dir(self):
        return self._join(SEGMENTS_DIR)

    def segments_path(self, round_number):
        return self._join(SEGMENTS_DIR, f"round-{round_number}.npz")

    @property
    def demonstrations_path(self):
        return self._join(DEMONSTRATIONS)

    @property
    def reliability_plot_path(self):
        return self._join(RELIABILITY_PLOT)

    @property
    def calibration_path(self):
        return self._join(CALIBRATION)

    @property
    def reward_model_description_path(self):
        return self._join(REWARD_MODEL_DESCRIPTION)

    def child(self, name):
        """The run directory of a stage or member inside this one (the quickstart's stages, compare's seeds)."""
        return self._join(name)


class RunDirectory(RunPaths):
    """The run being written: its paths and atomic writers.

    Only the chief worker writes; other workers of a multi-worker run get a RunDirectory with `chief=False`, whose
    writers do nothing and whose checkpoint directory is a private scratch folder (every worker must take part in
    a checkpoint save, but only the chief's copy is kept).
    """

    def __init__(self, path, chief=True, worker_id=0):
        super().__init__(path)
        self.chief = chief
        self.worker_id = worker_id
        if chief:
            tf.io.gfile.makedirs(self.path)

    @property
    def checkpoint_dir(self):
        if self.chief:
            return self._join(CHECKPOINTS)
        return self._join(CHECKPOINTS, f"worker-temp-{self.worker_id}")

    @property
    def shared_checkpoint_dir(self):
        """The chief's checkpoints, which every worker resumes from."""
        return self._join(CHECKPOINTS)

    def read_metrics(self):
        return files.read_json(self.metrics_path) or {}

    def update_metrics(self, metrics):
        """Merges flat `{"group/name": number}` metrics into metrics.json (atomic)."""
        if not self.chief:
            return
        merged = self.read_metrics()
        merged.update({str(key): value for key, value in metrics.items()})
        files.atomic_write_json(self.metrics_path, merged)

    def write_config(self, config):
        """Writes config.json; when resuming with other settings, logs what changed."""
        if not self.chief:
            return
        payload = configs.to_dict(config)
        previous = files.read_json(self.config_path)
        if previous is not None and previous != files._json_safe(payload):
            _check_same_adapters(previous, files._json_safe(payload), self.config_path)
            changed = configs.differences(previous, files._json_safe(payload))
            logging.warning("Resuming %s with changed settings: %s", self.path, "; ".join(changed))
        files.atomic_write_json(self.config_path, payload)

    def summary_writer(self):
        if not self.chief:
            return tf.summary.create_noop_writer()
        return tf.summary.create_file_writer(self.tensorboard_dir)


def _adapters(config):
    """The LoRA settings somewhere in a saved config ({} when it has none or LoRA is off)."""
    for key, value in config.items():
        if key == "lora" and isinstance(value, dict):
            return value if value.get("rank") else {}
        if isinstance(value, dict):
            found = _adapters(value)
            if found:
                return found
    return {}


def _check_same_adapters(previous, current, path):
    """A run's checkpoints hold the adapters alone under LoRA and the whole model without it: resuming across that
    change (or with another rank or targets) cannot restore them."""
    before, after = _adapters(previous), _adapters(current)
    if before != after:
        describe = lambda lora: f"LoRA {lora}" if lora else "no LoRA (the whole model trains)"
        raise UserInputError(
            f"{path} records a run trained with {describe(before)}; this command asks for {describe(after)}. Its "
            "checkpoints cannot resume that way: give the same --lora_rank, --lora_alpha and --lora_targets as "
            "before, or a new --output_dir."
        )


def read_scalars(tensorboard_dir):
    """{tag: [(step, value), ...]} of the scalars in a run's TensorBoard event files, sorted by step (the last
    value written wins for a step, so a resumed run's history reads as one)."""
    series = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(tensorboard_dir, "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("tensor") and value.metadata.plugin_data.plugin_name == "scalars":
                    number = float(tf.make_ndarray(value.tensor))
                elif value.HasField("simple_value"):
                    number = float(value.simple_value)
                else:
                    continue
                series.setdefault(value.tag, {})[int(event.step)] = number
    return {tag: sorted(points.items()) for tag, points in series.items()}
