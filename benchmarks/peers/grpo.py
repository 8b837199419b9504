"""PyTorch peer of `benchmarks/grpo_step.py --shape=...`: TRL's GRPOTrainer, the same work.

Work per GRPO step: 4 prompts of 128 tokens x 4 completions of 256 tokens sampled at temperature 1 (transformers'
`generate`, `min_new_tokens` 256 so every completion is full length, as ours with no end token), the reward model's
pass (a sequence classifier of the shape, random init, `reward_funcs`), the frozen reference's pass (`beta` 0.04: TRL
loads the reference only when beta is not 0; ours always computes it), and one pass of updates in 4 optimizer steps
of 4 completions (`per_device_train_batch_size` 4, `steps_per_generation` 4); fp32. Time per GRPO step: the wall
time of those 4 optimizer steps (generation happens in the first), median over the timed steps after one warm-up
step. The update phase's FLOPs (../shapes.py, as ours) are reported against the whole step's time here, since TRL
does not time its phases apart; ours reports both.

usage: benchmarks/peers/.venv/bin/python benchmarks/peers/grpo.py [--shape=gpt2_small] [--steps=2]
"""

import argparse
import os
import tempfile

import common
import datasets
import numpy as np
import trl

PROMPTS, K = 4, 4


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_flags(parser)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    shape, peak = common.setup(args)
    warmup = 1
    rng = common.rng()
    rows = [{"prompt": common.random_text(rng, shape, shape.prompt)} for _ in range((args.steps + warmup) * PROMPTS)]
    tokenizer = common.tokenizer(shape)
    reward_model = common.sequence_classifier(shape, seed=1)
    timer = common.StepTimer()
    with tempfile.TemporaryDirectory() as directory:
        policy_path = os.path.join(directory, "policy")
        common.causal_lm(shape).save_pretrained(policy_path)  # by path: TRL builds the reference from it
        tokenizer.save_pretrained(policy_path)
        config = trl.GRPOConfig(
            **common.trainer_arguments(args, os.path.join(directory, "run")),
            per_device_train_batch_size=K,
            num_generations=K,
            steps_per_generation=PROMPTS,
            gradient_accumulation_steps=1,
            num_iterations=1,
            max_completion_length=shape.response,
            temperature=1.0,
            top_p=1.0,
            generation_kwargs={"min_new_tokens": shape.response},
            beta=0.04,
            learning_rate=1e-6,
            max_steps=(args.steps + warmup) * PROMPTS,
        )
        trainer = trl.GRPOTrainer(
            model=policy_path,
            reward_funcs=reward_model,
            args=config,
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=tokenizer,
            reward_processing_classes=[tokenizer],
            callbacks=[timer],
        )
        print(f"trl {trl.__version__}; reference model loaded: {trainer.ref_model is not None}", flush=True)
        trainer.train()
    gaps = timer.between_ends(0)  # per optimizer step, the first from its own begin
    gaps[0] = timer.ends[0] - timer.begins[0]
    rounds = [float(np.sum(gaps[i : i + PROMPTS])) for i in range(0, len(gaps), PROMPTS)][warmup:]
    flops = shape.training_flops(shape.sequence, shape.response) * PROMPTS * K
    common.report(
        f"TRL GRPOTrainer ({PROMPTS} prompts x {K} completions, 4 optimizer steps of 4)",
        rounds,
        flops,
        peak,
        note="MFU here: the update's FLOPs over the whole step (generation, reward and reference passes included)",
    )


if __name__ == "__main__":
    main()
