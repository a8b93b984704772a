"""The words of the operations domain, in one place, for the rule planner.

Every table maps phrases to meanings (``items.Kind``). A phrase is lower-case words
separated by single spaces, nouns in the singular: the planner also tries each word's
singular ("instances" finds "instance"), accents are stripped ("São Paulo" finds "sao
paulo") and "N. Virginia" becomes "n virginia" before lookup. Account names are not here:
they come from the registry (Registry.reference_words()), so aliases in the registry file
work unchanged. Nor are the nouns, states and conditions of each resource type: they are
declared with the type in the resource catalogue (opsagent/graph/catalogue/), and what the
planner needs of them is derived below.

To teach the planner a new word, add it to the right table (or, for a resource type, to its
declaration in the catalogue); nothing else changes.
"""

from __future__ import annotations

import re

from opsagent.graph.catalogue import CATALOGUE
from opsagent.registry.patterns import ACCOUNT_ID_RE as REGISTRY_ACCOUNT_ID_RE
from opsagent.registry.patterns import REGION_PATTERN, REGION_RE

# ----- resource types -----

# The nouns of each type (and which of them are service names that decide the next noun's
# type, "RDS servers") are its ResourceType.words and .qualifiers; its parent type, whether
# its id is its name, its states and what state concepts mean for it are declared there too.

# Ids whose shape names their resource type ("i-0abc1234", "vol-0abc1234", an IP address).
ID_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), declared.type_id)
    for declared in CATALOGUE.values() for pattern in declared.id_patterns
)
# (service, resource kind in the ARN) -> resource type.
ARN_TYPES: dict[tuple[str, str], str] = {
    (declared.type_id.split(":")[0], declared.arn_resource): declared.type_id
    for declared in CATALOGUE.values() if declared.arn_resource is not None
}

# Nouns that name more than one resource type; the rest of the question (or the previous
# turn) has to decide, else the planner asks.
AMBIGUOUS_WORDS: dict[str, tuple[str, ...]] = {
    "cluster": ("ecs:cluster", "eks:cluster"),
    "service": ("ecs:service",),
    "node": ("eks:nodegroup", "ec2:instance"),
    "worker node": ("eks:nodegroup", "ec2:instance"),
}
# Words anywhere in a question that say which family an ambiguous noun belongs to.
FAMILY_WORDS: dict[str, str] = {
    "ecs": "ecs", "container": "ecs", "docker": "ecs", "fargate": "ecs", "task": "ecs",
    "eks": "eks", "kubernetes": "eks", "k8s": "eks", "kube": "eks", "pod": "eks",
    "ec2": "ec2",
}

# Words that, like PREPOSITIONS and ATTACHED_WORDS, place one resource in others: "node
# groups across our clusters". (They are fillers elsewhere: "buckets across all accounts".)
SCOPE_WORDS: frozenset[str] = frozenset({"across", "throughout", "among", "amongst"})
# Right before a parent noun, these point at one parent, not all: "in this cluster".
ONE_PARENT_WORDS: frozenset[str] = frozenset({
    "this", "that", "a", "an", "one", "particular", "specific", "certain", "single", "given",
    "same",
})
# Right before a parent noun, these take each parent on its own: "how many services in
# each cluster" asks for a count per cluster ("for every cluster" too).
EACH_PARENT_WORDS: frozenset[str] = frozenset({"each"})
# "how many node groups do the EKS clusters have?": the parent as the one having children.
DO_WORDS: frozenset[str] = frozenset({"do", "does", "did"})
HAVE_WORDS: frozenset[str] = frozenset({"have", "has", "had", "run", "runs"})
# Before "by", these make it say who, not how to group: "node groups used by the clusters".
BY_AGENT_WORDS: frozenset[str] = frozenset({
    "used", "owned", "run", "created", "launched", "hosted", "managed", "deployed",
    "provisioned", "operated", "attached", "backed", "served",
})

