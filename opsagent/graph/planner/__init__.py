"""The planners: a question in plain English becomes a Plan, or a Refusal that says why.

The rule planner (the default: offline, in milliseconds) reads a question in steps, one
module per step:

1. ``tokens``: lower-case words with accents stripped and contractions expanded; quoted
   strings, ``key=value`` pairs, ids and region codes stay whole; punctuation becomes a
   clause boundary. The vocabulary (``vocabulary``, with the resource catalogue's words)
   becomes a phrase index (``phrase_index``);
2. ``scan``: at each token the longest phrase of the vocabulary or of the registry's account
   words wins (``items`` says what each kind of item is); cues such as "named" or "tagged"
   take the next words as their value (``patterns``); ids, ARNs and region codes are read by
   their shape (``shapes``, ``operations`` for changes spelled as code); unknown words may
   be typos (``spelling``); a change verb in verb position ("stop the dev boxes") is a
   change request, the same word as a participle ("stopped instances") a state filter;
   Attribute questions have their own three modules: ``attribute_words`` (the words for
   attributes, values, units, rankings and groupings, built from the catalogue's
   declarations), ``attribute_patterns`` (what the scanner reads by pattern: "without an
   owner tag", "in the last 7 days", "over 100 GB", "top 5 largest", "m5.large") and
   ``attribute_filters`` (which attribute a concept names for each resource type, in its
   unit, or why it has none);
3. ``reading``: the items become a Reading (resource types from ``mentions`` and
   ``parents``, accounts with ``account_words``, regions, filters, intent, grouping, and
   what was not understood);
4. ``plan``: the Reading, merged with the previous turn's Plan for a follow-up, becomes a
   checked Plan with a summary (one query per type from ``queries``), or a Refusal
   (``refusals``).

It never guesses silently. A word it does not know, a noun that could be two resource types,
a state a resource type does not have: each ends in a Refusal that says what was understood,
what was not, and which questions would work.

The model planner (``model``, when a Bedrock model is configured) gives the same Plan through
structured output, checked against the registry and the catalogue, with this rule planner as
its fallback. Both are a ``Planner``, the function type the graph's planner slot takes.
"""

from opsagent.graph.planner.plan import Planner, plan_question, read_only_refusal, rule_planner
from opsagent.graph.planner.refusals import example_questions
from opsagent.graph.planner.tokens import Token, tokenize

__all__ = [
    "Planner",
    "Token",
    "example_questions",
    "plan_question",
    "read_only_refusal",
    "rule_planner",
    "tokenize",
]
