"""`rlhf-tf evaluate-reward`: measure a reward model on labelled comparisons.

    rlhf-tf evaluate-reward --model=runs/rm --data=labels/eval.jsonl --output_dir=runs/rm-eval

--model is a reward run directory (its export/reward) or a reward SavedModel. Writes metrics.json
(reward/accuracy, reward/ece, reward/loss, reward/pairs), calibration.json and reliability.png.

Calibration is measured as the trainer measures it (`reward/eval_ece`): on the Bradley-Terry probability
sigmoid(raw_chosen - raw_rejected) of the model's raw scores (the export's `raw_score`), not on the normalised
`score` RL reads (normalising divides the differences by the scores' spread, which changes every probability).
An export written before `raw_score` existed is measured on `score`, and the output says so.
"""

import numpy as np
from absl import flags

from rlhf_tf.bin import common, runner

_MODEL = flags.DEFINE_string("model", None, "Reward run directory or reward SavedModel.")
_DATA = flags.DEFINE_string("data", None, "Comparisons to evaluate on (any accepted pairwise shape).")
_BATCH = flags.DEFINE_integer("score_batch_size", 256, "Pairs scored per call.")
flags.mark_flags_as_required(["model", "data"])


def evaluate(model_path, data, output_dir, format=None, batch_size=256):

    from rlhf_tf import files
    from rlhf_tf.data import sources
    from rlhf_tf.errors import UserInputError
    from rlhf_tf.reward import loading, metrics

    try:
        score, scale = loading.load_scorer(model_path, "raw_score"), "raw_score"
    except UserInputError:
        score, scale = loading.load_scorer(model_path, "score"), "score"
    pairs, _ = sources.load_records(data, format, kind="comparison")

    def scores(prompts, responses):
        return np.concatenate(
            [
                score(prompts[start : start + batch_size], responses[start : start + batch_size])
                for start in range(0, len(prompts), batch_size)
            ]
        )

    prompts = [pair.prompt for pair in pairs]
    chosen = scores(prompts, [pair.chosen for pair in pairs])
    rejected = scores(prompts, [pair.rejected for pair in pairs])
    ties = np.array([pair.tie for pair in pairs])
    summary = metrics.pairwise_metrics(chosen, rejected, ties)
    difference = (chosen - rejected)[~ties]
    result = {
        "reward/accuracy": summary["accuracy"],
        "reward/ece": summary["ece"],
        "reward/loss": float(np.mean(np.logaddexp(0.0, -difference))) if difference.size else float("nan"),
        "reward/pairs": len(pairs),
    }
    print(
        f"calibration and loss on sigmoid(r_chosen - r_rejected) of the export's `{scale}`"
        + (
            " (the trained scale, as the trainer's reward/eval_ece)"
            if scale == "raw_score"
            else " (normalised scores: this export predates raw_score, so the figures differ from the trainer's)"
        )
    )
    from rlhf_tf.training import RunDirectory

    run_directory = RunDirectory(output_dir)
    run_directory.update_metrics(result)
    files.atomic_write_json(run_directory.calibration_path, {"bins": summary["bins"], "scores": scale})
    metrics.reliability_plot(summary["bins"], run_directory.reliability_plot_path)
    return result


def main(argv):
    del argv
    common.prepare()
    result = evaluate(_MODEL.value, _DATA.value, common.OUTPUT_DIR.value, common.FORMAT.value, _BATCH.value)
    for name, value in result.items():
        print(f"{name}: {value:.4g}")


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
