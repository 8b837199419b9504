"""`rlhf-tf ppo`: fine-tune a language policy against a reward with PPO (actor-critic), through TF-Agents drivers.

    rlhf-tf ppo --policy=runs/sft --reward=runs/rm --output_dir=runs/ppo              # the bundled task's prompts
    rlhf-tf ppo --policy=runs/sft --reward=rm/export/reward --prompts=prompts.jsonl \\
        --length_penalty=0.05 --target_kl=6 --output_dir=runs/ppo                       # your prompts, length control

Writes the run directory (metrics.json with rl/win_rate_vs_sft_gold, rl/kl_to_reference, rl/gold_score, ...;
config.json, tb/, ckpt/), policy/ (for later stages), samples.jsonl (held-out prompts: policy vs starting policy)
and export/policy. Every field: `rlhf_tf.agents.language.ppo.PPOConfig`, `rl.RolloutConfig` and
`ppo.PPOHyperparameters`.
"""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, rl_flags, runner

_PPO_EPOCHS = flags.DEFINE_integer("ppo_epochs", None, "PPOHyperparameters.ppo_epochs.")
_MINIBATCH_SIZE = flags.DEFINE_integer("minibatch_size", None, "PPOHyperparameters.minibatch_size.")
_VF_COEF = flags.DEFINE_float("vf_coef", None, "PPOHyperparameters.vf_coef.")
_CLIP_RANGE = flags.DEFINE_float("clip_range", None, "PPOHyperparameters.clip_range.")
_LAM = flags.DEFINE_float("lam", None, "PPOHyperparameters.lam (GAE lambda).")
_GAMMA = flags.DEFINE_float("gamma", None, "PPOHyperparameters.gamma.")
_VALUE_MODEL = flags.DEFINE_enum(
    "value_model", None, ["shared", "policy", "reward"], "PPOHyperparameters.value_model: the critic's trunk."
)
_ENTROPY_COEF = flags.DEFINE_float("entropy_coef", None, "PPOHyperparameters.entropy_coef.")


def config_from_flags():
    from rlhf_tf.agents.language import ppo

    # The hyperparameters first: the config checks the rollout batch against their minibatch size.
    hyperparameters = dataclasses.replace(
        ppo.PPOHyperparameters(),
        **rl_flags.hyperparameter_changes(),
        **common.compute_dtype_changes(ppo.PPOHyperparameters()),
        **common.given(
            (
                ("ppo_epochs", _PPO_EPOCHS),
                ("minibatch_size", _MINIBATCH_SIZE),
                ("vf_coef", _VF_COEF),
                ("clip_range", _CLIP_RANGE),
                ("lam", _LAM),
                ("gamma", _GAMMA),
                ("value_model", _VALUE_MODEL),
                ("entropy_coef", _ENTROPY_COEF),
            )
        ),
    )
    base = ppo.PPOConfig(
        output_dir=common.OUTPUT_DIR.value, rollouts=rl_flags.rollout_config(), hyperparameters=hyperparameters
    )
    return dataclasses.replace(base, **rl_flags.run_changes(base))


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.agents.language import ppo

    rl_flags.print_summary(ppo.train_ppo(config_from_flags()))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
