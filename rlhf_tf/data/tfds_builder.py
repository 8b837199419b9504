"""A tensorflow-datasets builder that turns a local directory of feedback JSONL into a TFDS dataset.

    import rlhf_tf.data.tfds_builder  # registers "rlhf_feedback"
    dataset = tfds.load(
        "rlhf_feedback/comparison", split="train", data_dir=DATA_DIR,
        download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(manual_dir=JSONL_DIR)})

JSONL_DIR holds `train*.jsonl` (and optionally `validation*.jsonl`, `test*.jsonl`) in any accepted shape; every
line is validated as the readers validate it, and a bad line stops the build naming file, line and field. Nothing
is downloaded. Configs: comparison, ranking, rating, demonstration, prompt (the record kind the files hold).
"""

import os

import tensorflow as tf
import tensorflow_datasets as tfds

from rlhf_tf.data import reader, records
from rlhf_tf.errors import UserInputError

NAME = "rlhf_feedback"
SPLITS = ("train", "validation", "test")
TEXT_KINDS = ("comparison", "ranking", "rating", "demonstration", "prompt")

_FEATURES = {
    "comparison": lambda: {
        "prompt": tfds.features.Text(),
        "chosen": tfds.features.Text(),
        "rejected": tfds.features.Text(),
        "margin": tfds.features.Scalar(tf.float32),
        "tie": tfds.features.Scalar(tf.bool),
    },
    "ranking": lambda: {
        "prompt": tfds.features.Text(),
        "responses": tfds.features.Sequence(tfds.features.Text()),
        "scores": tfds.features.Sequence(tfds.features.Scalar(tf.float32)),
    },
    "rating": lambda: {
        "prompt": tfds.features.Text(),
        "response": tfds.features.Text(),
        "score": tfds.features.Scalar(tf.float32),
    },
    "demonstration": lambda: {"prompt": tfds.features.Text(), "completion": tfds.features.Text()},
    "prompt": lambda: {"prompt": tfds.features.Text()},
}


class RlhfFeedback(tfds.core.GeneratorBasedBuilder):
    """Human-feedback records from local JSON Lines files (see the module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=kind, description=f"{kind} records") for kind in TEXT_KINDS]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put train*.jsonl (and optionally validation*.jsonl, test*.jsonl) feedback files in the manual directory."
    )

    def _info(self):
        features = dict(_FEATURES[self.builder_config.name](), id=tfds.features.Text())
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features), supervised_keys=None)

    def _split_generators(self, dl_manager):
        directory = os.fspath(dl_manager.manual_dir)
        found = {}
        for split in SPLITS:
            paths = sorted(tf.io.gfile.glob(os.path.join(directory, f"{split}*.jsonl")))
            if paths:
                found[split] = self._generate_examples(paths)
        if "train" not in found:
            raise UserInputError(f"No train*.jsonl in the manual directory. Received: {directory}")
        return found

    def _generate_examples(self, paths):
        kind = self.builder_config.name
        for path in paths:
            for index, record in enumerate(reader.iter_jsonl(path)):
                if record.kind != kind:
                    raise UserInputError(f"The {kind} config needs {kind} records; {path} holds {record.kind} records.")
                yield f"{os.path.basename(path)}:{index}", _features(record)


def _features(record):
    values = {name: getattr(record, name) for name in _FEATURES[record.kind]()}
    values["id"] = record.id
    if record.kind == "ranking":
        values["responses"] = list(record.responses)
        values["scores"] = list(record.scores)
    return values


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def record_from_features(kind, example):
    """The record a TFDS example (a dict of numpy values) holds."""
    identifier = _decode(example["id"])
    if kind == "comparison":
        return records.Comparison(
            prompt=_decode(example["prompt"]),
            chosen=_decode(example["chosen"]),
            rejected=_decode(example["rejected"]),
            margin=float(example["margin"]),
            tie=bool(example["tie"]),
            id=identifier,
        )
    if kind == "ranking":
        return records.Ranking(
            prompt=_decode(example["prompt"]),
            responses=tuple(_decode(value) for value in example["responses"]),
            scores=tuple(float(value) for value in example["scores"]),
            id=identifier,
        )
    if kind == "rating":
        return records.Rating(
            _decode(example["prompt"]), _decode(example["response"]), float(example["score"]), identifier
        )
    if kind == "demonstration":
        return records.Demonstration(_decode(example["prompt"]), _decode(example["completion"]), identifier)
    return records.Prompt(_decode(example["prompt"]), identifier)


def parse_spec(spec):
    """ "tfds:NAME/CONFIG[:SPLIT]" -> (name with config, split)."""
    body = spec[len("tfds:") :]
    name, _, split = body.partition(":")
    return name, split or "train"


def iter_tfds_records(spec, data_dir=None):
    """Yields the records of a prepared TFDS dataset named by a "tfds:NAME/CONFIG[:SPLIT]" spec."""
    name, split = parse_spec(spec)
    builder = tfds.builder(name, data_dir=data_dir)
    kind = builder.builder_config.name if builder.builder_config else None
    if kind not in TEXT_KINDS:
        raise UserInputError(f"TFDS data must be an {NAME}/<kind> dataset ({', '.join(TEXT_KINDS)}). Received: {spec}")
    if not builder.is_prepared():
        raise UserInputError(
            f"The TFDS dataset is not prepared in {builder.data_dir}; build it first with a manual_dir of JSONL "
            f"files (see rlhf_tf.data.tfds_builder). Received: {spec}"
        )
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
        yield record_from_features(kind, example)
