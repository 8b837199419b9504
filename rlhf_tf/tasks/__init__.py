"""Bundled tasks: data to learn from and a gold judge to measure by.

`get_task("reviews")` returns a `Task`; training commands take `--task=reviews`. Tasks: `reviews` (sentiment of
short product and movie reviews) `dialogue` (a shop assistant answering from the shop's facts, declining
harmful requests; `rlhf_tf/tasks/dialogue`) and `summarize` (short reports and announcements to summarise:
key facts, nothing unsupported, brief; `rlhf_tf/tasks/summarize`) and `translate` (English into Veltan, a small
language with its own word order, morphology and ambiguous words; `rlhf_tf/tasks/translate`).
"""

import dataclasses

from rlhf_tf.errors import UserInputError
from rlhf_tf.tasks.reviews import corpus, gold, vocabulary


@dataclasses.dataclass(frozen=True)
class Task:
    """A bundled task.

    Attributes:
      name: the task's name on the command line.
      demonstrations: `count -> [Demonstration]`, the SFT corpus.
      held_out_demonstrations: `count -> [Demonstration]` about subjects kept out of training (perplexity).
      training_prompts: `count -> [Prompt]` from the training distribution (RL, pair sampling).
      evaluation_prompts: `count -> [Prompt]` held out from training (1,000 by default in evaluations).
      gold_score: `(prompts, responses) -> float32 [batch]`, the judge standing in for a person.
      tokenizer: `() -> Tokenizer`, the task's default tokenizer.
      metrics: optional `(prompts, responses) -> {name: float}`, the task's own measures beside the gold score
        (dialogue: correct-answer, harmful-request decline, benign-request refusal and invented-fact rates).
      max_prompt_tokens: the prompt tokens the pipeline keeps for this task (its prompts' longest, in its own
        tokenizer's tokens); the quickstart and `compare` size every stage by it.
      sft_seq_len: SFT's sequence length (prompt and demonstration).
    """

    name: str
    demonstrations: object
    held_out_demonstrations: object
    training_prompts: object
    evaluation_prompts: object
    gold_score: object
    tokenizer: object
    metrics: object = None
    max_prompt_tokens: int = 32
    sft_seq_len: int = 64


def _reviews():

    return Task(
        name="reviews",
        demonstrations=lambda count=20_000: corpus.demonstrations(count),
        held_out_demonstrations=lambda count=1000: corpus.demonstrations(count, seed=777, held_out=True),
        training_prompts=lambda count=5000: corpus.training_prompts(count),
        evaluation_prompts=lambda count=1000: corpus.evaluation_prompts(count),
        gold_score=gold.score_batch,
        tokenizer=vocabulary.tokenizer,
    )


def _generated(name, **lengths):
    """A task whose package `rlhf_tf.tasks.<name>` has `corpus`, `gold` (with `metrics`) and `vocabulary` modules."""
    import importlib

    corpus_, gold_, vocabulary_ = (
        importlib.import_module(f"rlhf_tf.tasks.{name}.{m}") for m in ("corpus", "gold", "vocabulary")
    )
    return Task(
        name=name,
        demonstrations=lambda count=20_000: corpus_.demonstrations(count),
        held_out_demonstrations=lambda count=1000: corpus_.demonstrations(count, seed=777, held_out=True),
        training_prompts=lambda count=5000: corpus_.training_prompts(count),
        evaluation_prompts=lambda count=1000: corpus_.evaluation_prompts(count),
        gold_score=gold_.score_batch,
        tokenizer=vocabulary_.tokenizer,
        metrics=gold_.metrics,
        **lengths,
    )


TASKS = {
    "reviews": _reviews,
    # Facts, an earlier exchange and the request: at most 72 tokens; replies at most 52.
    "dialogue": lambda: _generated("dialogue", max_prompt_tokens=80, sft_seq_len=128),
    # A document of 3-5 short sentences and a line of background, its names in word pieces: at most 73 tokens;
    # good summaries at most 30 (copies of the document longer).
    "summarize": lambda: _generated("summarize", max_prompt_tokens=80, sft_seq_len=128),
    "translate": lambda: _generated("translate"),
}


def get_task(name):
    if name not in TASKS:
        raise UserInputError(f"Unknown task; bundled tasks are {sorted(TASKS)}. Received: task={name!r}")
    return TASKS[name]()


def prompt_tokens(task, default):
    """The prompt tokens to keep for bundled task `task` ("" for none): the task's own (`Task.max_prompt_tokens`)
    when longer than `default`, else `default`."""
    return max(default, get_task(task).max_prompt_tokens) if task else default
