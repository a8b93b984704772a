"""The read-only guard: reads pass, everything else is refused before it is sent."""

from __future__ import annotations

import json
import logging

import pytest

from opsagent.access import ReadOnlyViolation, check_read_only

READS = [
    # (command, API operation)
    ("aws ec2 describe-instances", "DescribeInstances"),
    ("aws ec2 describe-instances --region us-west-2", "DescribeInstances"),
    ("aws ec2 describe-instances --filters Name=instance-state-name,Values=running "
     "--query 'Reservations[].Instances[?State.Name==`running`].InstanceId' --output json",
     "DescribeInstances"),
    ('aws ec2 describe-instances --query "Reservations[*].Instances[*].[InstanceId]"',
     "DescribeInstances"),
    ("aws ec2 describe-instances --instance-ids i-0123 i-0456 --max-items 5", "DescribeInstances"),
    ("aws ec2 describe-volumes --filters Name=status,Values=available", "DescribeVolumes"),
    ("aws ec2 describe-addresses", "DescribeAddresses"),
    ("aws ec2 describe-vpcs --region eu-central-1", "DescribeVpcs"),
    ("aws ec2 describe-security-groups --group-ids sg-1", "DescribeSecurityGroups"),
    ("aws ec2 describe-instances --dry-run", "DescribeInstances"),
    ("aws ec2 get-console-output --instance-id i-1", "GetConsoleOutput"),
    ("aws s3api list-buckets", "ListBuckets"),
    ("aws s3api get-bucket-location --bucket my-bucket", "GetBucketLocation"),
    ("aws s3api get-bucket-tagging --bucket my-bucket", "GetBucketTagging"),
    ("aws s3api head-bucket --bucket my-bucket", "HeadBucket"),
    ("aws s3api list-objects-v2 --bucket my-bucket --prefix logs/", "ListObjectsV2"),
    ("aws s3 ls", "ListBuckets"),
    ("aws s3 ls s3://my-bucket/logs/ --recursive", "ListObjectsV2"),
    ("aws rds describe-db-instances", "DescribeDBInstances"),
    ("aws rds describe-db-clusters --region ap-southeast-2", "DescribeDBClusters"),
    ("aws lambda list-functions", "ListFunctions"),
    ("aws lambda get-function-configuration --function-name f", "GetFunctionConfiguration"),
    ("aws lambda list-tags --resource arn:aws:lambda:us-east-1:1:function:f", "ListTags"),
    ("aws lambda get-function-url-config --function-name f", "GetFunctionUrlConfig"),
    ("aws ecs list-clusters", "ListClusters"),
    ("aws ecs describe-clusters --clusters a b --include TAGS", "DescribeClusters"),
    ("aws ecs describe-services --cluster c --services s", "DescribeServices"),
    ("aws eks list-clusters", "ListClusters"),
    ("aws eks describe-cluster --name prod", "DescribeCluster"),
    ("aws eks list-nodegroups --cluster-name prod", "ListNodegroups"),
    ("aws dynamodb list-tables", "ListTables"),
    ("aws dynamodb describe-table --table-name t", "DescribeTable"),
    ("aws cloudformation describe-stacks", "DescribeStacks"),
    ("aws iam list-roles", "ListRoles"),
    ("aws iam get-account-password-policy", "GetAccountPasswordPolicy"),
    ("aws iam get-credential-report", "GetCredentialReport"),
    ("aws sts get-caller-identity", "GetCallerIdentity"),
    ("aws sqs get-queue-url --queue-name q", "GetQueueUrl"),
    ("aws sqs get-queue-attributes --queue-url https://sqs.us-east-1.amazonaws.com/1/q",
     "GetQueueAttributes"),
    ("aws logs filter-log-events --log-group-name /aws/lambda/f", "FilterLogEvents"),
    ("aws logs describe-log-groups", "DescribeLogGroups"),
    ("aws cloudtrail lookup-events --max-results 10", "LookupEvents"),
    ("aws ssm get-parameter --name /app/flag", "GetParameter"),
    ("aws ssm describe-instance-information", "DescribeInstanceInformation"),
    ("aws secretsmanager list-secrets", "ListSecrets"),
    ("aws secretsmanager describe-secret --secret-id s", "DescribeSecret"),
    ("aws kms list-keys", "ListKeys"),
    ("aws resourcegroupstaggingapi get-resources", "GetResources"),
    ("aws organizations list-accounts", "ListAccounts"),
    ("aws route53 list-hosted-zones", "ListHostedZones"),
    ("aws elbv2 describe-load-balancers", "DescribeLoadBalancers"),
    ("aws autoscaling describe-auto-scaling-groups", "DescribeAutoScalingGroups"),
    ("aws cloudwatch describe-alarms --state-value ALARM", "DescribeAlarms"),
    ("aws configservice describe-config-rules", "DescribeConfigRules"),
    ("aws dynamodb batch-get-item --request-items x", None),  # refused below, see MUTATING
    ("aws guardduty list-detectors", "ListDetectors"),
    ("aws resource-explorer-2 search --query-string ec2", "Search"),
    ("  aws   ec2   describe-instances  ", "DescribeInstances"),
    ("aws --region us-east-1 ec2 describe-instances", "DescribeInstances"),
    ("aws ec2 describe-instances --no-paginate --cli-read-timeout 10", "DescribeInstances"),
]
READS = [(c, op) for c, op in READS if op is not None]

