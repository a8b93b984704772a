"""Tokens: the first step of reading a question.

A question becomes tokens: lower-case words with accents stripped and contractions
expanded; quoted strings, key=value pairs, ids and region codes kept whole; punctuation as
clause boundaries. The vocabulary's phrases are tokenized the same way (phrase_index.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

WORD, QUOTED, KV, BOUNDARY = "word", "quoted", "kv", "boundary"


@dataclass(frozen=True)
class Token:
    raw: str  # as typed: tag values and names keep their case
    norm: str  # lower-case
    base: str  # singular of norm ("instances" -> "instance"); norm when not a plural
    kind: str = WORD


_CONTRACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bcan't\b", re.I), "can not"),
    (re.compile(r"\bwon't\b", re.I), "will not"),
    (re.compile(r"\bshan't\b", re.I), "shall not"),
    (re.compile(r"n't\b", re.I), " not"),
    (re.compile(r"'re\b", re.I), " are"),
    (re.compile(r"'ve\b", re.I), " have"),
    (re.compile(r"'ll\b", re.I), " will"),
    (re.compile(r"'d\b", re.I), " would"),
    (re.compile(r"\b(i)'m\b", re.I), r"\1 am"),
    (re.compile(r"\b(let)'s\b", re.I), r"\1 us"),
    # "prod's instances", "what's running": the possessive and "is" both carry nothing here.
    (re.compile(r"(\w)'s\b", re.I), r"\1"),
    (re.compile(r"(\w)s'(?=\s|$)", re.I), r"\1s"),
]
_TOKEN_RE = re.compile(
    r'"(?P<dq>[^"]*)"'
    r"|(?<!\w)'(?P<sq>[^']*)'(?!\w)"
    r"|(?P<cidr>::/0)"
    r"|(?P<word>[\w*%#][\w\-./:=*%@+#]*)"
    r"|(?P<amp>&)"
    # Brackets are not boundaries: "US East (N. Virginia)" is one region name.
    r"|(?P<stop>[,;:!?]|\.(?=\s|$)|\s[-\u2013\u2014]+\s|[\u2013\u2014])"
)
_CIDR_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")


def tokenize(text: str) -> list[Token]:
    """Words, values and clause boundaries of a question (also used for vocabulary phrases)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = (
        text.replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("\u201c", '"')
        .replace("\u201d", '"')
    )
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    # "N. Virginia", "N.California": a one-letter abbreviation is a word of its own.
    text = re.sub(r"(?<![\w.])([A-Za-z])\.\s*(?=[A-Za-z])", r"\1 ", text)
    # Account ids are sometimes written in groups of four.
    text = re.sub(r"\b(\d{4})[- ](\d{4})[- ](\d{4})\b", r"\1\2\3", text)
    # "w/ tag x", "w/o": chat shorthand.
    text = re.sub(r"(?i)\bw/o\b", "without", text)
    text = re.sub(r"(?i)\bw/(?=\s|$)", "with", text)
    # "team = payments" is one tag.
    text = re.sub(r"([\w*])\s*==?\s*([\w*])", r"\1=\2", text)
    tokens: list[Token] = []
    for match in _TOKEN_RE.finditer(text):
        if match.group("dq") is not None or match.group("sq") is not None:
            raw = match.group("dq") if match.group("dq") is not None else match.group("sq")
            raw = raw.strip()
            if raw:
                tokens.append(Token(raw, raw.lower(), raw.lower(), QUOTED))
        elif match.group("cidr"):
            tokens.append(word_token("::/0"))
        elif match.group("word"):
            tokens.extend(_word_tokens(match.group("word")))
        elif match.group("amp"):
            tokens.append(word_token("and"))
        else:
            tokens.append(Token(match.group(0).strip(), "", "", BOUNDARY))
    return tokens


def _word_tokens(raw: str) -> list[Token]:
    ends_clause = False
    stop = "."  # the boundary as typed: "cleanup list:" heads what follows
    while raw and raw[-1] in ".:,":
        if raw[-1] in ".:" and not ends_clause:
            ends_clause, stop = True, raw[-1]
        raw = raw[:-1]
    raw = raw.lstrip("#")
    if not raw:
        return [Token(stop, "", "", BOUNDARY)] if ends_clause else []
    lower = raw.lower()
    out: list[Token]
    if lower.startswith("non-") and len(lower) > 4:
        # "non-production", "non-running": a negation and a word.
        out = [word_token("non"), *_word_tokens(raw[4:])]
    elif (
        ("/" in raw or "+" in raw)
        and not _CIDR_RE.match(raw)
        and not lower.startswith("arn:")
        and "*" not in raw
    ):
        # "prod/staging", "prod+staging" list two things.
        parts = [p for p in re.split(r"[/+]", raw) if p]
        out = []
        for n, part in enumerate(parts):
            if n:
                out.append(word_token("or"))
            out.extend(_word_tokens(part))
    elif is_kv(raw):
        out = [Token(raw, lower, lower, KV)]
    else:
        out = [word_token(raw)]
    if ends_clause:
        out.append(Token(stop, "", "", BOUNDARY))
    return out


def is_kv(raw: str) -> bool:
    if raw.lower().startswith("arn:"):
        return False
    for sep in ("=", ":"):
        if sep in raw:
            key, _, value = raw.partition(sep)
            if sep == ":" and (raw.count(":") > 1 or (key.isdigit() and value.isdigit())):
                return False
            return bool(key.strip("*")) and bool(value)
    return False


def kv_parts(raw: str) -> tuple[str, str]:
    sep = "=" if "=" in raw else ":"
    key, _, value = raw.partition(sep)
    return key.strip(), value.strip().strip("'\"")


def word_token(raw: str) -> Token:
    norm = raw.lower()
    return Token(raw, norm, _singular(norm))


def _singular(word: str) -> str:
    if len(word) < 3 or not word.endswith("s") or not word.replace("-", "").isalnum():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes", "uses")):
        return word[:-2]
    if word.endswith(("ss", "us", "is")):
        return word
    return word[:-1]
