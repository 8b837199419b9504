"""How the labeling app shows an item to people: chat transcripts as turns, what differs between two responses
marked, and the project's guidelines (markdown) rendered safely.

All functions return plain text pieces that the templates escape (Jinja2 autoescaping), except `guidelines_html`,
whose markdown renderer escapes raw HTML itself (markdown-it with HTML turned off; unsafe link schemes dropped).
"""

import difflib
import re

from markdown_it import MarkdownIt

_TURN = re.compile(r"\n\n(Human|Assistant|System):[ ]?")
_ROLES = {"Human": "person", "Assistant": "assistant", "System": "context"}
_TOKENS = re.compile(r"\s+|[^\s]+")


def turns(prompt):
    """[(role, text)] of an HH-layout transcript ("\\n\\nHuman: ...\\n\\nAssistant: ..."; role "person",
    "assistant" or "context"), or [("", prompt)] for a prompt without turns. A trailing empty assistant turn (the
    generation prompt) is left out."""
    text = "\n\n" + prompt if prompt.startswith(("Human:", "System:")) else prompt
    parts = _TURN.split(text)
    if len(parts) == 1:
        return [("", prompt)]
    found = [("", parts[0].strip())] if parts[0].strip() else []
    for role, body in zip(parts[1::2], parts[2::2]):
        if body.strip() or role != "Assistant":
            found.append((_ROLES[role], body.strip()))
    return found


def differences(first, second):
    """([(text, changed)], [(text, changed)]): each response cut into runs of words, `changed` where it differs
    from the other (a word-level diff), so people find what to compare in long, mostly equal responses."""
    left, right = _TOKENS.findall(first), _TOKENS.findall(second)
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    first_runs, second_runs = [], []
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        changed = tag != "equal"
        if a_end > a_start:
            first_runs.append(("".join(left[a_start:a_end]), changed))
        if b_end > b_start:
            second_runs.append(("".join(right[b_start:b_end]), changed))
    return first_runs, second_runs


def worth_marking(first, second, words=12):
    """Whether to mark differences: both responses have at least `words` words and share some of them."""
    a, b = first.split(), second.split()
    return len(a) >= words and len(b) >= words and bool(set(a) & set(b))


_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def guidelines_html(markdown_text):
    """The guidelines as HTML: markdown rendered with raw HTML escaped, not passed through."""
    return _MARKDOWN.render(markdown_text or "")