MUTATING = [
    # (command, operation or None, a phrase the reason must contain)
    ("aws ec2 terminate-instances --instance-ids i-123", "TerminateInstances", "changes"),
    ("aws ec2 stop-instances --instance-ids i-123", "StopInstances", "changes"),
    ("aws ec2 run-instances --image-id ami-1 --dry-run", "RunInstances", "changes"),
    ("aws ec2 create-tags --resources i-1 --tags Key=a,Value=b", "CreateTags", "changes"),
    ("aws ec2 modify-instance-attribute --instance-id i-1 --no-source-dest-check",
     "ModifyInstanceAttribute", "changes"),
    ("aws ec2 authorize-security-group-ingress --group-id sg-1 --protocol tcp --port 22 "
     "--cidr 0.0.0.0/0", "AuthorizeSecurityGroupIngress", "changes"),
    ("aws ec2 delete-volume --volume-id vol-1", "DeleteVolume", "changes"),
    ("aws ec2 get-password-data --instance-id i-1", "GetPasswordData", "credentials"),
    ("aws s3api delete-bucket --bucket b", "DeleteBucket", "changes"),
    ("aws s3api put-bucket-policy --bucket b --policy '{}'", "PutBucketPolicy", "changes"),
    ("aws s3api get-object --bucket b --key k out.bin", "GetObject", "local file"),
    ("aws s3 cp s3://b/k /tmp/k", None, "high-level"),
    ("aws s3 sync . s3://b", None, "high-level"),
    ("aws s3 rm s3://b/k", None, "high-level"),
    ("aws s3 mb s3://new-bucket", None, "high-level"),
    ("aws s3 presign s3://b/k", None, "high-level"),
    ("aws rds delete-db-instance --db-instance-identifier db --skip-final-snapshot",
     "DeleteDBInstance", "changes"),
    ("aws rds generate-db-auth-token --hostname h --port 5432 --username u", None,
     "high-level"),
    ("aws lambda invoke --function-name f /tmp/out.json", "Invoke", "changes"),
    ("aws lambda update-function-code --function-name f --zip-file fileb://f.zip", None,
     "local file"),
    ("aws iam create-user --user-name eve", "CreateUser", "changes"),
    ("aws iam attach-role-policy --role-name r --policy-arn arn:aws:iam::aws:policy/Admin",
     "AttachRolePolicy", "changes"),
    ("aws sts assume-role --role-arn arn:aws:iam::1:role/r --role-session-name x",
     "AssumeRole", "changes"),
    ("aws sts get-session-token", "GetSessionToken", "credentials"),
    ("aws sts get-federation-token --name x", "GetFederationToken", "credentials"),
    ("aws ecr get-authorization-token", "GetAuthorizationToken", "credentials"),
    ("aws ecr get-login-password", None, "high-level"),
    ("aws eks get-token --cluster-name prod", None, "high-level"),
    ("aws eks update-kubeconfig --name prod", None, "high-level"),
    ("aws redshift get-cluster-credentials --db-user u --cluster-identifier c",
     "GetClusterCredentials", "credentials"),
    ("aws secretsmanager get-secret-value --secret-id s", "GetSecretValue", "secret"),
    ("aws ssm get-parameter --name /db/password --with-decryption", "GetParameter",
     "decrypts"),
    ("aws ssm get-parameters-by-path --path /db --with-decryption", "GetParametersByPath",
     "decrypts"),
    ("aws ssm send-command --document-name AWS-RunShellScript --instance-ids i-1 "
     "--parameters commands=id", "SendCommand", "changes"),
    ("aws dynamodb scan --table-name t", "Scan", "contents"),
    ("aws dynamodb query --table-name t --key-condition-expression k", "Query", "contents"),
    ("aws dynamodb get-item --table-name t --key '{\"id\": {\"S\": \"1\"}}'", "GetItem",
     "contents"),
    ("aws dynamodb batch-get-item --request-items '{}'", "BatchGetItem", "contents"),
    ("aws dynamodb delete-table --table-name t", "DeleteTable", "changes"),
    ("aws cognito-identity get-id --identity-pool-id p", "GetId", "creates"),
    ("aws quicksight get-dashboard-embed-url --aws-account-id 1 --dashboard-id d "
     "--identity-type IAM", "GetDashboardEmbedUrl", "URL"),
    ("aws cloudformation delete-stack --stack-name s", "DeleteStack", "changes"),
    ("aws cloudformation deploy --template-file t.yaml --stack-name s", None, "high-level"),
    ("aws ecs update-service --cluster c --service s --desired-count 0", "UpdateService",
     "changes"),
    ("aws eks delete-cluster --name prod", "DeleteCluster", "changes"),
    ("aws ec2 wait instance-running --instance-ids i-1", None, "high-level"),
    ("aws kms decrypt --ciphertext-blob AAAA", "Decrypt", "changes"),
    ("aws kms get-parameters-for-import --key-id k --wrapping-algorithm RSAES_OAEP_SHA_256 "
     "--wrapping-key-spec RSA_2048", "GetParametersForImport", "key import"),
]

