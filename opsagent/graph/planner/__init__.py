"""The rule planner: a question in plain English becomes a Plan, offline, in milliseconds.

How it reads a question (one module per step):

1. ``tokens``: lower-case words with accents stripped and contractions expanded; quoted
   strings, ``key=value`` pairs, ids and region codes stay whole; punctuation becomes a
   clause boundary. The vocabulary (``opsagent/graph/vocabulary.py``) becomes a phrase index;
2. ``scan``: at each token the longest phrase of the vocabulary or of the registry's account
   words wins; cues such as "named" or "tagged" take the next words as their value; a change
   verb in verb position ("stop the dev boxes") is a change request, the same word as a
   participle ("stopped instances") is a state filter;
3. ``reading``: the items become a Reading (resource types, accounts, regions, filters,
   intent, grouping, and what was not understood);
4. ``plan``: the Reading, merged with the previous turn's Plan for a follow-up, becomes a
   checked Plan with a summary, or a Refusal.

It never guesses silently. A word it does not know, a noun that could be two resource types,
a state a resource type does not have: each ends in a Refusal that says what was understood,
what was not, and which questions would work.
"""

from opsagent.graph.planner.plan import (
    example_questions,
    plan_question,
    read_only_refusal,
    rule_planner,
)
from opsagent.graph.planner.tokens import Token, tokenize

__all__ = ["Token", "example_questions", "plan_question", "read_only_refusal", "rule_planner",
           "tokenize"]
