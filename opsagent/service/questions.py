"""What a question must be before anything runs: text.

A JSON body may carry a lone surrogate such as U+D800 (written "\\ud800" in JSON), which
no encoder can write, so the run would fail only when its answer is stored or sent; argv
(bytes that are not UTF-8) or a pasted question may carry the same, or control characters.
The CLI and the HTTP service both check a question here first.
"""

from __future__ import annotations

import re

# Lone surrogates; C0 controls but tab, newline and carriage return; DEL and C1 controls.
_NOT_TEXT = re.compile("[\ud800-\udfff]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def question_problem(question: str) -> str | None:
    """Why this cannot be a question (one sentence), or None when it is text."""
    found = _NOT_TEXT.search(question)
    if found is None:
        return None
    char, at = found.group(), found.start() + 1
    if "\ud800" <= char <= "\udfff":
        return (
            f"the question is not valid Unicode text: a lone surrogate U+{ord(char):04X} "
            f"at character {at} (send it as UTF-8)"
        )
    return f"the question holds a control character U+{ord(char):04X} at character {at}"