NOT_ONE_COMMAND = [
    ("aws ec2 describe-instances; aws ec2 terminate-instances --instance-ids i-1", "`;`"),
    ("aws ec2 describe-instances && rm -rf /", "`&&`"),
    ("aws ec2 describe-instances || true", "`||`"),
    ("aws ec2 describe-instances | jq .", "`|`"),
    ("aws ec2 describe-instances > /tmp/out", "`>`"),
    ("aws ec2 describe-instances < /dev/null", "`<`"),
    ("aws ec2 describe-instances &", "`&`"),
    ("aws ec2 describe-instances --instance-ids $(cat ids)", "`$(`"),
    ("aws ec2 describe-instances --instance-ids ${IDS}", "`${`"),
    ("aws ec2 describe-instances --instance-ids `cat ids`", "`"),
    ("aws ec2 describe-instances\naws ec2 terminate-instances --instance-ids i-1", "newline"),
    ("aws ec2 describe-instances --query 'unclosed", "split"),
    ("rm -rf /", "does not start with `aws`"),
    ("/usr/bin/aws ec2 describe-instances", "does not start with `aws`"),
    ("python -c 'import os'", "does not start with `aws`"),
    ("", "empty"),
    ("aws", "form"),
    ("aws ec2", "form"),
    ("aws help", "form"),
    ("aws ec2 describe-instances help", "help"),
    ("aws configure list", "local CLI command"),
    ("aws configure set aws_access_key_id x", "local CLI command"),
    ("aws history list", "local CLI command"),
    ("aws nosuchservice describe-things", "no AWS CLI service"),
    ("aws ec3 describe-instances", "ec2"),  # suggests the close match
    ("aws ec2 describe-instancez", "not an operation"),
    ("aws ec2 describe-instances --no-such-flag", "does not define"),
    ("aws s3api get-bucket-location", "invalid arguments"),  # --bucket is required
    ("aws --endpoint-url http://attacker.example ec2 describe-instances", "--endpoint-url"),
    ("aws --profile admin ec2 describe-instances", "--profile"),
    ("aws --no-verify-ssl ec2 describe-instances", "--no-verify-ssl"),
    ("aws --debug ec2 describe-instances", "--debug"),
    ("aws --no-sign-request s3api list-buckets", "--no-sign-request"),
    ("aws ec2 describe-instances --region 'us-east-1 --endpoint-url x'", "region code"),
    ("aws ec2 describe-instances --region example.com", "region code"),
    ("aws ec2 describe-instances --generate-cli-skeleton", "--generate-cli-skeleton"),
    ("aws ec2 describe-instances --cli-input-json '{}'", "--cli-input-json"),
    ("aws ec2 describe-instances --filters file:///etc/passwd", "local file"),
    ("aws ec2 describe-instances --cli-input-json file://x.json", "local file"),
    ("aws ec2 describe-instances " + "x" * 10_001, "longer"),
]