# Resource types the agent cannot read; naming them gets a clear refusal, not a guess.
UNSUPPORTED_WORDS: tuple[str, ...] = (
    "load balancer", "elb", "alb", "nlb", "elastic load balancer", "target group",
    "auto scaling group", "autoscaling group", "asg", "launch template", "launch configuration",
    "ami", "image", "machine image", "snapshot", "ebs snapshot", "db snapshot", "rds snapshot",
    "key pair", "ssh key", "subnet", "route table", "internet gateway", "nat gateway",
    "transit gateway", "network interface", "eni", "nacl", "network acl", "vpc endpoint",
    "endpoint", "peering connection", "vpc peering", "sqs", "queue", "sqs queue", "sns",
    "topic", "sns topic", "cloudfront", "distribution", "cloudfront distribution", "route53",
    "route 53", "hosted zone", "dns record", "dns", "api gateway", "rest api", "http api",
    "kms", "kms key", "encryption key", "secret", "secrets manager", "parameter",
    "ssm parameter", "log group", "cloudwatch", "alarm", "cloudwatch alarm", "metric",
    "dashboard", "certificate", "acm certificate", "cert", "elasticache", "redis",
    "memcached", "cache cluster", "redshift", "redshift cluster", "opensearch",
    "elasticsearch", "kinesis", "stream", "kinesis stream", "firehose", "step function",
    "state machine", "sagemaker", "notebook", "glue", "athena", "emr", "batch", "ecr",
    "ecr repository", "repository", "repo", "container image", "container", "task",
    "ecs task", "task definition", "pod", "deployment", "namespace", "iam user", "user",
    "iam policy", "policy", "iam group", "access key", "iam", "efs", "file system", "fsx",
    "backup", "aurora cluster", "db cluster", "rds cluster", "database cluster", "cost",
    "bill", "billing", "spend", "spending", "invoice", "budget", "trail", "cloudtrail",
    "guardduty", "finding", "config rule", "workspace", "lightsail", "beanstalk",
    "elastic beanstalk", "app runner", "amplify", "cognito", "user pool", "waf", "web acl",
    "eventbridge", "event rule", "rule", "object", "file", "s3 object", "reserved instance",
    "savings plan", "spot request", "spot instance", "organizational unit", "ou", "scp",
)

# Words for "some resources" that name no type: the planner asks which type.
GENERIC_WORDS: tuple[str, ...] = (
    "resource", "aws resource", "thing", "everything", "anything", "stuff", "asset",
    "infrastructure", "infra", "something",
)

# ----- states -----

# What people say about state, mapped to a concept (what a concept means for each type is
# its ResourceType.state_concepts in the catalogue).
STATE_WORDS: dict[str, tuple[str, ...]] = {
    "running": (
        "running", "up", "online", "alive", "started", "active", "turned on", "powered on",
        "switched on", "up and running", "in service",
    ),
    "stopped": (
        "stopped", "off", "offline", "halted", "down", "shut down", "shutdown", "turned off",
        "powered off", "powered down", "switched off", "shut off", "spun down",
    ),
    "pending": ("pending", "launching", "booting", "spinning up", "coming up"),
    "starting": ("starting", "starting up"),
    "stopping": ("stopping", "shutting off", "powering off", "powering down"),
    "terminated": ("terminated", "killed"),
    "deleted": ("deleted", "removed", "destroyed"),
    "terminating": ("terminating", "shutting down", "being terminated"),
    "deleting": ("deleting", "being deleted"),
    "creating": ("creating", "being created", "provisioning", "being provisioned"),
    "updating": ("updating", "being updated", "modifying", "being modified"),
    "failed": ("failed", "failing", "errored", "in error", "error", "broken"),
    "inactive": ("inactive", "deactivated"),
    "draining": ("draining",),
    "degraded": ("degraded",),
    "in-use": ("in use", "attached", "being used", "associated"),
    "available": ("available",),
    "rebooting": ("rebooting", "restarting"),
    "backing-up": ("backing up", "being backed up"),
    "maintenance": ("maintenance", "under maintenance", "in maintenance"),
    "storage-full": ("storage full", "out of storage", "full storage"),
    "upgrading": ("upgrading", "being upgraded"),
    "complete": ("complete", "completed", "successful", "succeeded"),
    "in-progress": ("in progress", "in flight"),
    "rolled-back": ("rolled back", "rollback"),
    "archived": ("archived",),
}

# "available" about a type that has no such state just means "exists" ("which Lambda
# functions are available in staging?"), so it filters nothing rather than refusing.
EXISTENCE_STATES: frozenset[str] = frozenset({"available"})

# Participles of change verbs: "I want the dev boxes stopped" is a request, not a filter.
CHANGE_PARTICIPLES: frozenset[str] = frozenset({
    "stopped", "terminated", "deleted", "removed", "destroyed", "killed", "started",
    "shut down", "turned off", "powered off", "switched off", "shut off", "turned on",
    "powered on", "switched on", "spun down", "restarted", "rebooted",
})

# ----- conditions -----

