"""The words of attribute questions: "m5 instances", "unencrypted volumes", "functions on a
deprecated runtime", "volumes over 100 GB", "launched in the last 7 days", "instances
without an owner tag", "the 5 largest volumes", "which account has the most ...",
"instances by type", "total EBS storage".

What each type's attributes are called ("runtime", "instance type", "encrypted") is
declared with the type in the catalogue (``Attribute.words``) and derived here; this
module adds the values people name (engines, platforms, runtimes), the phrasings around
them (comparisons, units, times, superlatives) and the few synonyms the declarations lack.
An item of the scanner names an attribute by a *concept*: one of its words, its name, or one
of the stand-ins below, which each resource type settles for itself (attribute_filters.py).
"""

from __future__ import annotations

import re

from opsagent.graph.catalogue import CATALOGUE

# ----- concepts a type settles for itself -----

AGE = "@age"  # its age attribute: "oldest", "launched in the last 7 days"
SIZE = "@size"  # its (first) number attribute: "largest", "100 GB volumes", "at least 1 GB"
VERSION = "@version"  # its version attribute: "below 1.30", "on 1.29"
MODIFIED = "modified"  # "not modified in 90 days": only a type that says when it changed

# ----- attribute words of the catalogue -----


def _words_of(*kinds: str) -> tuple[str, ...]:
    """Every word the catalogue declares for attributes of these kinds, once each."""
    return tuple(
        dict.fromkeys(
            word
            for declared in CATALOGUE.values()
            for attribute in declared.attributes
            if attribute.kind in kinds
            for word in attribute.words
        )
    )


# Words of a time attribute are read by the time patterns ("launched in the last week"),
# never alone: "launched" and "created" in "instances launched in prod" say nothing.
# "age" stays a noun: "sorted by age".
_TIME_WORDS = frozenset(word for word in _words_of("time") if word != "age")


# Yes/no attributes: the word alone is the filter ("encrypted volumes" -> encrypted true).
FLAG_WORDS: tuple[str, ...] = _words_of("bool")
# The others name an attribute to compare, group, rank or sum by ("memory", "runtime").
NOUN_WORDS: tuple[str, ...] = tuple(
    word
    for word in _words_of("text", "number", "version", "time")
    if word not in _TIME_WORDS and word not in FLAG_WORDS
)
# Nouns of number attributes: what "the most memory" ranks by and "total storage" sums.
MEASURE_WORDS = frozenset(_words_of("number"))
# Nouns that mean a type's age, whatever its age attribute is called.
# Those said as a phrase of their own ("by launch date") are nouns of the index.
AGE_PHRASES = ("creation date", "creation time", "launch date", "launch time", "created date")
AGE_NOUNS = frozenset({"age", "date", "time", *AGE_PHRASES})
# Words after an attribute's word that say nothing more: "by encryption type".
NOUN_TAILS = frozenset({"type", "types", "kind", "kinds", "setting", "settings", "status"})
# Words of other attributes a concept may also be called by, tried in order when a type
# has none of the concept's own: "encrypted" buckets are those with a default encryption,
# a lifecycle word means the same for Lambda runtimes and Kubernetes versions.
RELATED_WORDS: dict[str, tuple[str, ...]] = {
    "encrypted": ("encryption",),
    "deprecated": ("outdated",),
    "outdated": ("deprecated",),
}

