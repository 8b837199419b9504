"""`rlhf-tf generate`: sample responses from a policy.

    rlhf-tf generate --policy=runs/sft --prompt="Review of the Apex blender:"
    rlhf-tf generate --policy=runs/sft/export/policy --prompts_file=prompts.jsonl --output=responses.jsonl

--policy is a run directory (its policy/), a saved policy or keras-hub preset (sampled with the flags below), or a
policy SavedModel (sampled with the settings it was exported with). Prompts come from --prompt (repeatable) or a
JSONL file of {"prompt": ...} records. Prints (or writes) one JSON line per response.
"""

import json
import sys

from absl import flags

from rlhf_tf.bin import runner

_POLICY = flags.DEFINE_string("policy", None, "Run directory, saved policy, keras-hub preset or policy SavedModel.")
_PROMPT = flags.DEFINE_multi_string("prompt", [], "A prompt (repeat the flag for several).")
_PROMPTS_FILE = flags.DEFINE_string("prompts_file", "", "JSONL file of prompt records.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 1, "Responses per prompt.")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 48, "SamplingConfig.max_new_tokens.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "SamplingConfig.temperature.")
_TOP_K = flags.DEFINE_integer("top_k", 0, "SamplingConfig.top_k (0: off).")
_TOP_P = flags.DEFINE_float("top_p", 1.0, "SamplingConfig.top_p (1: off).")
_MAX_PROMPT_TOKENS = flags.DEFINE_integer("max_prompt_tokens", 32, "Prompts keep their last this many tokens.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_OUTPUT = flags.DEFINE_string("output", "", "Write JSONL here instead of printing.")
flags.mark_flag_as_required("policy")


def _prompts():
    from rlhf_tf.data import sources
    from rlhf_tf.errors import UserInputError

    prompts = list(_PROMPT.value)
    if _PROMPTS_FILE.value:
        records, _ = sources.load_records(_PROMPTS_FILE.value, format="prompt", kind="prompt")
        prompts += [record.prompt for record in records]
    if not prompts:
        raise UserInputError("Give at least one --prompt or a --prompts_file.")
    return [prompt for prompt in prompts for _ in range(_NUM_SAMPLES.value)]


def main(argv):
    del argv
    from rlhf_tf import files
    from rlhf_tf.models import sampling

    config = sampling.SamplingConfig(
        max_new_tokens=_MAX_NEW_TOKENS.value, temperature=_TEMPERATURE.value, top_k=_TOP_K.value, top_p=_TOP_P.value
    )
    prompts = _prompts()
    from rlhf_tf.agents.language import evaluation

    responses = evaluation.generate(_POLICY.value, prompts, config, _MAX_PROMPT_TOKENS.value, _SEED.value)
    lines = "".join(
        json.dumps({"prompt": prompt, "response": response}, ensure_ascii=False) + "\n"
        for prompt, response in zip(prompts, responses)
    )
    if _OUTPUT.value:
        files.atomic_write_text(_OUTPUT.value, lines)
    else:
        sys.stdout.write(lines)


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