CONDITION_WORDS: dict[str, tuple[str, ...]] = {
    "unused": (
        "unattached", "not attached", "detached", "orphaned", "orphan", "dangling", "unused",
        "not used", "not in use", "not being used", "idle", "unassociated", "not associated",
        "disassociated", "spare", "unallocated", "stranded", "leftover",
    ),
    "open-to-world": (
        "open to the world", "open to world", "open to the internet", "open to internet",
        "open to everyone", "open to anyone", "open to all", "open to the public",
        "open to public", "open to 0.0.0.0/0", "open to ::/0", "open to any ip",
        "open to anywhere", "open to all ips", "allowing 0.0.0.0/0", "allow 0.0.0.0/0",
        "that allow 0.0.0.0/0", "that allows 0.0.0.0/0", "allows 0.0.0.0/0",
        "0.0.0.0/0", "::/0", "world open", "world-open", "open to the whole internet",
        "publicly open", "publicly accessible", "publicly exposed", "exposed to the internet",
        "exposed to the world", "internet exposed", "internet-exposed", "internet facing",
        "internet-facing", "wide open", "open ingress", "world accessible",
        "world-accessible", "with ingress from anywhere", "allowing traffic from anywhere",
        "open to the internet on any port", "exposed publicly", "exposed", "open",
    ),
}
# "allowing inbound traffic from 0.0.0.0/0", "that accept connections from anywhere": the
# ways to say a rule lets the whole internet in, built from their parts.
_OPEN_LEADS = ("allow", "allows", "allowing", "permit", "permits", "permitting", "accept",
               "accepts", "accepting", "with", "that allow", "that allows", "open", "")
_OPEN_WHAT = ("", "traffic", "inbound", "inbound traffic", "ingress", "ingress traffic",
              "all traffic", "access", "connections", "inbound access", "ssh", "rules")
_OPEN_FROM = ("0.0.0.0/0", "::/0", "anywhere", "the internet", "the world", "everyone",
              "any ip", "all ips", "any address", "any source", "the whole internet")
CONDITION_WORDS["open-to-world"] += tuple(
    " ".join(part for part in (lead, what, "from", source) if part)
    for lead in _OPEN_LEADS for what in _OPEN_WHAT for source in _OPEN_FROM
    if lead or what
)


def _conditions_by_concept() -> dict[str, dict[str, str]]:
    """Each condition concept -> {resource type: its condition}, from the catalogue."""
    found: dict[str, dict[str, str]] = {}
    for declared in CATALOGUE.values():
        for condition in declared.conditions:
            found.setdefault(condition.concept, {})[declared.type_id] = condition.name
    return found


CONDITIONS_BY_CONCEPT = _conditions_by_concept()

# ----- regions -----

# Region code -> the names people use: the console name ("US West (Oregon)" becomes
# "us west oregon") and the place alone.
REGIONS: dict[str, tuple[str, ...]] = {
    "us-east-1": ("us east n virginia", "n virginia", "northern virginia", "north virginia",
                  "virginia", "us east virginia"),
    "us-east-2": ("us east ohio", "ohio"),
    "us-west-1": ("us west n california", "n california", "northern california",
                  "north california", "california", "us west california"),
    "us-west-2": ("us west oregon", "oregon"),
    "af-south-1": ("africa cape town", "cape town"),
    "ap-east-1": ("asia pacific hong kong", "hong kong"),
    "ap-east-2": ("asia pacific taipei", "taipei"),
    "ap-south-1": ("asia pacific mumbai", "mumbai"),
    "ap-south-2": ("asia pacific hyderabad", "hyderabad"),
    "ap-southeast-1": ("asia pacific singapore", "singapore"),
    "ap-southeast-2": ("asia pacific sydney", "sydney"),
    "ap-southeast-3": ("asia pacific jakarta", "jakarta"),
    "ap-southeast-4": ("asia pacific melbourne", "melbourne"),
    "ap-southeast-5": ("asia pacific malaysia", "malaysia", "kuala lumpur"),
    "ap-southeast-7": ("asia pacific thailand", "thailand", "bangkok"),
    "ap-northeast-1": ("asia pacific tokyo", "tokyo"),
    "ap-northeast-2": ("asia pacific seoul", "seoul"),
    "ap-northeast-3": ("asia pacific osaka", "osaka"),
    "ca-central-1": ("canada central", "canada", "montreal"),
    "ca-west-1": ("canada west calgary", "calgary"),
    "eu-central-1": ("europe frankfurt", "eu frankfurt", "frankfurt"),
    "eu-central-2": ("europe zurich", "eu zurich", "zurich"),
    "eu-west-1": ("europe ireland", "eu ireland", "ireland", "dublin"),
    "eu-west-2": ("europe london", "eu london", "london"),
    "eu-west-3": ("europe paris", "eu paris", "paris"),
    "eu-south-1": ("europe milan", "eu milan", "milan"),
    "eu-south-2": ("europe spain", "eu spain", "spain"),
    "eu-north-1": ("europe stockholm", "eu stockholm", "stockholm"),
    "il-central-1": ("israel tel aviv", "tel aviv", "israel"),
    "me-south-1": ("middle east bahrain", "bahrain"),
    "me-central-1": ("middle east uae", "uae"),
    "mx-central-1": ("mexico central", "mexico"),
    "sa-east-1": ("south america sao paulo", "sao paulo", "brazil"),
    "us-gov-west-1": ("aws govcloud us west", "govcloud us west", "govcloud west"),
    "us-gov-east-1": ("aws govcloud us east", "govcloud us east", "govcloud east"),
}
# The one region pattern the planner uses (registry.patterns). Shaped like a region code;
# a code of this shape not in REGIONS is refused as unknown.
REGION_CODE_RE = REGION_RE