@pytest.mark.parametrize(("command", "operation"), READS)
def test_reads_pass_with_their_api_operation(command: str, operation: str) -> None:
    checked = check_read_only(command)
    assert checked.operation == operation
    assert checked.command == command.strip()


@pytest.mark.parametrize(("command", "operation", "phrase"), MUTATING)
def test_changes_secrets_and_downloads_are_refused(
    command: str, operation: str | None, phrase: str
) -> None:
    with pytest.raises(ReadOnlyViolation) as refused:
        check_read_only(command)
    message = str(refused.value)
    assert message.startswith("opsagent is read-only: `aws ")
    assert message.endswith("and was not sent")
    assert phrase.lower() in message.lower()
    assert refused.value.operation == operation
    if operation:
        assert f"({operation})" in message


@pytest.mark.parametrize(("command", "phrase"), NOT_ONE_COMMAND)
def test_anything_but_one_plain_aws_command_is_refused(command: str, phrase: str) -> None:
    with pytest.raises(ReadOnlyViolation) as refused:
        check_read_only(command)
    assert phrase.lower() in str(refused.value).lower()
    assert str(refused.value).startswith("opsagent is read-only:")


def test_message_names_command_and_operation() -> None:
    with pytest.raises(ReadOnlyViolation) as refused:
        check_read_only("aws ec2 terminate-instances --instance-ids i-0abc")
    assert str(refused.value) == (
        "opsagent is read-only: `aws ec2 terminate-instances` (TerminateInstances) "
        "changes resources and was not sent"
    )


def test_resolved_command_has_service_region_and_args() -> None:
    checked = check_read_only(
        "aws s3api list-objects-v2 --bucket logs --prefix 2024/ --region eu-west-1"
    )
    assert (checked.service, checked.api_service) == ("s3api", "s3")
    assert checked.cli_operation == "list-objects-v2"
    assert checked.operation == "ListObjectsV2"
    assert checked.region == "eu-west-1"
    assert checked.args == {"bucket": "logs", "prefix": "2024/"}


def test_region_defaults_to_none_and_renamed_services_resolve() -> None:
    checked = check_read_only("aws configservice describe-config-rules")
    assert checked.region is None
    assert checked.api_service == "config"


def test_operation_decides_not_the_words() -> None:
    # "describe" and "list" in values do not make a write a read, nor the reverse.
    with pytest.raises(ReadOnlyViolation):
        check_read_only("aws ec2 create-tags --resources i-1 --tags Key=describe,Value=list")
    assert check_read_only(
        "aws ec2 describe-instances --filters Name=tag:Action,Values=terminate-instances"
    ).operation == "DescribeInstances"


def test_quoted_operators_are_values_not_operators() -> None:
    checked = check_read_only(
        "aws ec2 describe-instances --query 'Reservations[].Instances[] | length(@)'"
    )
    assert checked.operation == "DescribeInstances"


def test_every_refusal_is_audit_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="opsagent.audit")
    with pytest.raises(ReadOnlyViolation):
        check_read_only("aws ec2 terminate-instances --instance-ids i-1", user="alice",
                        account_id="222222222222")
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "opsagent.audit"]
    assert records[-1]["event"] == "guard.refused"
    assert records[-1]["user"] == "alice"
    assert records[-1]["account_id"] == "222222222222"
    assert records[-1]["operation"] == "TerminateInstances"
    assert records[-1]["command"] == "aws ec2 terminate-instances --instance-ids i-1"


def test_non_string_is_refused() -> None:
    with pytest.raises(ReadOnlyViolation):
        check_read_only(None)  # type: ignore[arg-type]
