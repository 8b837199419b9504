"""PyTorch peer of `benchmarks/reward_training.py --shape=...`: TRL's RewardTrainer, the same work.

Work per step: 4 pairs, each a 128-token prompt with two 256-token responses (384 tokens per sequence), a reward
model of the shape (transformers' sequence classifier, one output, random init), Bradley-Terry loss, AdamW, fp32,
no checkpoints or evaluation. Time per step = between consecutive optimizer steps' ends (the data collation
included, as in our trainer's figure), median after 2 warm-up steps. FLOPs as ours (../shapes.py
`scoring_forward_flops`; transformers computes every block at every position, so it executes more than that: the
count is of the work needed, the same on both sides).

usage: benchmarks/peers/.venv/bin/python benchmarks/peers/reward.py [--shape=gpt2_small] [--steps=10]
"""

import argparse
import tempfile

import common
import datasets
import trl


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_flags(parser)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    shape, peak = common.setup(args)
    warmup = 2
    rng = common.rng()
    rows = []
    for _ in range((args.steps + warmup) * args.pairs):
        # Tokenized already (RewardTrainer's "chosen_ids" / "rejected_ids"), as our trainer's pipeline hands over.
        prompt = rng.integers(3, shape.vocabulary, size=shape.prompt).tolist()
        chosen, rejected = (rng.integers(3, shape.vocabulary, size=shape.response).tolist() for _ in range(2))
        rows.append({"chosen_ids": prompt + chosen, "rejected_ids": prompt + rejected})
    model = common.sequence_classifier(shape)
    print(f"trl {trl.__version__}; reward model {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    timer = common.StepTimer()
    with tempfile.TemporaryDirectory() as directory:
        config = trl.RewardConfig(
            **common.trainer_arguments(args, directory),
            per_device_train_batch_size=args.pairs,
            max_steps=args.steps + warmup,
            max_length=shape.sequence,
            learning_rate=1e-5,
        )
        trainer = trl.RewardTrainer(
            model=model,
            args=config,
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=common.tokenizer(shape),
            callbacks=[timer],
        )
        trainer.train()
    flops = 2 * 3 * shape.scoring_forward_flops(shape.sequence) * args.pairs
    common.report(
        f"TRL RewardTrainer ({args.pairs} pairs of {shape.sequence} tokens)", timer.between_ends(warmup), flops, peak
    )


if __name__ == "__main__":
    main()