# ----- intents -----

INTENT_WORDS: dict[str, tuple[str, ...]] = {
    "list": (
        "list", "show", "display", "enumerate", "find", "get", "give", "fetch", "pull",
        "pull up", "print", "return", "output", "see", "view", "what", "which", "search",
        "search for", "look up", "lookup", "look for", "check", "inventory", "report",
        "are there", "is there", "do we have", "do i have", "have we got", "identify",
        "locate", "tell me", "overview", "rundown", "complete list", "full list",
        "entire list", "whole list", "full inventory", "listing", "lists", "shows",
        "show all", "catalog", "where are", "where is", "what are", "what is",
        "let me see", "let me know", "need to see", "want to see", "would like to see",
        "any", "is anything", "are any", "generate", "produce", "compile", "prepare", "verify",
        "audit", "review", "scan", "confirm", "make a list", "make me a list", "pull a list",
    ),
    "count": (
        "how many", "number of", "count", "total", "tally", "total number", "quantity",
        "how much", "counts", "total count", "headcount", "sum", "amount of", "numbers",
        "number",
    ),
    "describe": (
        "describe", "details", "detail", "detailed", "in detail", "tell me about",
        "tell me more about", "info", "information", "more about", "inspect", "deep dive",
        "drill into", "drill down", "dig into", "explain", "configuration", "config",
        "status of", "state of", "description", "full details", "what is the status of",
        "what is the state of", "details about", "details on", "info on", "info about",
        "information about", "information on", "specs", "properties", "attributes",
        "more details", "more info", "more information", "more detail", "full info",
    ),
}

# ----- accounts, regions, grouping -----
# Words that sit where an account name goes but never name one: when one of these follows
# "in" ("instances launched in January", "buckets in 2023"), the question asks for a filter
# the planner does not have, not for an unknown account.
NOT_ACCOUNT_WORDS: frozenset[str] = frozenset({
    # time
    "today", "yesterday", "tomorrow", "tonight", "now", "ago", "recent", "recently", "lately",
    "day", "days", "week", "weeks", "month", "months", "year", "years", "hour", "hours",
    "minute", "minutes", "weekend", "weekday", "quarter", "past", "last", "next", "since",
    "before", "after", "earlier", "later", "january", "february", "march", "april", "june",
    "july", "august", "september", "october", "november", "december", "jan", "feb", "mar",
    "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday", "sunday",
    # size, age, order, amount
    "new", "newer", "newest", "old", "older", "oldest", "latest", "first", "large", "larger",
    "largest", "big", "bigger", "biggest", "huge", "small", "smaller", "smallest", "tiny",
    "expensive", "cheap", "cheaper", "cheapest", "more", "less", "most", "least", "fewer",
    "than", "top", "bottom", "high", "higher", "highest", "low", "lower", "lowest", "no",
    "none", "zero",
    # properties the planner cannot filter on
    "encrypted", "unencrypted", "versioned", "unversioned", "private", "untagged", "default",
    "python", "java", "nodejs", "node.js", "ruby", "golang", "dotnet", ".net", "windows",
    "linux", "ubuntu", "graviton", "arm", "arm64", "x86", "amd64", "fargate", "gpu",
})
# An availability zone ("us-east-1a"): region-shaped, but the planner asks by region only.
AZ_RE = re.compile(rf"\A{REGION_PATTERN}[a-z]\Z")
# An account id: twelve digits (registry.patterns; anchored, so match means the whole word).
ACCOUNT_ID_RE = REGISTRY_ACCOUNT_ID_RE
# The id of an AWS resource the agent does not read ("subnet-0abc1234", "ami-12345678").
AWS_ID_RE = re.compile(r"^[a-z]{2,12}-[0-9a-f]{8}([0-9a-f]{9})?$")


