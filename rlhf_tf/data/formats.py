"""The JSON Lines shapes rlhf-tf reads (README, "Feedback data files") and how each becomes a record.

Every parser takes one decoded JSON object and returns a record, or raises `FieldError` naming the field that is
wrong. Files are read by `reader.py`, which adds the file name and line number.
"""

import base64
import math

from rlhf_tf.data import records

# Dialogue markers of the public HH-RLHF transcript layout.
HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
_ROLE_MARKERS = {"user": HUMAN, "human": HUMAN, "assistant": ASSISTANT, "system": "\n\nSystem:"}

FORMATS = ("pairwise", "transcript", "chat", "ranking", "rating", "demonstration", "prompt", "segments")


class FieldError(ValueError):
    """A record's field is missing or wrong. `field` is a path such as "chosen" or "ranking[2]"."""

    def __init__(self, field, message):
        super().__init__(f"field '{field}': {message}")
        self.field = field
        self.message = message


def detect_format(obj):
    """The shape of one JSON object, from its keys; raises FieldError when no shape fits."""
    if not isinstance(obj, dict):
        raise FieldError("(record)", f"must be a JSON object, got {type(obj).__name__}")
    keys = set(obj)
    if "segment_1" in keys or "segment_2" in keys:
        return "segments"
    if "responses" in keys:
        return "ranking"
    if "chosen" in keys or "rejected" in keys:
        if "prompt" not in keys:
            return "transcript"
        return "chat" if isinstance(obj.get("chosen"), list) or isinstance(obj.get("prompt"), list) else "pairwise"
    if "response" in keys or "score" in keys:
        return "rating"
    if "completion" in keys or "messages" in keys:
        return "demonstration"
    if "prompt" in keys:
        return "prompt"
    raise FieldError(
        "(record)",
        f"no known shape has the keys {sorted(keys)}; see README 'Feedback data files' for the accepted shapes",
    )


def _text(obj, field, allow_empty=False):
    if field not in obj:
        raise FieldError(field, "is missing")
    value = obj[field]
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise FieldError(field, "is empty")
    return value


