"""Preferences over trajectory segments for control (Christiano et al. 2017): segments cut from the agent's own
experience, pairs chosen to ask about, labels through the feedback store, and a reward ensemble fitted to them.

The pieces, in the order a run uses them:
- `sample_segments` cuts segments of `length` consecutive steps out of a TF-Agents replay buffer, dropping windows
  that cross an episode boundary (a boundary step's action is never taken), and keeps the true per-step rewards for
  the simulated teacher and evaluation only.
- `choose_pairs` pairs segments at random or by ensemble disagreement (the std over members of
  P(first preferred)): ask about what the ensemble is least sure of.
- `LabelRounds` writes the chosen segments to the run directory (`segments/round-N.npz`, atomically), puts one
  `segment_comparison` item per pair into the SQLite feedback store, has them answered (the simulated teacher
  answers at once; people answer through the store), and reads every answered label back. Since labels live in the
  store and segments on disk, a resumed run rebuilds its label set exactly, and who answers changes nothing else.
- `PreferenceReward` is the learned reward: an ensemble of per-step MLPs r(s, a) fitted with a Bradley-Terry loss
  on segment sums, normalised to zero mean and unit std over recent experience, and applied to whole batches of
  experience inside the agents' compiled train steps (`relabel`), never per environment step.
"""

import io
import os

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, files
from rlhf_tf.feedback import labelers as labelers_lib
from rlhf_tf.feedback import store as store_lib
from rlhf_tf.reward import ensemble as ensemble_lib
from rlhf_tf.reward import models as reward_models

SIMULATED_LABELER = "simulated"


# Segments -----------------------------------------------------------------------------------------------------------


def sample_segments(replay_buffer, count, length, attempts=4):
    """Up to `count` segments of `length` steps from `replay_buffer`, none crossing an episode boundary.

    Returns numpy arrays {"observations": [M, L, D], "actions": [M, L, ...], "rewards": [M, L]} (rewards: the
    environment's true rewards, for teachers and evaluation only).
    """
    kept = {"observations": [], "actions": [], "rewards": []}
    total = 0
    for _ in range(attempts):
        trajectory, _ = replay_buffer.get_next(sample_batch_size=count, num_steps=length)
        boundary = trajectory.is_boundary().numpy().any(axis=1)
        good = ~boundary
        kept["observations"].append(trajectory.observation.numpy()[good])
        kept["actions"].append(trajectory.action.numpy()[good])
        kept["rewards"].append(trajectory.reward.numpy()[good].astype(np.float32))
        total += int(good.sum())
        if total >= count:
            break
    return {name: np.concatenate(parts)[:count] for name, parts in kept.items()}


def choose_pairs(segments, num_pairs, selection, ensemble, rng):
    """Index pairs [num_pairs, 2] into `segments`: "random", or the most disputed among random candidates."""
    count = len(segments["rewards"])
    configs.require(count >= 2, "Too few segments to pair.", segments=count)
    candidates = num_pairs if selection == "random" else num_pairs * 10
    first = rng.integers(0, count, size=candidates)
    second = (first + rng.integers(1, count, size=candidates)) % count  # never a segment with itself
    pairs = np.stack([first, second], axis=1)
    if selection == "random" or ensemble is None:
        return pairs[:num_pairs], np.zeros(min(num_pairs, candidates), np.float32)
    returns = ensemble.member_returns(segments["observations"], segments["actions"])  # [K, count]
    spread = ensemble_lib.disagreement(tf.gather(returns, first, axis=1), tf.gather(returns, second, axis=1)).numpy()
    order = np.argsort(-spread, kind="stable")[:num_pairs]
    return pairs[order], spread[order]


# Labels through the feedback store --------------------------------------------------------------------------------