ACCOUNT_NOUNS: tuple[str, ...] = (
    "account", "acct", "aws account", "environment", "env", "account id", "account number",
    "account no", "aws account id", "aws account number", "member account",
)
REGION_NOUNS: tuple[str, ...] = ("region", "aws region")
# Quantifiers before "accounts"/"regions": "all", "each", ... ("each" also groups).
QUANTIFIERS: tuple[str, ...] = ("all", "every", "each", "across", "any")
# Words allowed between a quantifier and its noun: "in all of our AWS accounts".
QUANTIFIER_FILLERS: frozenset[str] = frozenset({
    "of", "our", "the", "my", "your", "these", "those", "single", "aws", "workload",
    "member", "registered", "known", "configured", "managed", "linked", "one", "two",
    "three", "four", "five", "2", "3", "4", "5", "6", "7", "8", "9", "other", "different",
    "separate", "individual", "enabled",
    "active", "available", "supported", "relevant", "company", "org", "organization",
    "organisation",
})
# Phrases that alone mean every workload account.
ALL_ACCOUNT_WORDS: tuple[str, ...] = (
    "everywhere", "org wide", "org-wide", "organization wide", "organization-wide",
    "company wide", "company-wide", "across the board", "across the org",
    "across the organization", "across the company", "across our org",
    "across our organization", "across the fleet", "in the org", "in our org",
    "in the organization", "in our organization", "whole org", "whole organization",
    "entire org", "entire organization", "across org", "fleet wide", "fleet-wide",
    "workload account", "anywhere",
)
ALL_ACCOUNT_WORDS += tuple(
    p.replace("organization", "organisation") for p in ALL_ACCOUNT_WORDS if "organization" in p
)
# In a follow-up: the workload accounts the previous question did not cover.
OTHER_ACCOUNT_WORDS: tuple[str, ...] = (
    "other account", "the other account", "the rest", "rest of the account",
    "the rest of the account", "remaining account", "the remaining account",
    "other environment", "the other environment", "the others", "everywhere else",
    "all other account", "every other account", "the rest of them",
)
ALL_REGION_WORDS: tuple[str, ...] = ("all over the world", "globally", "worldwide")
# "per account", "by region": what comes after GROUP_BY_WORDS.
GROUP_BY_WORDS: tuple[str, ...] = (
    "by", "grouped by", "group by", "broken down by", "break down by", "breakdown by",
    "broken out by", "split by", "split out by", "organized by", "per", "bucketed by",
    "aggregated by", "summarized by", "categorized by", "separated by", "segmented by",
    "itemized by", "a breakdown by", "with a breakdown by", "break it down by",
    "broken up by",
)
SORT_BY_WORDS: tuple[str, ...] = (
    "sorted by", "sort by", "ordered by", "order by", "ranked by", "rank by",
)
GROUP_TARGETS: dict[str, str] = {
    "account": "account", "acct": "account", "aws account": "account",
    "environment": "account", "env": "account", "region": "region", "aws region": "region",
}
# One-word grouping phrases.
GROUP_WORDS: dict[str, tuple[str, ...]] = {
    "account": ("per-account", "account by account", "account-by-account", "accountwise",
                "account-wise", "per account basis", "by-account"),
    "region": ("per-region", "region by region", "region-by-region", "regionally",
               "region-wise", "regionwise", "per region basis", "by-region"),
}
COMPARE_WORDS: tuple[str, ...] = (
    "vs", "versus", "compared to", "compared with", "compare", "comparing", "against",
    "side by side", "compare between",
)
UNGROUP_WORDS: tuple[str, ...] = (
    "in total", "overall", "altogether", "all together", "combined", "total across",
    "grand total", "no grouping", "without grouping", "ungrouped", "as one number",
    "single number", "one number",
)

# ----- follow-ups, exclusions, negation -----

EXCLUDE_WORDS: tuple[str, ...] = (
    "except", "except for", "excluding", "exclude", "but", "but not", "other than",
    "apart from", "aside from", "minus", "without", "not including", "save for", "except in",
    "but not in", "excepting", "leaving out", "leave out", "skip", "skipping", "ignoring",
    "ignore", "outside of", "outside", "omitting", "omit", "besides",
)
NEGATE_WORDS: tuple[str, ...] = ("not", "non", "never")
# Add to the previous turn instead of replacing it ("staging too"). "including" is not here:
# inside one question ("all accounts including central") a plain union says it.
ADD_WORDS: tuple[str, ...] = (
    "also", "too", "as well", "plus", "additionally", "in addition", "as well as",
    "and also", "on top of that", "add", "include",
)
ONLY_WORDS: tuple[str, ...] = ("only", "just", "solely", "exclusively", "merely", "restrict to")
FOLLOWUP_WORDS: tuple[str, ...] = (
    "what about", "how about", "and", "what of", "same for", "same thing for",
    "same question for", "same but", "same", "now", "ok", "okay", "then", "and what about",
    "and how about", "ok and", "okay and", "now show", "instead", "now for", "and for",
    "repeat for", "do the same for", "same with", "same again", "ok now", "right and",
    "switch to", "change to", "move to", "go to", "now do", "now try", "try again for",
)
# Follow-up words that only mark a follow-up at the start of a question ("and in staging?").
FOLLOWUP_AT_START: frozenset[str] = frozenset({"and", "now", "ok", "okay", "then"})
ANAPHORA_WORDS: tuple[str, ...] = (
    "them", "those", "these", "ones", "they", "the ones", "those ones", "these ones",
    "that one", "this one", "same ones", "the same",
)

