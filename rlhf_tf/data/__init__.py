"""Feedback data: records, JSONL/TFRecord/TFDS readers and writers, validation, and tf.data pipelines."""