class LabelRounds:
    """Rounds of questions about segment pairs, asked and answered through a feedback store.

    Args:
      run_dir: the run directory; segments go to `run_dir/segments/`, the store defaults to
        `run_dir/feedback.sqlite`.
      store_path: a feedback store shared with people (the labeling app) instead of the run's own.
      teacher: a `SegmentTeacher` answering as labeler "simulated", or None when people answer.
      source: the item's `source` field (which run asked; the labeling app finds segments under it).
      env_name, fixed_horizon: recorded with each item so that the labeling app can draw the clips.
    """

    def __init__(self, run_dir, teacher=None, store_path="", source="", env_name="", fixed_horizon=True):
        self.segment_dir = os.path.join(run_dir, "segments")
        os.makedirs(self.segment_dir, exist_ok=True)
        self.store = store_lib.FeedbackStore(store_path or os.path.join(run_dir, "feedback.sqlite"))
        self.teacher = teacher
        self.source = source or os.path.abspath(run_dir)
        self.env_name = env_name
        self.fixed_horizon = fixed_horizon
        self._segments = {}  # round -> arrays, cached

    def close(self):
        self.store.close()

    def rounds_done(self):
        names = [name for name in os.listdir(self.segment_dir) if name.startswith("round-") and name.endswith(".npz")]
        return sorted(int(name[len("round-") : -len(".npz")]) for name in names)

    def segments(self, round_number):
        if round_number not in self._segments:
            with np.load(os.path.join(self.segment_dir, f"round-{round_number}.npz")) as data:
                self._segments[round_number] = {name: data[name] for name in data.files}
        return self._segments[round_number]

    def ask(self, segments, pairs, priorities, round_number):
        """Saves the round's segments and puts one item per pair into the store; returns the items."""
        used = np.unique(pairs)
        remap = {int(old): new for new, old in enumerate(used)}
        kept = {name: values[used] for name, values in segments.items()}
        path = os.path.join(self.segment_dir, f"round-{round_number}.npz")
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **kept)
        files.atomic_write_bytes(path, buffer.getvalue())
        self._segments[round_number] = kept
        items = [
            store_lib.Item(
                kind="segment_comparison",
                candidates=(f"{round_number}/{remap[int(a)]}", f"{round_number}/{remap[int(b)]}"),
                source=self.source,
                metadata={
                    "round": round_number,
                    "disagreement": float(priority),
                    "env": self.env_name,
                    "fixed_horizon": self.fixed_horizon,
                    # The true returns' verdict, for the labeling app's agreement-with-gold (never for training).
                    "gold_preferred": labelers_lib.gold_verdict(
                        float(np.sum(segments["rewards"][a])), float(np.sum(segments["rewards"][b]))
                    ),
                },
                priority=float(priority),
            )
            for (a, b), priority in zip(pairs, priorities)
        ]
        return self.store.add_items(items)

    def answer_pending(self):
        """The simulated teacher answers every open item of this run; returns how many it answered."""
        if self.teacher is None:
            return 0
        answered = 0
        for item in self.store.next_items(SIMULATED_LABELER, limit=1_000_000, kind="segment_comparison"):
            if item.source != self.source:
                continue
            first, second = (self.segment(candidate) for candidate in item.candidates)
            target = self.teacher.label(first["rewards"], second["rewards"])
            try:
                self.store.add_label(item.id, SIMULATED_LABELER, labelers_lib.label_to_choice(target))
            except (store_lib.ItemAlreadyLabeled, store_lib.AlreadyAnswered):
                continue
            answered += 1
        return answered

    def wait_for_answers(self, timeout, report=None):
        """Waits until every item this run asked is answered (people answer through the labeling app), or until
        `timeout` seconds pass. Returns how many are still waiting: training goes on with the labels that came, and
        later answers are picked up by later rounds."""
        return self.store.wait_for_labels(self.source, timeout, kind="segment_comparison", on_wait=report)

    def segment(self, segment_id):
        round_number, index = (int(part) for part in segment_id.split("/"))
        arrays = self.segments(round_number)
        return {name: values[index] for name, values in arrays.items()}

    def labels(self, since_label_id=0):
        """(last label id, [(segment 1, segment 2, target)], [their label ids]) for this run's answered, non-skipped
        items, in label order."""
        rows, ids, last = [], [], since_label_id
        for item, label in self.store.labeled("segment_comparison", since_label_id=since_label_id):
            last = max(last, label.id)
            if item.source != self.source:
                continue
            target = labelers_lib.choice_to_label(label.choice)  # P(segment 2 preferred)
            if target is None:
                continue
            first, second = (self.segment(candidate) for candidate in item.candidates)
            rows.append((first, second, target))
            ids.append(label.id)
        return last, rows, ids

    def withdrawn(self, label_ids):
        """How many of `label_ids` are no longer in the store (a labeler undid them in the labeling app)."""
        return len(label_ids) - self.store.count_labels(label_ids)

    def asked_count(self):
        """Items this run has put into the store (answered or not)."""
        return self.store.item_count(source=self.source)


