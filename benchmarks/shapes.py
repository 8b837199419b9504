"""The model shapes the language benchmarks run at (`--shape`), and the FLOPs their MFU figures count.

- "tiny": the shape of the first speed targets (GPT-2 style, 4 layers, width 256, byte vocabulary of 257 ids,
  prompt 16 + 48 new tokens).
- "gpt2_small": GPT-2 small's shape (12 layers, width 768, 12 heads, MLP 3072, 1024 positions, vocabulary 50,257,
  tied output projection; 124M parameters), prompt 128 + 256 new tokens.
- "llama_100m": a Llama 3-style decoder of about the same size (12 layers, width 768, 12 query / 4 key-value heads,
  gated MLP 2048, vocabulary 32,768, untied output head; 125M parameters), prompt 128 + 256 new tokens.

The peers in benchmarks/peers/ build the same shapes in Hugging Face transformers (`peers/common.py`) and count
FLOPs with this module, which imports nothing but the standard library until `Shape.config` is asked for.

FLOPs: a training pass counts 6 x (matmul parameters) per token, where the matmul parameters are the trunk's dense
kernels (attention, MLP) at every token, plus the output projection (vocabulary x width) at the positions whose
logits the pass needs; embedding tables read by gather (token ids, GPT-2's positions) do no matmul and are not
counted. Attention's score and mix products are left out (as in the usual 6ND count), so the figures understate
the work done, never overstate it.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Dimensions:
    """A decoder's shape; `PolicyConfig`'s fields of the same names."""

    architecture: str
    num_layers: int
    hidden_dim: int
    num_heads: int
    intermediate_dim: int
    max_sequence_length: int
    num_key_value_heads: int = 0


@dataclasses.dataclass(frozen=True)
class Shape:
    dimensions: Dimensions
    vocabulary: int
    prompt: int
    response: int

    @property
    def config(self):
        """The shape as rlhf-tf's `PolicyConfig` (dropout 0)."""
        from rlhf_tf.models import policy as policy_lib

        return policy_lib.PolicyConfig(**dataclasses.asdict(self.dimensions), dropout=0.0)

    @property
    def sequence(self):
        return self.prompt + self.response

    @property
    def key_value_parameters(self):
        """One block's key and value projection kernels."""
        c = self.dimensions
        return 2 * c.hidden_dim * (c.hidden_dim // c.num_heads) * (c.num_key_value_heads or c.num_heads)

    @property
    def layer_parameters(self):
        """One decoder block's dense kernel parameters (biases and norms, a few thousandths, left out)."""
        c = self.dimensions
        width = c.hidden_dim
        attention = 2 * width * width + self.key_value_parameters  # query, output, key, value
        mlp = (2 if c.architecture == "gpt2" else 3) * width * c.intermediate_dim  # gated MLP: gate, up, down
        return attention + mlp

    @property
    def trunk_parameters(self):
        return self.dimensions.num_layers * self.layer_parameters

    def scoring_forward_flops(self, tokens):
        """A reward model's forward pass: its last block computes keys and values at every token but the rest at
        the scored position only (`transformer.hidden_at`); no output projection."""
        before_last = (self.dimensions.num_layers - 1) * self.layer_parameters + self.key_value_parameters
        return 2 * (before_last * tokens + (self.layer_parameters - self.key_value_parameters))

    @property
    def head_parameters(self):
        return self.vocabulary * self.dimensions.hidden_dim

    def forward_flops(self, tokens, logit_positions):
        """FLOPs of one forward pass over `tokens` positions, `logit_positions` of which need the output head."""
        return 2 * (self.trunk_parameters * tokens + self.head_parameters * logit_positions)

    def training_flops(self, tokens, logit_positions):
        """Forward and backward (3 x the forward)."""
        return 3 * self.forward_flops(tokens, logit_positions)

    def build(self):
        from rlhf_tf.models import policy as policy_lib

        return policy_lib.build_policy(self.config, self.vocabulary)


SHAPES = {
    "tiny": Shape(
        Dimensions("gpt2", num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024, max_sequence_length=128),
        vocabulary=257,
        prompt=16,
        response=48,
    ),
    "gpt2_small": Shape(
        Dimensions(
            "gpt2", num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072, max_sequence_length=1024
        ),
        vocabulary=50257,
        prompt=128,
        response=256,
    ),
    "llama_100m": Shape(
        Dimensions(
            "llama3",
            num_layers=12,
            hidden_dim=768,
            num_heads=12,
            num_key_value_heads=4,
            intermediate_dim=2048,
            max_sequence_length=1024,
        ),
        vocabulary=32768,
        prompt=128,
        response=256,
    ),
}


def add_flag(parser, default="tiny"):
    parser.add_argument("--shape", default=default, choices=sorted(SHAPES), help="model and sequence shape")


def add_precision_flag(parser):
    """--precision: float32, or bfloat16 matmuls with float32 weights and optimizer (mixed precision). MFU is
    counted against the fp32 matmul peak either way, so a bf16 run can pass 1.0 where the CPU has bf16 units."""
    choices = ("float32", "bfloat16")
    parser.add_argument("--precision", choices=choices, default="float32", help=add_precision_flag.__doc__)


def describe(name):
    shape = SHAPES[name]
    c = shape.dimensions
    kv = f"/{c.num_key_value_heads} kv" if c.num_key_value_heads else ""
    return (
        f"{name}: {c.architecture}, {c.num_layers} layers, width {c.hidden_dim}, {c.num_heads}{kv} heads, "
        f"MLP {c.intermediate_dim}, vocabulary {shape.vocabulary:,}, prompt {shape.prompt} + {shape.response} new"
    )