def _number(obj, field, default=None):
    if field not in obj:
        if default is None:
            raise FieldError(field, "is missing")
        return default
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(field, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise FieldError(field, f"must be finite, got {value}")
    return float(value)


def _identifier(obj):
    value = obj.get("id", "")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise FieldError("id", f"must be a string or an integer, got {type(value).__name__}")
    return str(value)


def _pairwise(obj):
    margin = _number(obj, "margin", default=0.0)
    if margin < 0:
        raise FieldError("margin", f"must be >= 0, got {margin}")
    tie = obj.get("tie", False)
    if not isinstance(tie, bool):
        raise FieldError("tie", f"must be true or false, got {type(tie).__name__}")
    return records.Comparison(
        prompt=_text(obj, "prompt", allow_empty=True),
        chosen=_text(obj, "chosen"),
        rejected=_text(obj, "rejected"),
        margin=margin,
        tie=tie,
        id=_identifier(obj),
    )


def split_transcript(dialogue, field):
    """Splits an HH-RLHF dialogue at its last "Assistant:" into (prompt ending in "Assistant:", response)."""
    cut = dialogue.rfind(ASSISTANT)
    if cut < 0:
        raise FieldError(field, 'has no "\\n\\nAssistant:" turn to split the prompt from the response')
    cut += len(ASSISTANT)
    return dialogue[:cut], dialogue[cut:]


def _transcript(obj):
    chosen_prompt, chosen = split_transcript(_text(obj, "chosen"), "chosen")
    rejected_prompt, rejected = split_transcript(_text(obj, "rejected"), "rejected")
    if chosen_prompt != rejected_prompt:
        raise FieldError("rejected", "does not share the chosen dialogue up to its last Assistant turn")
    if not chosen.strip():
        raise FieldError("chosen", "has an empty last Assistant turn")
    if not rejected.strip():
        raise FieldError("rejected", "has an empty last Assistant turn")
    return records.Comparison(prompt=chosen_prompt, chosen=chosen, rejected=rejected, id=_identifier(obj))


def _messages(value, field):
    if not isinstance(value, list) or not value:
        raise FieldError(field, "must be a non-empty list of {role, content} messages")
    for index, message in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(message, dict):
            raise FieldError(where, f"must be an object with role and content, got {type(message).__name__}")
        role = message.get("role")
        if role not in _ROLE_MARKERS:
            raise FieldError(f"{where}.role", f"must be one of {sorted(_ROLE_MARKERS)}, got {role!r}")
        if "content" not in message:
            raise FieldError(f"{where}.content", "is missing")
        if not isinstance(message["content"], str) or not message["content"].strip():
            raise FieldError(f"{where}.content", "must be a non-empty string")
    return value


def render_messages(messages):
    """Chat messages as an HH-style transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...")."""
    return "".join(f"{_ROLE_MARKERS[message['role']]} {message['content']}" for message in messages)


def _chat_prompt(messages):
    """The prompt text for a model reply after `messages`: the transcript, then the Assistant marker."""
    return render_messages(messages) + ASSISTANT


def _chat_reply(messages, field):
    if messages[0]["role"] != "assistant":
        raise FieldError(f"{field}[0].role", f"must be 'assistant' (the reply), got {messages[0]['role']!r}")
    return " " + messages[0]["content"] + render_messages(messages[1:])


def _chat(obj):
    prompt = obj.get("prompt")
    prompt_text = _chat_prompt(_messages(prompt, "prompt")) if isinstance(prompt, list) else _text(obj, "prompt")
    chosen = _chat_reply(_messages(obj.get("chosen"), "chosen"), "chosen")
    rejected = _chat_reply(_messages(obj.get("rejected"), "rejected"), "rejected")
    return records.Comparison(prompt=prompt_text, chosen=chosen, rejected=rejected, id=_identifier(obj))


def _ranking(obj):
    prompt = _text(obj, "prompt", allow_empty=True)
    responses = obj.get("responses")
    if not isinstance(responses, list) or len(responses) < 2:
        raise FieldError("responses", "must be a list of at least 2 responses")
    for index, response in enumerate(responses):
        if not isinstance(response, str):
            raise FieldError(f"responses[{index}]", f"must be a string, got {type(response).__name__}")
        if not response.strip():
            raise FieldError(f"responses[{index}]", "is empty")
    if ("ranking" in obj) == ("scores" in obj):
        raise FieldError("ranking", "give exactly one of 'ranking' (indices, best first) or 'scores'")
    scores = ()
    if "ranking" in obj:
        ranking = obj["ranking"]
        if not isinstance(ranking, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in ranking):
            raise FieldError("ranking", "must be a list of integer indices into responses, best first")
        if sorted(ranking) != list(range(len(responses))):
            raise FieldError(
                "ranking", f"must be a permutation of 0..{len(responses) - 1} (each response once), got {ranking}"
            )
    else:
        given = obj["scores"]
        if not isinstance(given, list) or len(given) != len(responses):
            raise FieldError("scores", f"must be a list of {len(responses)} numbers, one per response")
        values = [_number({f"scores[{index}]": value}, f"scores[{index}]") for index, value in enumerate(given)]
        ranking = sorted(range(len(responses)), key=lambda index: -values[index])
        scores = tuple(values[index] for index in ranking)
    return records.Ranking(
        prompt=prompt, responses=tuple(responses[index] for index in ranking), scores=scores, id=_identifier(obj)
    )


def _rating(obj):
    return records.Rating(
        prompt=_text(obj, "prompt", allow_empty=True),
        response=_text(obj, "response"),
        score=_number(obj, "score"),
        id=_identifier(obj),
    )


def _demonstration(obj):
    if "messages" in obj:
        messages = _messages(obj["messages"], "messages")
        if messages[-1]["role"] != "assistant":
            last = len(messages) - 1
            raise FieldError(f"messages[{last}].role", "the last message must be the assistant's (the completion)")
        if len(messages) < 2:
            raise FieldError("messages", "needs at least one message before the assistant's completion")
        return records.Demonstration(
            prompt=_chat_prompt(messages[:-1]), completion=" " + messages[-1]["content"], id=_identifier(obj)
        )
    return records.Demonstration(
        prompt=_text(obj, "prompt", allow_empty=True), completion=_text(obj, "completion"), id=_identifier(obj)
    )


def _prompt(obj):
    return records.Prompt(prompt=_text(obj, "prompt"), id=_identifier(obj))


def _float_rows(value, field, width=None):
    if not isinstance(value, list) or not value:
        raise FieldError(field, "must be a non-empty list (one entry per step)")
    rows = []
    for index, row in enumerate(value):
        entries = row if isinstance(row, list) else [row]
        for entry in entries:
            if isinstance(entry, bool) or not isinstance(entry, (int, float)) or not math.isfinite(entry):
                raise FieldError(f"{field}[{index}]", f"must hold finite numbers, got {entry!r}")
        rows.append(tuple(float(entry) for entry in entries) if isinstance(row, list) else float(row))
    return tuple(rows)


def _segment(obj, name):
    segment = obj.get(name)
    if not isinstance(segment, dict):
        raise FieldError(name, "must be an object with observations and actions")
    observations = _float_rows(segment.get("observations"), f"{name}.observations")
    actions = _float_rows(segment.get("actions"), f"{name}.actions")
    if len(observations) != len(actions):
        raise FieldError(f"{name}.actions", f"has {len(actions)} steps but observations has {len(observations)}")
    frames = segment.get("frames_png_base64", [])
    if not isinstance(frames, list):
        raise FieldError(f"{name}.frames_png_base64", "must be a list of base64 PNG strings")
    try:
        decoded = tuple(base64.b64decode(frame, validate=True) for frame in frames)
    except (ValueError, TypeError) as error:
        raise FieldError(f"{name}.frames_png_base64", f"is not valid base64: {error}") from None
    return observations, actions, decoded


def _segments(obj):
    observations_1, actions_1, frames_1 = _segment(obj, "segment_1")
    observations_2, actions_2, frames_2 = _segment(obj, "segment_2")
    label = _number(obj, "label")
    if label not in (0.0, 0.5, 1.0):
        raise FieldError("label", f"must be 0 (segment_1 preferred), 1 (segment_2) or 0.5 (equal), got {label}")
    return records.SegmentComparison(
        observations_1=observations_1,
        actions_1=actions_1,
        observations_2=observations_2,
        actions_2=actions_2,
        label=label,
        frames_1=frames_1,
        frames_2=frames_2,
        id=_identifier(obj),
    )


PARSERS = {
    "pairwise": _pairwise,
    "transcript": _transcript,
    "chat": _chat,
    "ranking": _ranking,
    "rating": _rating,
    "demonstration": _demonstration,
    "prompt": _prompt,
    "segments": _segments,
}

# The record kind each file format yields.
FORMAT_KINDS = {
    "pairwise": "comparison",
    "transcript": "comparison",
    "chat": "comparison",
    "ranking": "ranking",
    "rating": "rating",
    "demonstration": "demonstration",
    "prompt": "prompt",
    "segments": "segment_comparison",
}


def parse(obj, format_name):
    """One JSON object in the shape `format_name` as a record; raises FieldError."""
    if not isinstance(obj, dict):
        raise FieldError("(record)", f"must be a JSON object, got {type(obj).__name__}")
    return PARSERS[format_name](obj)


def to_json(record):
    """A record as the JSON object of its canonical shape (what writers write and readers read back)."""
    if isinstance(record, records.Comparison):
        obj = {"prompt": record.prompt, "chosen": record.chosen, "rejected": record.rejected}
        if record.margin:
            obj["margin"] = record.margin
        if record.tie:
            obj["tie"] = True
    elif isinstance(record, records.Ranking):
        obj = {"prompt": record.prompt, "responses": list(record.responses)}
        if record.scores:
            obj["scores"] = list(record.scores)
        else:
            obj["ranking"] = list(range(len(record.responses)))
    elif isinstance(record, records.Rating):
        obj = {"prompt": record.prompt, "response": record.response, "score": record.score}
    elif isinstance(record, records.Demonstration):
        obj = {"prompt": record.prompt, "completion": record.completion}
    elif isinstance(record, records.Prompt):
        obj = {"prompt": record.prompt}
    elif isinstance(record, records.SegmentComparison):

        def segment(observations, actions, frames):
            result = {"observations": _plain(observations), "actions": _plain(actions)}
            if frames:
                result["frames_png_base64"] = [base64.b64encode(frame).decode("ascii") for frame in frames]
            return result

        obj = {
            "segment_1": segment(record.observations_1, record.actions_1, record.frames_1),
            "segment_2": segment(record.observations_2, record.actions_2, record.frames_2),
            "label": record.label,
        }
    else:
        raise TypeError(f"Not a record: {type(record).__name__}")
    if record.id:
        obj["id"] = record.id
    return obj


def _plain(rows):
    return [list(row) if isinstance(row, (tuple, list)) else row for row in rows]