# The learned reward ------------------------------------------------------------------------------------------------


class PreferenceReward:
    """An ensemble of per-step reward models fitted to segment preferences; the reward the agent sees.

    Args:
      observation_size: features per observation.
      num_actions: discrete action count, or 0 for continuous actions of `action_size` features.
      segment_length: steps per segment.
      capacity: the most labels the run will collect (label arrays are fixed-size: one compiled train step).
      ensemble_size: members, each trained on its own bootstrap draw of the labels.
      hidden_sizes: each member's MLP widths.
      learning_rate, batch_size, weight_decay: the Bradley-Terry fit.
      seed: seeds the members' initialisation and the minibatch draws.
    """

    def __init__(
        self,
        observation_size,
        num_actions,
        segment_length,
        capacity,
        action_size=1,
        ensemble_size=3,
        hidden_sizes=(64, 64),
        learning_rate=1e-3,
        batch_size=64,
        weight_decay=1e-4,
        seed=0,
    ):
        configs.require_positive(capacity=capacity, ensemble_size=ensemble_size, segment_length=segment_length)
        self.num_actions = num_actions
        self.batch_size = batch_size
        self.capacity = capacity
        keras.utils.set_random_seed(seed)
        members = [
            reward_models.ControlRewardModel(num_actions=num_actions, hidden_sizes=hidden_sizes, name=f"member_{k}")
            for k in range(ensemble_size)
        ]
        self.ensemble = ensemble_lib.RewardEnsemble(members, name="control_reward")
        action_shape = [segment_length] if num_actions else [segment_length, action_size]
        action_dtype = tf.int64 if num_actions else tf.float32
        example = {
            "observations": tf.zeros([1, segment_length, observation_size]),
            "actions": tf.zeros([1, *action_shape], action_dtype),
        }
        self.ensemble.member_scores(example)
        self.optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
        self.optimizer.build(self.ensemble.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed + 1)

        def label_slots(name, shape, dtype):
            return tf.Variable(tf.zeros([capacity, *shape], dtype), trainable=False, name=name)

        observation_shape = [segment_length, observation_size]
        self.observations_1 = label_slots("observations_1", observation_shape, tf.float32)
        self.observations_2 = label_slots("observations_2", observation_shape, tf.float32)
        self.actions_1 = label_slots("actions_1", action_shape, action_dtype)
        self.actions_2 = label_slots("actions_2", action_shape, action_dtype)
        self.targets = label_slots("targets", [], tf.float32)
        self.count = tf.Variable(0, dtype=tf.int32, trainable=False, name="label_count")
        self._fit = tf.function(self._fit_steps, jit_compile=False)
        self._score = tf.function(self._member_returns, reduce_retracing=True)

    @property
    def num_labels(self):
        return int(self.count.numpy())

    def checkpoint_objects(self):
        return {"reward_ensemble": self.ensemble, "reward_optimizer": self.optimizer, "reward_rng": self.rng}

    def clear_labels(self):
        """Forgets every label (the ensemble's weights stay): the store's current labels are added back next."""
        self.count.assign(0)

    def add_labels(self, rows):
        """Appends (segment 1, segment 2, target) rows to the label arrays (beyond `capacity`: refused)."""
        if not rows:
            return
        start = self.num_labels
        configs.require(
            start + len(rows) <= self.capacity,
            "More labels than the run's label budget.",
            labels=start + len(rows),
            capacity=self.capacity,
        )
        index = tf.range(start, start + len(rows))[:, None]

        def put(variable, values):
            variable.scatter_nd_update(index, tf.cast(np.stack(values), variable.dtype))

        put(self.observations_1, [first["observations"] for first, _, _ in rows])
        put(self.observations_2, [second["observations"] for _, second, _ in rows])
        put(self.actions_1, [self._actions(first["actions"]) for first, _, _ in rows])
        put(self.actions_2, [self._actions(second["actions"]) for _, second, _ in rows])
        put(self.targets, [target for _, _, target in rows])
        self.count.assign(start + len(rows))

    def _actions(self, actions):
        actions = np.asarray(actions)
        if not self.num_actions and actions.ndim == 1:
            actions = actions[:, None]
        return actions

    def _member_returns(self, observations, actions):
        return tf.reduce_sum(self.ensemble.member_scores({"observations": observations, "actions": actions}), axis=-1)

    def member_returns(self, observations, actions):
        """Segment returns per member [K, M] for segments [M, L, ...]."""
        return self._score(
            tf.convert_to_tensor(observations, tf.float32), tf.convert_to_tensor(self._actions_batch(actions))
        )

    def _actions_batch(self, actions):
        actions = np.asarray(actions)
        if not self.num_actions and actions.ndim == 2:
            actions = actions[..., None]
        return actions.astype(np.int64 if self.num_actions else np.float32)

    def _fit_steps(self, steps):
        losses = tf.TensorArray(tf.float32, size=steps)
        members = self.ensemble.members
        for step in tf.range(steps):
            total = 0.0
            with tf.GradientTape() as tape:
                for member in members:
                    # Each member draws its own minibatch with replacement: a bootstrap of the labels.
                    index = self.rng.uniform([self.batch_size], 0, self.count, dtype=tf.int32)
                    returns = [
                        tf.reduce_sum(
                            member(
                                {
                                    "observations": tf.gather(observations, index),
                                    "actions": tf.gather(actions, index),
                                },
                                training=True,
                            ),
                            axis=-1,
                        )
                        for observations, actions in (
                            (self.observations_1, self.actions_1),
                            (self.observations_2, self.actions_2),
                        )
                    ]
                    targets = tf.gather(self.targets, index)
                    total += tf.reduce_mean(
                        tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=returns[1] - returns[0])
                    )
            variables = self.ensemble.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
            losses = losses.write(step, total / len(members))
        return tf.reduce_mean(losses.stack())

    def fit(self, steps):
        """`steps` Bradley-Terry steps on the labels so far; returns the mean loss (nan without labels)."""
        if self.num_labels == 0:
            return float("nan")
        return float(self._fit(tf.constant(steps)).numpy())

    def accuracy(self):
        """How often the ensemble's mean agrees with the labels' strict preferences (ties left out)."""
        count = self.num_labels
        if count == 0:
            return float("nan")
        first = tf.reduce_mean(self._score(self.observations_1[:count], self.actions_1[:count]), axis=0)
        second = tf.reduce_mean(self._score(self.observations_2[:count], self.actions_2[:count]), axis=0)
        targets = self.targets[:count].numpy()
        strict = targets != 0.5
        if not strict.any():
            return float("nan")
        predicted = (second.numpy() > first.numpy()).astype(np.float32)
        return float(np.mean(predicted[strict] == targets[strict]))

    def set_normalization(self):
        """Zero mean, unit std of the ensemble's per-step reward over every labelled segment's steps.

        The labelled segments are the data the reward was fitted on, so these statistics move slowly and keep the
        contrasts the labels taught. Statistics of the agent's newest experience would not: once the agent is good,
        its steps differ only in what the reward model cannot tell apart, and rescaling those to unit std would
        amplify the model's noise into the agent's whole signal.
        """
        count = self.num_labels
        if count == 0:
            return
        scores = tf.concat(
            [
                self.ensemble({"observations": self.observations_1[:count], "actions": self.actions_1[:count]}),
                self.ensemble({"observations": self.observations_2[:count], "actions": self.actions_2[:count]}),
            ],
            axis=0,
        )
        self.ensemble.reward_mean.assign(tf.reduce_mean(scores))
        self.ensemble.reward_std.assign(tf.math.reduce_std(scores))

    def rewards(self, observations, actions):
        """The normalised learned reward of each step: any leading shape, traceable."""
        actions = tf.cast(actions, tf.int64 if self.num_actions else tf.float32)
        return self.ensemble.normalized(self.ensemble({"observations": observations, "actions": actions}))

    def relabel(self, trajectory):
        """The same trajectory with the learned reward in place of the environment's (inside tf.function)."""
        return trajectory._replace(reward=self.rewards(trajectory.observation, trajectory.action))