# ----- changes (the agent is read-only) -----

# Verbs (base form) that ask to change something. In verb position ("stop the dev
# boxes", "can you reboot prod") they are refused as read-only; as participles or
# gerunds ("stopped", "stopping") they are state filters, listed under STATE_WORDS. A
# phrase that also has another meaning ("tag", "open", "shut down") takes that meaning
# when it is not in verb position ("instances tag team=x", "SGs that are open").
MUTATION_VERBS: tuple[str, ...] = (
    "terminate", "stop", "start", "reboot", "delete", "remove", "create", "launch", "modify",
    "update", "scale", "attach", "detach", "put", "tag", "untag", "retag", "enable",
    "disable", "restart", "kill", "shut down", "shut off", "shutdown", "resize", "destroy",
    "drop", "purge", "deregister", "register", "release", "revoke", "authorize", "associate",
    "disassociate", "provision", "deprovision", "deploy", "redeploy", "rollback",
    "roll back", "upgrade", "downgrade", "patch", "change", "set", "edit", "rename", "move",
    "copy", "clone", "snapshot", "back up", "backup", "restore", "encrypt", "decrypt",
    "rotate", "reset", "replace", "migrate", "install", "uninstall", "configure",
    "reconfigure", "fix", "repair", "remediate", "increase", "decrease", "bump", "raise",
    "lower", "apply", "execute", "invoke", "trigger", "publish", "upload", "make", "spawn",
    "fire up", "boot", "boot up", "spin up", "spin down", "spin", "bring up", "bring down",
    "take down", "tear down", "teardown", "clean up", "cleanup", "get rid of", "wipe",
    "wipe out", "erase", "nuke", "trash", "cancel", "approve", "grant", "lock", "unlock",
    "pause", "resume", "hibernate", "suspend", "unsuspend", "power on", "power off",
    "power down", "power up", "turn on", "turn off", "switch on", "switch off", "recycle",
    "bounce", "cycle", "failover", "fail over", "promote", "close", "block", "harden",
    "open", "allocate", "unassign", "assign", "unshare", "transfer", "import", "ensure",
    "label", "relabel", "insert", "empty", "flush", "truncate", "archive", "unarchive",
    "stand up", "set up", "roll out", "rollout", "scale up", "scale down", "scale out",
    "scale in", "start up", "halt", "deactivate", "activate", "reactivate", "decommission",
    "retire", "expire", "evict", "drain", "cordon", "uncordon", "isolate", "quarantine",
    "overwrite", "replicate", "sync", "enroll", "unenroll", "add", "make sure",
)
# A change spelled out as code is a change request wherever it stands: an API operation
# (TerminateInstances, ec2:TerminateInstances), its AWS CLI name (terminate-instances) or
# boto3 name (terminate_instances), or an AWS CLI command ("aws ec2 terminate-instances",
# "aws s3 rm"). These are the first words of such operations and commands that change
# something: the change verbs above and the AWS API's own.
OPERATION_CHANGE_WORDS: frozenset[str] = frozenset(
    {verb for verb in MUTATION_VERBS if " " not in verb} | {
        "run", "send", "write", "accept", "reject", "request", "purchase", "subscribe",
        "unsubscribe", "complete", "abort", "confirm", "signal", "recover", "rm", "rb", "mb",
        "mv", "cp", "batch",
    }
)
# The services whose operation names are known as such (botocore's models, loaded on the
# first question that holds a word shaped like an operation). A command after "aws
# <service>" is read by its first word whatever the service.
OPERATION_SERVICES: tuple[str, ...] = (
    "ec2", "s3", "rds", "lambda", "ecs", "eks", "dynamodb", "cloudformation", "iam",
    "autoscaling", "elbv2", "elb", "route53", "sqs", "sns", "kms", "secretsmanager", "ssm",
    "logs", "cloudwatch", "events", "ecr", "efs", "elasticache", "organizations", "backup",
    "cloudfront", "apigateway", "kinesis", "stepfunctions", "sts",
)
# Words that may stand between the start of a clause and a change verb and leave it an
# imperative or a request: "please", "can you", "I want to", "let's", "go ahead and".
VERB_LEADS: frozenset[str] = frozenset({
    "please", "pls", "plz", "kindly", "can", "could", "would", "will", "shall", "should",
    "must", "may", "might", "you", "we", "i", "u", "to", "go", "ahead", "and", "then",
    "just", "now", "also", "lets", "let", "us", "me", "help", "need", "want", "wanna",
    "gonna", "try", "able", "be", "it", "is", "possible", "safe", "ok", "okay", "hey",
    "hi", "hello", "so", "how", "do", "does", "quickly", "immediately", "asap", "right",
    "away", "simply", "actually", "finally", "first", "next", "someone", "somebody",
    "going", "like", "really", "definitely", "urgently", "not",
})
# Right before a change verb, these make it a request whatever came before:
# "list the idle volumes and delete them", "which instances should I stop?".
VERB_TRIGGERS: frozenset[str] = frozenset({
    "to", "and", "then", "please", "should", "must", "can", "could", "would", "will",
    "shall", "may", "might", "lets", "we", "i", "you", "u", "gonna", "wanna", "also",
    "just", "pls", "plz", "kindly", "now",
})
# "I want the dev boxes stopped": a wish, a change participle after the noun, no read verb.
WANT_WORDS: tuple[str, ...] = (
    "want", "need", "would like", "wish", "i want", "we need", "i need", "i would like",
    "we want",
)