# Flags said other ways than the catalogue's words: phrase -> (concept, true or false).
FLAG_SYNONYMS: dict[str, tuple[str, bool]] = {
    "unencrypted": ("encrypted", False),
    "not encrypted": ("encrypted", False),
    "encryption disabled": ("encrypted", False),
    "with encryption": ("encrypted", True),
    "default encryption": ("encrypted", True),
    "encryption enabled": ("encrypted", True),
    "single-az": ("multi-az", False),
    "single az": ("multi-az", False),
    "multiaz": ("multi-az", True),
    "private": ("public", False),
    "not publicly accessible": ("public", False),
    "publicly available": ("public", True),
    "internet accessible": ("public", True),
    **{
        f"{adjective} {noun}": ("runtime_deprecated", True)
        for adjective in (
            "deprecated",
            "unsupported",
            "outdated",
            "end of life",
            "end-of-life",
            "eol",
            "old",
            "obsolete",
        )
        for noun in ("runtime", "lambda runtime", "runtime version")
    },
    **{
        f"{adjective} {noun}": ("version_outdated", True)
        for adjective in (
            "outdated",
            "unsupported",
            "deprecated",
            "end of life",
            "end-of-life",
            "eol",
            "old",
            "obsolete",
        )
        for noun in ("version", "kubernetes version", "k8s version", "eks version")
    },
    # "before their runtime goes out of support", "versions that reach end of life": a
    # lifecycle said with a verb of its own.
    **{
        f"{verb} {phrase}": ("outdated", True)
        for verb in ("goes", "go", "going", "gone", "reaches", "reach", "reaching", "hits", "hit")
        for phrase in (
            "out of support",
            "out of standard support",
            "end of life",
            "end-of-life",
            "end of support",
            "eol",
        )
    },
    "end of support": ("outdated", True),
    "eol": ("outdated", True),
    "unsupported": ("outdated", True),
    # "encrypted at rest" is the storage encryption the types report.
    "encrypted at rest": ("encrypted", True),
    "encryption at rest": ("encrypted", True),
    "unencrypted at rest": ("encrypted", False),
    "not encrypted at rest": ("encrypted", False),
    "out of standard support": ("outdated", True),
    "out of support": ("outdated", True),
    "past end of support": ("outdated", True),
    "past end of standard support": ("outdated", True),
    "in extended support": ("outdated", True),
    "on extended support": ("outdated", True),
    "deprecated": ("deprecated", True),
    "outdated": ("outdated", True),
    "end of life": ("outdated", True),
    "end-of-life": ("outdated", True),
    "block public access": ("public access block", True),
    "block public access enabled": ("public access block", True),
    "block public access on": ("public access block", True),
    "block public access disabled": ("public access block", False),
    "block public access off": ("public access block", False),
    "public access block disabled": ("public access block", False),
    "public access blocked": ("public access block", True),
    "public access block enabled": ("public access block", True),
    "blocked public access": ("public access block", True),
}

# ----- values people name -----

