"""The scaling model of docs/scaling.md: projected seconds per RL iteration on N workers, from single-worker figures.

Weak scaling: every worker keeps its share of b rollouts per iteration (the global batch is N x b), so a worker's
compute per iteration stays what one worker measures, and what grows with N is communication:

  T(N) = g + draw(N) + s + u + k * allreduce(N) + gather(N)
    g, s, u     generation, scoring (reward, reference and value passes) and update compute of one worker's share
    draw(N)     the exact sampler's extra work: each worker draws over the global batch's shape (N x b rows x V
                logits per token, `rlhf_tf.models.sampling.Sampler(rows=...)`), c_draw seconds per element
    allreduce   ring all-reduce of the gradient, G bytes: 2 (N-1)/N x G / bandwidth + 2 (N-1) x latency
    k           optimizer steps per iteration (epochs x minibatches)
    gather      the rollout rows every worker receives: (N-1)/N x N x r / bandwidth (r bytes per worker)

With R separate rollout workers (samplers fed the learners' weights each iteration, W bytes; a broadcast tree of
depth ceil(log2(R + 1))), the learners only score and update; synchronous:
  T = g x (N / R) + W / bandwidth x ceil(log2(R + 1)) + s + u + k * allreduce(N) + gather(N)
and one iteration stale (off-policy corrected by the losses' importance ratio): the larger of the samplers' part
and the learners' part.

usage: python benchmarks/scaling_model.py [--generation=26.4 ...]   (defaults: docs/scaling.md's inputs)
"""

import argparse
import math


def allreduce(workers, gradient_bytes, bandwidth, latency):
    if workers == 1:
        return 0.0
    return 2 * (workers - 1) / workers * gradient_bytes / bandwidth + 2 * (workers - 1) * latency


def projection(args, workers, rollout_workers=0):
    draw = args.draw_seconds_per_element * workers * args.rows * args.vocabulary * args.new_tokens
    draw -= args.draw_seconds_per_element * args.rows * args.vocabulary * args.new_tokens  # one worker's own share
    communication = args.steps * allreduce(workers, args.gradient_bytes, args.bandwidth, args.latency)
    communication += (workers - 1) / workers * workers * args.rollout_bytes / args.bandwidth if workers > 1 else 0.0
    learners = args.scoring + args.update + communication
    if not rollout_workers:
        return args.generation + draw + learners, None
    broadcast = args.weight_bytes / args.bandwidth * math.ceil(math.log2(rollout_workers + 1))
    sampling = args.generation * workers / rollout_workers + broadcast
    return sampling + learners, max(sampling, learners)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generation", type=float, default=26.4, help="g: seconds per worker per iteration")
    parser.add_argument("--scoring", type=float, default=24.8, help="s: seconds")
    parser.add_argument("--update", type=float, default=111.0, help="u: seconds")
    parser.add_argument("--steps", type=int, default=16, help="k: optimizer steps per iteration")
    parser.add_argument("--rows", type=int, default=16, help="b: rollouts per worker per iteration")
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--vocabulary", type=int, default=50_257)
    parser.add_argument("--gradient_bytes", type=float, default=124.4e6 * 4, help="G: fp32 gradient bytes")
    parser.add_argument("--weight_bytes", type=float, default=124.4e6 * 4, help="W: weights sent to a sampler")
    parser.add_argument("--rollout_bytes", type=float, default=16 * 384 * 4 * 6, help="r: rollout bytes per worker")
    parser.add_argument("--draw_seconds_per_element", type=float, default=2.0e-9, help="c_draw")
    parser.add_argument("--bandwidth", type=float, default=25e9 / 8, help="bytes/s per worker link (25 Gb/s)")
    parser.add_argument("--latency", type=float, default=50e-6, help="seconds per collective hop")
    parser.add_argument("--workers", default="1,8,64")
    args = parser.parse_args()
    single, _ = projection(args, 1)
    print(
        f"inputs: g {args.generation:g} s, s {args.scoring:g} s, u {args.update:g} s, k {args.steps}, b {args.rows}, "
        f"G {args.gradient_bytes / 1e6:.0f} MB, bandwidth {args.bandwidth * 8 / 1e9:g} Gb/s, "
        f"latency {args.latency * 1e6:g} us, c_draw {args.draw_seconds_per_element:g} s"
    )
    print(
        "| workers | rollouts / iteration | s / iteration | efficiency | of which all-reduce | exact-draw extra | "
        "s / iteration, --noexact_sampling | efficiency |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for workers in (int(count) for count in args.workers.split(",")):
        total, _ = projection(args, workers)
        reduce = args.steps * allreduce(workers, args.gradient_bytes, args.bandwidth, args.latency)
        draw = args.draw_seconds_per_element * (workers - 1) * args.rows * args.vocabulary * args.new_tokens
        print(
            f"| {workers} | {workers * args.rows} | {total:.1f} | {single / total:.2f} | {reduce:.1f} s | "
            f"{draw:.1f} s | {total - draw:.1f} | {single / (total - draw):.2f} |"
        )
    print("\nwith separate rollout workers (R = N samplers, each sampling its own rows):")
    print("| learners N | samplers R | synchronous s / iteration | one iteration stale |")
    print("|---|---|---|---|")
    for workers in (int(count) for count in args.workers.split(",")):
        synchronous, stale = projection(args, workers, rollout_workers=workers)
        print(f"| {workers} | {workers} | {synchronous:.1f} | {stale:.1f} |")


if __name__ == "__main__":
    main()
