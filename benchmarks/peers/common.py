"""What the PyTorch peers share: the shapes of ../shapes.py built in Hugging Face transformers, a word-level
tokenizer over the shape's vocabulary (no download: every token is a word "t<id>", so a text of n words is n
tokens), PyTorch's own fp32 matmul peak measured in the same run, and a per-step timer.

Each peer is judged by its time per step and its MFU against PyTorch's peak, beside ours against TensorFlow's
(benchmarks/README.md). Run from the repository root in the peers' virtual environment:
    benchmarks/peers/.venv/bin/python benchmarks/peers/<job>.py --shape=gpt2_small
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import shapes  # noqa: E402  (../shapes.py: the shapes and their FLOPs)
import torch  # noqa: E402
import transformers  # noqa: E402

PAD, END, UNKNOWN = 0, 1, 2  # token ids reserved by the tokenizer; random text uses ids 3 .. vocabulary - 1


def add_flags(parser):
    shapes.add_flag(parser, default="gpt2_small")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    shapes.add_precision_flag(parser)  # bfloat16: torch's CPU autocast (TRL's own default)


def trainer_arguments(args, output_dir):
    """The TrainingArguments every peer shares. Stated rather than left to TRL's defaults, which since TRL 1.x
    are bf16 autocast and gradient checkpointing (recomputing each block's forward in the backward pass: about a
    third more work than ours does); here both follow the flags, checkpointing off, as ours."""
    return {
        "output_dir": output_dir,
        "bf16": args.precision == "bfloat16",
        "gradient_checkpointing": False,
        "save_strategy": "no",
        "report_to": [],
        "logging_steps": 10**6,
        "use_cpu": True,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": 0,
    }


def describe_cpu():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            text = cpuinfo.read()
    except OSError:
        return "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = "AVX-512" if "avx512f" in text else "AVX2" if "avx2" in text else "no AVX2"
    return f"{name}, {flags}{' + bf16' if 'avx512_bf16' in text else ''}"


def setup(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peak = matmul_peak_gflops()
    print(
        f"cpu: {describe_cpu()}; {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads; fp32 matmul peak {peak:.0f} GFLOP/s; precision {args.precision}, no gradient checkpointing",
        flush=True,
    )
    print(f"shape {shapes.describe(args.shape)}", flush=True)
    return shapes.SHAPES[args.shape], peak


def matmul_peak_gflops(sizes=(2048,), repeats=10):
    """PyTorch's fp32 matmul throughput in GFLOP/s: the best of `repeats` timed products at each size after three
    untimed ones (`rlhf_tf.hardware` measures TensorFlow's at 2048 too)."""
    best = 0.0
    with torch.no_grad():
        for size in sizes:
            a, b = torch.randn(size, size), torch.randn(size, size)
            for _ in range(3):
                torch.matmul(a, b)
            for _ in range(repeats):
                started = time.perf_counter()
                torch.matmul(a, b)
                best = max(best, 2.0 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


def model_config(shape, num_labels=None):
    d = shape.dimensions
    extra = {} if num_labels is None else {"num_labels": num_labels, "pad_token_id": PAD}
    if d.architecture == "gpt2":
        return transformers.GPT2Config(
            vocab_size=shape.vocabulary,
            n_positions=d.max_sequence_length,
            n_embd=d.hidden_dim,
            n_layer=d.num_layers,
            n_head=d.num_heads,
            n_inner=d.intermediate_dim,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=END,
            eos_token_id=END,
            **extra,
        )
    if d.architecture == "llama3":
        return transformers.LlamaConfig(
            vocab_size=shape.vocabulary,
            hidden_size=d.hidden_dim,
            intermediate_size=d.intermediate_dim,
            num_hidden_layers=d.num_layers,
            num_attention_heads=d.num_heads,
            num_key_value_heads=d.num_key_value_heads or d.num_heads,
            max_position_embeddings=d.max_sequence_length,
            rope_theta=500000.0,
            tie_word_embeddings=False,
            bos_token_id=END,
            eos_token_id=END,
            **extra,
        )
    raise ValueError(f"no peer for architecture {d.architecture!r}")


def causal_lm(shape, seed=0):
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(model_config(shape), attn_implementation="sdpa")


def sequence_classifier(shape, seed=0):
    """A reward model (or PPO's value model): the trunk with a one-output head at the last real token."""
    torch.manual_seed(seed)
    return transformers.AutoModelForSequenceClassification.from_config(
        model_config(shape, num_labels=1), attn_implementation="sdpa"
    )


def tokenizer(shape):
    """A fast tokenizer whose vocabulary is "<pad>", "<eos>", "<unk>" and the words "t3" .. "t<vocabulary-1>"."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocabulary = {"<pad>": PAD, "<eos>": END, "<unk>": UNKNOWN, **{f"t{i}": i for i in range(3, shape.vocabulary)}}
    core = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<eos>", unk_token="<unk>"
    )
    fast.padding_side = "left"
    return fast


def random_text(rng, shape, words):
    return " ".join(f"t{i}" for i in rng.integers(3, shape.vocabulary, size=words))


def rng(seed=0):
    return np.random.default_rng(seed)


class StepTimer(transformers.TrainerCallback):
    """Wall time of each optimizer step (`on_step_begin` to `on_step_end`) and between step ends."""

    def __init__(self):
        self.begins, self.ends = [], []

    def on_step_begin(self, args, state, control, **kwargs):
        self.begins.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())

    def between_ends(self, warmup):
        """Seconds between consecutive step ends, the first `warmup` steps left out."""
        gaps = np.diff(self.ends)[warmup - 1 :] if warmup else np.diff([self.ends[0], *self.ends])
        return [float(gap) for gap in gaps]


def report(job, seconds, flops, peak, note=""):
    median = statistics.median(seconds)
    mfu = flops / median / (peak * 1e9)
    print(
        f"{job}: {median:.2f} s per step (median of {len(seconds)}: {', '.join(f'{s:.2f}' for s in seconds)}); "
        f"{flops / 1e9:.0f} GFLOP, {flops / median / 1e9:.0f} GFLOP/s, MFU {mfu:.2f} of PyTorch's fp32 peak"
        f"{'; ' + note if note else ''}",
        flush=True,
    )
    return median, mfu