# phrase -> (attribute or concept, op, value): "windows instances", "postgres databases".
VALUE_WORDS: dict[str, tuple[str, str, str]] = {
    "windows": ("platform", "eq", "windows"),
    "windows server": ("platform", "eq", "windows"),
    "linux": ("platform", "eq", "linux"),
    "python": ("runtime", "prefix", "python"),
    "nodejs": ("runtime", "prefix", "nodejs"),
    "node.js": ("runtime", "prefix", "nodejs"),
    "java": ("runtime", "prefix", "java"),
    "ruby": ("runtime", "prefix", "ruby"),
    "dotnet": ("runtime", "prefix", "dotnet"),
    ".net": ("runtime", "prefix", "dotnet"),
    "encrypted with kms": ("encryption", "eq", "aws:kms"),
    "encrypted using kms": ("encryption", "eq", "aws:kms"),
    "encrypted with a kms key": ("encryption", "eq", "aws:kms"),
    "encrypted with aws kms": ("encryption", "eq", "aws:kms"),
    "kms encrypted": ("encryption", "eq", "aws:kms"),
    "kms-encrypted": ("encryption", "eq", "aws:kms"),
    "sse-kms": ("encryption", "eq", "aws:kms"),
    "sse kms": ("encryption", "eq", "aws:kms"),
    "with kms encryption": ("encryption", "eq", "aws:kms"),
    "encrypted with sse-s3": ("encryption", "eq", "AES256"),
    "sse-s3": ("encryption", "eq", "AES256"),
    "aes256": ("encryption", "eq", "AES256"),
    "aes-256": ("encryption", "eq", "AES256"),
    "without default encryption": ("encryption", "eq", "none"),
    "with no default encryption": ("encryption", "eq", "none"),
    "without encryption": ("encrypted", "eq", "false"),
    **{kind: ("volume_type", "eq", kind) for kind in ("gp2", "gp3", "io1", "io2", "st1", "sc1")},
    "with no encryption": ("encrypted", "eq", "false"),
}
# Database engines as AWS names them. They are also words of RDS instances themselves
# (the catalogue's): "postgres databases" names the type and filters on the engine.
ENGINE_WORDS: dict[str, tuple[str, str]] = {
    "postgres": ("eq", "postgres"),
    "postgresql": ("eq", "postgres"),
    "mysql": ("eq", "mysql"),
    "mariadb": ("eq", "mariadb"),
    "aurora": ("prefix", "aurora"),
    "aurora postgres": ("eq", "aurora-postgresql"),
    "aurora postgresql": ("eq", "aurora-postgresql"),
    "aurora mysql": ("eq", "aurora-mysql"),
    "oracle": ("prefix", "oracle"),
    "sql server": ("prefix", "sqlserver"),
    "sqlserver": ("prefix", "sqlserver"),
    "mssql": ("prefix", "sqlserver"),
}
# Lambda runtimes said with a version: "python 3.8" -> python3.8, "node 16" -> nodejs16.x.
RUNTIME_SPELLINGS: dict[str, str] = {
    "python": "python{v}",
    "py": "python{v}",
    "node": "nodejs{v}.x",
    "nodejs": "nodejs{v}.x",
    "node.js": "nodejs{v}.x",
    "java": "java{v}",
    "ruby": "ruby{v}",
    "dotnet": "dotnet{v}",
    ".net": "dotnet{v}",
}
RUNTIME_RE = re.compile(
    r"^(python\d+\.\d+|nodejs\d+\.x|java\d+(\.al2)?|ruby\d+\.\d+|dotnet\d+|dotnetcore\d\.\d"
    r"|go1\.x|provided(\.al2(023)?)?)$"
)
# Runtimes written as one word without the ".x" or dot: "node16", "python38".
RUNTIME_GLUED_RE = re.compile(r"^(python|py|node|nodejs|java|ruby|dotnet)(\d+(?:\.\d+)?)$")
# EC2 instance types ("m5.large", "t3.2xlarge"), families ("m5", "c6g", "t4g", "m7i-flex")
# and RDS instance classes ("db.t3.medium").
INSTANCE_TYPE_RE = re.compile(
    r"^[a-z]{1,4}\d[a-z0-9-]*\.(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$"
)
INSTANCE_FAMILY_RE = re.compile(
    r"^(a|c|d|f|g|h|i|im|inf|is|m|p|r|t|trn|u|vt|x|z|dl|hpc|mac)\d[a-z]{0,4}(-flex)?$"
)
DB_CLASS_RE = re.compile(r"^db\.[a-z]+\d[a-z0-9-]*\.[a-z0-9]+$")
# A version as people write it: "1.29", "v1.30", "8.0", "14".
VERSION_RE = re.compile(r"^v?(\d+(\.\d+){1,2})$")
ENGINE_VERSION_RE = re.compile(r"^v?(\d+(\.\d+)*)$")  # "postgres 14", "mysql 8.0.35"
NUMBER_RE = re.compile(r"^\d+(\.\d+)?$")

# Words that lead a version after a type: "EKS clusters on 1.29", "running version 1.30".
VERSION_LEADS = frozenset({"version", "kubernetes", "k8s", "eks", "v"})

# ----- numbers and their units -----

NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "sixty": 60,
    "ninety": 90,
    "hundred": 100,
}
# Size units -> the canonical unit items carry ("1 TB" is 1024 GiB: GB read as GiB).
SIZE_UNITS: dict[str, str] = {
    "gb": "gb",
    "gib": "gb",
    "gig": "gb",
    "gigs": "gb",
    "gigabyte": "gb",
    "gigabytes": "gb",
    "g": "gb",
    "tb": "tb",
    "tib": "tb",
    "terabyte": "tb",
    "terabytes": "tb",
    "mb": "mb",
    "mib": "mb",
    "megabyte": "mb",
    "megabytes": "mb",
}
GLUED_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)(gb|gib|tb|tib|mb|mib)$")
# Time units in days ("24 hours" rounds up to 1 day).
TIME_UNITS: dict[str, float] = {
    "hour": 1 / 24,
    "hr": 1 / 24,
    "day": 1,
    "week": 7,
    "month": 30,
    "year": 365,
}

