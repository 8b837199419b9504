"""Loading a trained reward model, the one way every other command does it: from a reward run directory (its
`export/reward` SavedModel, or its final checkpoint with the score normalisation) or from a reward SavedModel.
"""

import os

import tensorflow as tf

from rlhf_tf import files, training
from rlhf_tf.data import pipelines
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.reward import trainer


def saved_model_path(spec):
    """The reward SavedModel inside a run directory, or `spec` itself when it is a SavedModel."""
    spec = os.fspath(spec)
    inside = training.RunPaths(spec).export_dir("reward")
    if os.path.exists(os.path.join(inside, "saved_model.pb")):
        return inside
    if os.path.exists(os.path.join(spec, "saved_model.pb")):
        return spec
    raise UserInputError(
        "The reward must be a reward run directory (with export/reward), a reward SavedModel or 'gold'. "
        f"Received: reward={spec}"
    )


def load_scorer(spec, output="score"):
    """`(prompts, responses) -> float32 [batch]` over strings, from a reward run directory or SavedModel; the
    serving graph (tokenization and normalisation inside). `output`: "score" (normalised, what RL reads) or
    "raw_score" (the trained scale; exports written before it existed have not got it: an error says so)."""
    loaded = tf.saved_model.load(saved_model_path(spec))
    signature = loaded.signatures["serving_default"]
    if output not in signature.structured_outputs:
        raise UserInputError(
            f"The reward SavedModel has no `{output}` output (it has {sorted(signature.structured_outputs)}). "
            f"Received: reward={spec}"
        )

    def score(prompts, responses):
        return signature(prompt=tf.constant(list(prompts)), response=tf.constant(list(responses)))[output].numpy()

    # A signature of a SavedModel that was garbage-collected refers to deleted variables: keep the object alive.
    score.saved_model = loaded
    return score


def load_model(run_dir, strategy):
    """The Keras reward model of a run directory (one model, not an ensemble) with its score normalisation, built
    under `strategy` from the run's config.json and read from its final checkpoint."""
    paths = training.RunPaths(run_dir)
    saved = files.read_json(paths.config_path)
    if not saved or not os.path.exists(paths.final_reward_checkpoint + ".index"):
        raise UserInputError(f"A reward run directory (config.json and ckpt/) is needed. Received: {run_dir}")
    if saved.get("ensemble_size", 1) != 1:
        raise UserInputError(f"A single reward model is needed, not an ensemble. Received: {run_dir}")
    fields = lambda saved_config: {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in saved_config.items()
        if not key.startswith("_")
    }
    config = trainer.RewardConfig(
        output_dir=paths.path,
        train=saved["train"],
        init_from=saved.get("init_from", ""),
        tokenizer=saved.get("tokenizer", ""),
        model=policy_lib.PolicyConfig(**fields(saved["model"])),
        # The run's own pipeline: the backbone it starts from is checked against its lengths.
        **({"pipeline": pipelines.PipelineConfig(**fields(saved["pipeline"]))} if "pipeline" in saved else {}),
    )
    with strategy.scope():
        model, _ = trainer.build_model(config, config.tokenizer or "byte")
        model.build()
    tf.train.Checkpoint(model=model).read(paths.final_reward_checkpoint).expect_partial()
    return model
