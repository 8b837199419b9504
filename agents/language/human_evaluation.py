"""People judge results: blind pairs of a policy's and a baseline's responses in the labeling app, and the people's
win rate with a confidence interval and their agreement (`rlhf-tf evaluate-policy --judge=people --store=FILE`).

Each held-out prompt becomes one comparison item whose two responses are in a random order (seeded); which side is
the policy's is kept in the item's metadata, never shown. People answer in the labeling app (`rlhf-tf
label-server --store=FILE`) while the evaluation waits (as `--labeler=web` runs do); a rerun finds the items it put
there and the answers given so far. The win rate counts, per answered pair, the share of its answers that prefer the
policy (a tie counts one half; skips are not answers), averaged over pairs; its 95% interval is a bootstrap over
pairs (seeded). Agreement: on pairs with two or more strict answers, the share of answer pairs that agree.
"""

import hashlib

import numpy as np

from rlhf_tf.feedback import labeling_round
from rlhf_tf.feedback import store as store_lib


def source_for(prompts, policy_texts, baseline_texts):
    """The items' source: a digest of what is judged, so a rerun on the same samples finds its items."""
    digest = hashlib.sha256()
    for texts in (prompts, policy_texts, baseline_texts):
        for text in texts:
            digest.update(text.encode("utf-8") + b"\0")
    return "evaluate-policy:" + digest.hexdigest()[:16]


def ask(store, prompts, policy_texts, baseline_texts, seed=0, labels_per_pair=1, priority=10.0):
    """Puts the blind pairs into `store` (once: a rerun finds them); returns the round (`LabelingRound`)."""
    source = source_for(prompts, policy_texts, baseline_texts)
    asking = labeling_round.LabelingRound(store, source, "comparison", labeler=labeling_round.WEB)
    if asking.asked_count() == 0:
        rng = np.random.default_rng(seed)
        items = []
        for prompt, ours, theirs in zip(prompts, policy_texts, baseline_texts, strict=True):
            policy_side = int(rng.integers(0, 2))
            pair = (ours, theirs) if policy_side == 0 else (theirs, ours)
            items.append(
                store_lib.Item(
                    "comparison",
                    pair,
                    prompt=prompt,
                    source=source,
                    priority=priority,
                    labels_wanted=labels_per_pair,
                    metadata={"policy_side": policy_side, "judging": "policy vs baseline, blind"},
                )
            )
        asking.ask(items)
    return asking


def judgement(asking, seed=0, resamples=2000):
    """{"people_win_rate_vs_baseline", "people_win_rate_low", "people_win_rate_high" (95% bootstrap over pairs),
    "people_pairs_answered", "people_answers", "people_agreement" (nan without a pair answered twice)} from the
    answers in the store so far."""
    per_pair, strict = {}, {}
    for item, label, _ in asking.answers()[1]:
        policy_side = item.metadata["policy_side"]
        choice = label.choice
        if choice.get("tie"):
            value = 0.5
        elif "preferred" in choice:
            value = 1.0 if choice["preferred"] == policy_side else 0.0
            strict.setdefault(item.id, []).append(choice["preferred"])
        else:
            continue
        per_pair.setdefault(item.id, []).append(value)
    pair_means = np.array([np.mean(values) for values in per_pair.values()])
    result = {
        "people_pairs_answered": float(len(pair_means)),
        "people_answers": float(sum(map(len, per_pair.values()))),
    }
    if len(pair_means):
        rng = np.random.default_rng(seed)
        draws = rng.choice(pair_means, size=(resamples, len(pair_means)), replace=True).mean(axis=1)
        result["people_win_rate_vs_baseline"] = float(pair_means.mean())
        result["people_win_rate_low"], result["people_win_rate_high"] = (
            float(v) for v in np.percentile(draws, [2.5, 97.5])
        )
    agree = total = 0
    for answers in strict.values():
        for first in range(len(answers)):
            for second in range(first + 1, len(answers)):
                agree += answers[first] == answers[second]
                total += 1
    result["people_agreement"] = agree / total if total else float("nan")
    return result


def people_judge(store_path, prompts, policy_texts, baseline_texts, seed=0, labels_per_pair=1, timeout=3600.0):
    """Asks people (`ask`), waits for their answers up to `timeout` seconds, and returns `judgement` of what came."""
    with store_lib.FeedbackStore(store_path) as store:
        asking = ask(store, prompts, policy_texts, baseline_texts, seed, labels_per_pair)
        asking.timeout = timeout
        asking.wait_for_people("Judging the policy against its baseline. ")
        return judgement(asking, seed)
