"""PyTorch peer of `benchmarks/rl_iteration.py --shape=... --variants=policy:float32`: PPO from TRL 1.12.0, the last
release with a PPOTrainer (`trl.experimental.ppo`; removed in 1.13), in its own virtual environment
(requirements-ppo.txt).

Work per PPO iteration: 16 prompts of 128 tokens; 16 responses of 256 tokens sampled at temperature 1; the reward
model's, the frozen reference's and the value model's passes; 4 PPO epochs over minibatches of 4 (16 optimizer
steps), policy and a separate value model (TRL's PPO always trains a separate critic, so ours runs with
`value_model="policy"` for this comparison); fp32. Models of the shape, random init. Time per iteration: between
consecutive iterations' ends (TRL calls `on_step_end` once per iteration), median after one warm-up iteration. The
update's FLOPs (../shapes.py: policy and critic trunks at every token, the policy's output projection at the response
positions) are reported against the whole iteration's time, since TRL does not time its phases apart; ours reports
both.

usage: benchmarks/peers/.venv-ppo/bin/python benchmarks/peers/ppo.py [--shape=gpt2_small] [--steps=2]
"""

import argparse
import tempfile

import common
import datasets
import trl
from trl.experimental.ppo import PPOConfig, PPOTrainer

BATCH, MINIBATCH, EPOCHS = 16, 4, 4


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_flags(parser)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    shape, peak = common.setup(args)
    warmup = 1
    rng = common.rng()
    rows = [
        {"input_ids": rng.integers(3, shape.vocabulary, size=shape.prompt).tolist()}
        for _ in range((args.steps + warmup) * BATCH)
    ]
    tokenizer = common.tokenizer(shape)
    policy, reference = common.causal_lm(shape), common.causal_lm(shape)
    reference.load_state_dict(policy.state_dict())
    timer = common.StepTimer()
    with tempfile.TemporaryDirectory() as directory:
        config = PPOConfig(
            **common.trainer_arguments(args, directory),
            per_device_train_batch_size=BATCH,
            gradient_accumulation_steps=1,
            num_mini_batches=BATCH // MINIBATCH,
            num_ppo_epochs=EPOCHS,
            local_rollout_forward_batch_size=BATCH,
            total_episodes=(args.steps + warmup) * BATCH,
            response_length=shape.response,
            temperature=1.0,
            num_sample_generations=0,
            learning_rate=1e-6,
        )
        trainer = PPOTrainer(
            args=config,
            processing_class=tokenizer,
            model=policy,
            ref_model=reference,
            reward_model=common.sequence_classifier(shape, seed=1),
            value_model=common.sequence_classifier(shape, seed=2),
            train_dataset=datasets.Dataset.from_list(rows),
        )
        trainer.add_callback(timer)
        trainer.train()
    seconds = timer.between_ends(warmup)
    flops = shape.training_flops(shape.sequence, shape.response) + 6 * shape.trunk_parameters * shape.sequence
    flops *= BATCH * EPOCHS
    common.report(
        f"TRL {trl.__version__} PPOTrainer ({BATCH} rollouts, {EPOCHS} epochs of minibatch {MINIBATCH}, "
        "separate critic)",
        seconds,
        flops,
        peak,
        note="MFU here: the update's FLOPs over the whole iteration (generation and scoring included)",
    )


if __name__ == "__main__":
    main()
