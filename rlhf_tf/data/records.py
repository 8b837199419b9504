"""The records every kind of feedback becomes, whatever file it came from.

Text records (language tasks): `Comparison` (a pair, ties and margins allowed), `Ranking` (K responses best
first), `Rating` (a scalar score), `Demonstration` (SFT), `Prompt` (RL). Control records: `SegmentComparison`,
two trajectory segments (observations, actions, optional PNG frames) and which one was preferred.
"""

import dataclasses

# The record kinds, in the order tools list them.
KINDS = ("comparison", "ranking", "rating", "demonstration", "prompt", "segment_comparison")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A pairwise preference: `chosen` is preferred to `rejected` after `prompt`.

    Attributes:
      prompt: the shared context (may be empty for transcript data whose prompt is the dialogue so far).
      chosen: the preferred response.
      rejected: the other response.
      margin: how much better `chosen` is (>= 0), for margin losses; 0 when unknown.
      tie: the labeler judged both equally good; a tie is learned as probability 0.5, not as a preference.
      id: an optional identifier carried through to exports.
    """

    prompt: str
    chosen: str
    rejected: str
    margin: float = 0.0
    tie: bool = False
    id: str = ""

    kind = "comparison"


@dataclasses.dataclass(frozen=True)
class Ranking:
    """K >= 2 responses to one prompt, ordered best first in `responses`.

    Attributes:
      prompt: the context.
      responses: the responses, best first (readers reorder by the given ranking or scores).
      scores: the scores that ordered them, when the source gave scores (same order as `responses`), else ().
      id: an optional identifier.
    """

    prompt: str
    responses: tuple
    scores: tuple = ()
    id: str = ""

    kind = "ranking"


@dataclasses.dataclass(frozen=True)
class Rating:
    """A scalar judgement of one response (a 1-7 rating, or 1/0 thumbs up/down)."""

    prompt: str
    response: str
    score: float
    id: str = ""

    kind = "rating"


@dataclasses.dataclass(frozen=True)
class Demonstration:
    """A prompt and the completion a person would give (supervised fine-tuning data)."""

    prompt: str
    completion: str
    id: str = ""

    kind = "demonstration"


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A prompt to sample responses for (RL)."""

    prompt: str
    id: str = ""

    kind = "prompt"


@dataclasses.dataclass(frozen=True)
class SegmentComparison:
    """Two trajectory segments of a control task and which one the labeler preferred.

    Attributes:
      observations_1, observations_2: [steps, observation_dim] nested lists or arrays of floats.
      actions_1, actions_2: [steps] (discrete) or [steps, action_dim] (continuous).
      label: 0.0 if segment 1 is preferred, 1.0 if segment 2, 0.5 for equally preferred.
      frames_1, frames_2: optional PNG-encoded frames (bytes), one per step, for people to look at.
      id: an optional identifier.
    """

    observations_1: tuple
    actions_1: tuple
    observations_2: tuple
    actions_2: tuple
    label: float
    frames_1: tuple = ()
    frames_2: tuple = ()
    id: str = ""

    kind = "segment_comparison"


RECORD_TYPES = {
    record_type.kind: record_type
    for record_type in (Comparison, Ranking, Rating, Demonstration, Prompt, SegmentComparison)
}
