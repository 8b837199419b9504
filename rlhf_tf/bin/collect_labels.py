"""`rlhf-tf collect-labels`: sample comparison pairs from a policy and have them labelled.

    rlhf-tf collect-labels --policy=runs/sft --task=reviews --num_pairs=3000 --output_dir=runs/labels

Writes feedback.sqlite (items and labels), train.jsonl and eval.jsonl (pairwise records) and labeler.json (the
labeler's agreement with the gold ordering and its ceiling). Fields: `rlhf_tf.feedback.collect.CollectConfig`.
"""

import json

from absl import flags

from rlhf_tf.bin import common, runner

_POLICY = flags.DEFINE_string("policy", None, "CollectConfig.policy: SFT run directory, saved policy or preset.")
_TASK = flags.DEFINE_string("task", "reviews", "CollectConfig.task.")
_NUM_PAIRS = flags.DEFINE_integer("num_pairs", 3000, "CollectConfig.num_pairs.")
_EVAL_FRACTION = flags.DEFINE_float("eval_fraction", 0.15, "CollectConfig.eval_fraction.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.5, "CollectConfig.temperature of the simulated labeler.")
flags.mark_flag_as_required("policy")


_LABELER = flags.DEFINE_enum(
    "labeler", "simulated", ["simulated", "web"], "CollectConfig.labeler: web = people in `rlhf-tf label-server`."
)
_STORE = flags.DEFINE_string("store", "", "CollectConfig.store: the label server's feedback store.")
_LABEL_TIMEOUT = flags.DEFINE_float("label_timeout", 3600.0, "CollectConfig.label_timeout (seconds, --labeler=web).")


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf import tasks
    from rlhf_tf.feedback import collect

    config = collect.CollectConfig(
        output_dir=common.OUTPUT_DIR.value,
        policy=_POLICY.value,
        task=_TASK.value,
        num_pairs=_NUM_PAIRS.value,
        eval_fraction=_EVAL_FRACTION.value,
        temperature=_TEMPERATURE.value,
        seed=common.SEED.value,
        labeler=_LABELER.value,
        store=_STORE.value,
        label_timeout=_LABEL_TIMEOUT.value,
        max_prompt_tokens=tasks.prompt_tokens(_TASK.value, collect.CollectConfig.max_prompt_tokens),
    )
    print(json.dumps(collect.collect(config), indent=2))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
