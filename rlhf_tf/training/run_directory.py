"""The run directory contract: metrics.json, config.json, tb/, ckpt/, export/ (see README, "Run directories")."""

import logging
import os

import tensorflow as tf

from rlhf_tf import configs, files


class RunDirectory:
    """Paths and atomic writers for one run's output directory.

    Only the chief worker writes; other workers of a multi-worker run get a RunDirectory with `chief=False`, whose
    writers do nothing and whose checkpoint directory is a private scratch folder (every worker must take part in
    a checkpoint save, but only the chief's copy is kept).
    """

    def __init__(self, path, chief=True, worker_id=0):
        self.path = os.fspath(path)
        self.chief = chief
        self.worker_id = worker_id
        if chief:
            tf.io.gfile.makedirs(self.path)

    @property
    def metrics_path(self):
        return os.path.join(self.path, "metrics.json")

    @property
    def config_path(self):
        return os.path.join(self.path, "config.json")

    @property
    def tensorboard_dir(self):
        return os.path.join(self.path, "tb")

    @property
    def checkpoint_dir(self):
        if self.chief:
            return os.path.join(self.path, "ckpt")
        return os.path.join(self.path, "ckpt", f"worker-temp-{self.worker_id}")

    def export_dir(self, name):
        return os.path.join(self.path, "export", name)

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
            changed = configs.differences(previous, files._json_safe(payload))
            logging.warning("Resuming %s with changed settings: %s", self.path, "; ".join(changed))
        files.atomic_write_json(self.config_path, payload)

    def summary_writer(self):
        if not self.chief:
            return tf.summary.create_noop_writer()
        return tf.summary.create_file_writer(self.tensorboard_dir)


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