# ----- filters -----

# Cues after which a tag filter must follow ("tagged team=payments").
TAG_CUES: tuple[str, ...] = (
    "tagged", "tagged with", "with tag", "with the tag", "with a tag", "with tags",
    "having tag", "having the tag", "that have tag", "that have the tag", "that has tag",
    "that has the tag", "labeled", "labelled", "labeled with", "labelled with",
    "with label", "with the label", "carrying tag", "where tag", "where the tag",
    "whose tag", "tagged as", "with the tags", "having tags",
)
# "tag" alone is a cue only if a tag follows ("instances tag team=x"), else a plain word.
TAG_WORDS: tuple[str, ...] = ("tag", "tags", "label")
# Cues after which a name (or a part of one) must follow.
NAME_CUES: tuple[str, ...] = (
    "named", "called", "name contains", "name containing", "name includes", "name including",
    "name like", "name matching", "names containing", "names contain", "names like",
    "names matching", "names that contain", "name that contains", "whose name contains",
    "whose name includes", "whose name is", "whose name matches", "whose name has",
    "whose names contain", "with name", "with the name", "with a name", "with names",
    "with name containing", "with names containing", "with a name containing",
    "with a name like", "with names like", "with name like", "named like", "called like",
    "named something like", "containing", "that contain", "that contains", "matching",
    "that match", "that matches", "name starts with", "name starting with",
    "names starting with", "names start with", "name begins with", "name beginning with",
    "whose name starts with", "whose names start with", "whose name begins with",
    "starting with", "that start with", "that starts with", "beginning with",
    "that begin with", "that begins with", "prefixed with", "with prefix", "with the prefix",
    "ending with", "that end with", "that ends with", "name ends with", "name ending with",
    "whose name ends with", "suffixed with", "with suffix", "where name contains",
    "where the name contains", "where name is", "where the name is", "where name like",
    "where name matches", "name is", "name has", "with the word", "by name",
    "with names that contain", "whose names start", "name matches", "name like",
)
# "name" alone is a cue only if a name-like value follows ("name web-1"), else a plain word.
NAME_WORDS: tuple[str, ...] = ("name", "names")
# "web" in "with web in the name": the words after the value.
IN_NAME_TAILS: tuple[str, ...] = (
    "in the name", "in their name", "in its name", "in name", "in the names",
    "in their names", "in names", "in the title",
)
IN_NAME_LEADS: frozenset[str] = frozenset({
    "with", "having", "has", "have", "contain", "contains", "containing", "include",
    "includes", "including", "mentioning",
})
# "owned by team payments", "belonging to the payments team".
OWNER_CUES: tuple[str, ...] = (
    "owned by", "belonging to", "belongs to", "belong to", "that belong to",
    "managed by", "maintained by", "run by", "operated by", "used by",
)
# Tag keys people name as teams ("the payments team", "owned by team payments").
TEAM_WORDS: frozenset[str] = frozenset({"team", "squad", "group"})
# "where team is payments", "whose owner is alice".
WHERE_LEADS: frozenset[str] = frozenset({"where", "whose", "with", "having", "and"})
# Between a tag key and its value: "team is payments", "team set to payments".
TAG_CONNECTORS: tuple[str, ...] = (
    "=", "is", "of", "set to", "equal to", "equals", "as", ":", "with value", "==", "eq",
    "is set to", "value", "valued", "is equal to", "matches", "being",
)

# ----- small words -----

# Words that join two things of a list: "prod and staging", "clusters, services".
CONJUNCTIONS: frozenset[str] = frozenset({"and", "or", "nor", ","})