# Comparisons before a number: phrase -> op.
COMPARATORS: dict[str, str] = {
    "more than": "gt",
    "over": "gt",
    "greater than": "gt",
    "bigger than": "gt",
    "larger than": "gt",
    "higher than": "gt",
    "above": "gt",
    "exceeding": "gt",
    "in excess of": "gt",
    "newer than": "gt",
    "later than": "gt",
    "at least": "gte",
    "no less than": "gte",
    "not less than": "gte",
    "a minimum of": "gte",
    "minimum of": "gte",
    "min": "gte",
    "less than": "lt",
    "under": "lt",
    "below": "lt",
    "smaller than": "lt",
    "fewer than": "lt",
    "lower than": "lt",
    "earlier than": "lt",
    "older than": "lt",
    "prior to": "lt",
    "before": "lt",
    "at most": "lte",
    "no more than": "lte",
    "not more than": "lte",
    "up to": "lte",
    "a maximum of": "lte",
    "maximum of": "lte",
    "max": "lte",
    "exactly": "eq",
    "equal to": "eq",
}
# After a number: "1.30 or newer", "100 GB or more".
TRAILING_COMPARATORS: dict[str, str] = {
    "or newer": "gte",
    "or later": "gte",
    "or higher": "gte",
    "or above": "gte",
    "or more": "gte",
    "or greater": "gte",
    "or bigger": "gte",
    "or larger": "gte",
    "and up": "gte",
    "and above": "gte",
    "+": "gte",
    "or older": "lte",
    "or earlier": "lte",
    "or lower": "lte",
    "or below": "lte",
    "or less": "lte",
    "or smaller": "lte",
    "and below": "lte",
    "and under": "lte",
}

# ----- times -----

# Verbs that name the time an age filter is about ("launched in the last week").
AGE_VERBS: dict[str, str] = {
    "launched": AGE,
    "created": AGE,
    "started": AGE,
    "deployed": AGE,
    "provisioned": AGE,
    "spun up": AGE,
    "made": AGE,
    "built": AGE,
    "set up": AGE,
    "added": AGE,
    "modified": MODIFIED,
    "last modified": MODIFIED,
    "last updated": MODIFIED,
    "last changed": MODIFIED,
    "last deployed": MODIFIED,
    "updated": MODIFIED,
    "changed": MODIFIED,
    "touched": MODIFIED,
    "edited": MODIFIED,
}
# "in the last 7 days": what may stand before "last/past N units".
WITHIN_LEADS: tuple[str, ...] = (
    "in the",
    "within the",
    "over the",
    "during the",
    "for the",
    "in",
    "within",
    "the",
    "",
)
RECENT_WORDS = frozenset({"last", "past", "previous", "recent"})
MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DAY_OF_MONTH_RE = re.compile(r"^(\d{1,2})(st|nd|rd|th)?$")

# ----- rankings -----

