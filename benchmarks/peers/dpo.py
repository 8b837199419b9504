"""PyTorch peer of `benchmarks/dpo_step.py --shape=...`: TRL's DPOTrainer, the same work.

Work per step: 4 pairs, each a 128-token prompt with a chosen and a rejected 256-token response; the policy's pass
over both sequences (TRL concatenates them into one batch of 8), the sigmoid DPO loss (beta 0.1) against reference
log-probs computed once before training (`precompute_ref_log_probs=True`, as `rlhf-tf dpo` does), backward,
gradient clipping at norm 1, AdamW; fp32, no checkpoints or evaluation. Time per step: between consecutive optimizer
steps' ends, median after 2 warm-up steps. FLOPs: ../shapes.py's count (trunk at every token, output projection at
the response positions), as ours.

The texts are words of the peers' word-level tokenizer ("t<id>"), so 128 words are 128 tokens; TRL appends its
end token to each response, so the responses are 255 words and the sequences 384 tokens.

usage: benchmarks/peers/.venv/bin/python benchmarks/peers/dpo.py [--shape=gpt2_small] [--steps=5]
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
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    shape, peak = common.setup(args)
    warmup = 2
    rng = common.rng()
    rows = [
        {
            "prompt": common.random_text(rng, shape, shape.prompt),
            "chosen": " " + common.random_text(rng, shape, shape.response - 1),
            "rejected": " " + common.random_text(rng, shape, shape.response - 1),
        }
        for _ in range((args.steps + warmup) * args.pairs)
    ]
    model = common.causal_lm(shape)
    print(f"trl {trl.__version__}; policy {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    timer = common.StepTimer()
    with tempfile.TemporaryDirectory() as directory:
        config = trl.DPOConfig(
            **common.trainer_arguments(args, directory),
            per_device_train_batch_size=args.pairs,
            max_steps=args.steps + warmup,
            max_length=shape.sequence,
            beta=0.1,
            loss_type=["sigmoid"],
            precompute_ref_log_probs=True,
            learning_rate=1e-6,
            max_grad_norm=1.0,
        )
        trainer = trl.DPOTrainer(
            model=model,
            args=config,
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=common.tokenizer(shape),
            callbacks=[timer],
        )
        first = trainer.train_dataset[0]
        lengths = (len(first["prompt_ids"]), len(first["chosen_ids"]), len(first["rejected_ids"]))
        trainer.train()
    flops = shape.training_flops(shape.sequence, shape.response) * 2 * args.pairs
    common.report(
        f"TRL DPOTrainer ({args.pairs} pairs; prompt, chosen, rejected tokens {lengths})",
        timer.between_ends(warmup),
        flops,
        peak,
    )


if __name__ == "__main__":
    main()