# Where a reference sits: "in prod", "of the cluster", "attached to the instance".
PREPOSITIONS: tuple[str, ...] = (
    "in", "inside", "within", "on", "of", "under", "from", "for", "at", "into",
)
ATTACHED_WORDS: tuple[str, ...] = (
    "attached to", "connected to", "associated with", "mounted on", "linked to",
    "running on", "behind", "used by instance", "belonging to instance",
)
# Words that carry no meaning for the plan. A word neither here nor in another table makes
# the planner refuse (never guess silently), so grammar words and politeness belong here,
# and words that could narrow a question ("new", "largest", "no") must not.
FILLERS: frozenset[str] = frozenset({
    "a", "an", "the", "some", "all", "every", "each", "this", "that", "our", "my", "your",
    "we", "i", "you", "u", "me", "us", "one", "both", "either", "own", "is", "are", "was",
    "were", "be", "been", "being", "am", "do", "does", "did", "done", "have", "has", "had",
    "having", "got", "gotten", "can", "could", "would", "will", "shall", "should", "may",
    "might", "must", "there", "here", "to", "with", "at", "about", "as", "so", "if",
    "whether", "please", "pls", "plz", "kindly", "thanks", "thank", "thx", "hey", "hi",
    "hello", "currently", "presently", "right now", "at the moment", "at present",
    "as of now", "existing", "exist", "exists", "deployed", "provisioned", "configured",
    "aws", "amazon", "cloud", "id", "ids", "arn", "arns", "state", "states", "status",
    "statuses", "current", "quick", "quickly", "real quick", "even", "still", "yet",
    "again", "already", "actually", "really", "exactly", "kind", "know", "wondering",
    "curious", "interested", "looking", "look", "tell", "out", "let", "lets", "go", "ahead",
    "able", "possible", "across", "over", "throughout", "between", "among", "amongst",
    "via", "through", "by", "per", "and", "or", "nor", "&", "who", "which", "what",
    "where", "how", "use", "using", "used", "run", "runs", "launched", "created", "owned",
    "located", "living", "sitting", "hosted", "found", "present", "set up", "right",
    "moment", "list of", "cheers", "quick question", "question", "hmm", "um", "uh", "well",
    "so far", "in general", "generally", "whole", "entire", "full", "any", "else", "other",
    "respectively", "individually", "separately", "listed", "shown", "known",
    "registered", "with their", "along", "together", "including their", "basic",
    "regarding", "re", "concerning", "for me", "exact", "specific", "particular",
    "certain", "various", "different", "distinct", "unique", "individual", "oh", "ah",
    "yes", "yeah", "yep", "sure", "fine", "good", "great", "cool", "nice", "awesome",
    "perfect", "alright", "all right", "anyway", "btw", "fyi", "asap", "urgent",
    "urgently", "lot", "lots", "bunch", "couple", "few", "several", "numerous", "tell us",
    "show us", "give us", "for us", "reside", "resides", "residing", "live in", "lives",
    "contained", "stored", "kept", "assigned", "showing", "displaying", "gimme", "lemme",
    "ya", "yall", "folks", "guys", "opsagent", "agent", "bot", "assistant", "buddy",
    "mate", "there are", "many", "we have", "do we", "inside of", "out of", "have got",
    "got any", "like to",
    "please show", "kinda", "sort of", "wanted", "trying", "try", "able to", "hoping",
    "hope", "could i", "may i", "can i", "see if", "seeing", "visible", "whatever",
    "there is", "stuff like that", "etc", "at all", "then", "break down", "broken down",
    "breakdown", "breakdown of", "break out", "split", "split up", "give a breakdown", "it",
    "its", "their", "his", "her", "including", "along with", "together with", "group",
    "grouped", "arrange", "arranged", "organize", "organized", "break", "break it down",
    "break that down", "break this down", "break them down", "break those down",
})
# Tag keys common enough to read in "where owner is alice" even when the key is also a
# word the planner knows ("service").
COMMON_TAG_KEYS: frozenset[str] = frozenset({
    "team", "owner", "project", "application", "app", "costcenter", "cost-center",
    "cost_center", "department", "service", "product", "component", "tier", "customer",
    "purpose", "contact", "squad", "business-unit", "businessunit", "domain", "system",
})
PUBLIC_WORDS: tuple[str, ...] = ("public", "publicly reachable", "internet reachable")
# Name cues that name one thing exactly ("the cluster named prod-main").
EXACT_NAME_CUES: frozenset[str] = frozenset({
    "named", "called", "with name", "with the name", "with a name", "whose name is",
    "name is", "where name is", "where the name is", "by name",
})
# Attributes people try to group or sort by that the plan cannot (asked for, then refused).
GROUP_ATTRIBUTES: frozenset[str] = frozenset({
    "state", "status", "type", "instance type", "size", "tag", "team", "owner", "name",
    "age", "az", "availability zone", "zone", "engine", "runtime", "version", "class",
    "family", "vpc", "subnet", "cost", "date", "time", "launch time", "creation date",
    "service", "project", "application", "app", "kind",
})