# Superlatives: phrase -> (concept, descending).
SUPERLATIVES: dict[str, tuple[str, bool]] = {
    "largest": (SIZE, True),
    "biggest": (SIZE, True),
    "smallest": (SIZE, False),
    "oldest": (AGE, False),
    "newest": (AGE, True),
    "latest": (AGE, True),
    "youngest": (AGE, True),
    "most recent": (AGE, True),
    "most recently created": (AGE, True),
    "most recently launched": (AGE, True),
    "most recently modified": (AGE, True),
    "most recently updated": (AGE, True),
    "least recently modified": (AGE, False),
    "least recently updated": (AGE, False),
    "most recently deployed": (AGE, True),
    "earliest": (AGE, False),
}
# "largest first", "newest first", "in descending order": a direction with no count.
DIRECTIONS: dict[str, bool] = {
    "descending": True,
    "desc": True,
    "in descending order": True,
    "highest first": True,
    "high to low": True,
    "largest to smallest": True,
    "biggest to smallest": True,
    "newest to oldest": True,
    "ascending": False,
    "asc": False,
    "in ascending order": False,
    "lowest first": False,
    "low to high": False,
    "smallest to largest": False,
    "oldest to newest": False,
    **{f"{word} first": descending for word, (_, descending) in SUPERLATIVES.items()},
}
TOP_WORDS = frozenset({"top", "first"})
BOTTOM_WORDS = frozenset({"bottom"})
# "Which account has the most ...": the group with the most or fewest rows.
RANK_WORDS: dict[str, str] = {
    "most": "most",
    "the most": "most",
    "most common": "most",
    "the most common": "most",
    "most popular": "most",
    "most used": "most",
    "most widely used": "most",
    "fewest": "fewest",
    "the fewest": "fewest",
    "least": "fewest",
    "the least": "fewest",
    "least common": "fewest",
    "the least common": "fewest",
    "least used": "fewest",
    "rarest": "fewest",
}
# "how much EBS storage", "total memory": the intent words that ask for a sum.
TOTAL_CUES = frozenset({"total", "how much", "sum", "sum of", "amount of", "total amount of"})
# Words between a total cue and what it sums: "total allocated RDS storage".
TOTAL_FILLERS = frozenset({"the", "our", "all", "of", "allocated", "provisioned", "used"})

# ----- tags -----

# "instances without an owner tag", "untagged volumes", "tagged env but not team".
UNTAGGED_WORDS: tuple[str, ...] = (
    "untagged",
    "not tagged",
    "with no tags",
    "without tags",
    "without any tags",
    "with no tags at all",
    "without any tags at all",
    "that have no tags",
    "that has no tags",
    "having no tags",
    "with zero tags",
    "missing all tags",
    "no tags",
    "no tags at all",
)
# "that nobody put an owner tag on", "no one has added a team tag to": tagging nobody did.
_NOBODY = ("nobody", "no one", "noone")
_NOBODY_LEADS: tuple[str, ...] = tuple(
    f"{relative}{subject}{perfect} {verb}".strip()
    for relative in ("", "that ", "which ")
    for subject in _NOBODY
    for perfect in ("", " has", " ever", " has ever", " bothered to", " has bothered to")
    for verb in ("put", "added", "add", "set", "gave", "given", "attached", "applied", "tagged")
)
# "that do not have", "which don't carry": a present tag denied.
_DENIED_LEADS: tuple[str, ...] = tuple(
    f"{relative}{aux} not {verb}".strip()
    for relative in ("", "that ", "which ")
    for aux in ("do", "does", "did")
    for verb in ("have", "carry", "contain", "include")
)
MISSING_TAG_LEADS: tuple[str, ...] = (
    *_NOBODY_LEADS,
    *_DENIED_LEADS,
    "neither",
    "with neither",
    "having neither",
    "that have neither",
    "that has neither",
    "nor",
    "without",
    "with no",
    "that have no",
    "that has no",
    "having no",
    "has no",
    "have no",
    "no",
    "missing",
    "that are missing",
    "that is missing",
    "lacking",
    "that lack",
    "that lacks",
    "not tagged with",
    "but not",
    "and not",
    "but no",
    "but without",
    "and no",
    "and without",
)
PRESENT_TAG_LEADS: tuple[str, ...] = (
    *(
        f"{relative}{aux} {verb}".strip()
        for relative in ("", "that ", "which ")
        for aux in ("do", "does", "actually", "already", "do actually", "do already")
        for verb in ("have", "has", "carry", "carries")
    ),
    # "buckets that carry an owner tag": "carry" says "have".
    *(f"{relative}{verb}" for relative in ("that ", "which ") for verb in ("carry", "carries")),
    "with",
    "that have",
    "that has",
    "having",
    "which have",
    "tagged with",
    "tagged",
    "carrying",
)
TAG_NOUNS = frozenset({"tag", "tags", "label", "labels", "tag key", "key"})
ARTICLES = frozenset({"a", "an", "the", "any"})
