"""What IAM checks for an AWS API call: its action(s), resource ARN and condition keys.

:func:`iam_requests` turns a call as botocore's ``before-parameter-build`` hook sees it
(service, operation, parameters) into the requests IAM authorizes, in the shape of
infra/test/iam-eval.ts's ``IRequest``, so the contract test can ask the stack's evaluator
whether a role may make it. It knows the calls the suite makes; any other raises, so a new
call cannot slip past the contract unchecked (add its mapping here, from the service's
"Actions, resources, and condition keys" page of the IAM reference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Request = dict[str, Any]


class Arns:
    """ARN builders for one account and region."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def __call__(self, service: str, resource: str, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:aws:{service}:{where}:{self.account}:{resource}"


def _request(action: str, resource: str, **context: Any) -> Request:
    return {"action": action, "resource": resource, "context": context}


def _s3_object(params: Mapping[str, Any]) -> str:
    return f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"


def _s3_bucket(params: Mapping[str, Any]) -> str:
    return f"arn:aws:s3:::{params['Bucket']}"


def _s3_put(params: Mapping[str, Any]) -> list[Request]:
    """s3:PutObject, plus what the object's tags and Object Lock settings need."""
    requests = [_request("s3:PutObject", _s3_object(params))]
    if params.get("Tagging"):
        requests.append(_request("s3:PutObjectTagging", _s3_object(params)))
    if params.get("ObjectLockMode") or params.get("ObjectLockRetainUntilDate"):
        requests.append(_request("s3:PutObjectRetention", _s3_object(params)))
    if params.get("ObjectLockLegalHoldStatus"):
        requests.append(_request("s3:PutObjectLegalHold", _s3_object(params)))
    return requests


def _s3(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    versioned = "Version" if params.get("VersionId") else ""
    # a multipart upload's object settings come with CreateMultipartUpload; its parts and
    # its completion authorize as s3:PutObject of the object alone
    if operation in ("PutObject", "CreateMultipartUpload"):
        return _s3_put(params)
    if operation in ("UploadPart", "CompleteMultipartUpload"):
        return [_request("s3:PutObject", _s3_object(params))]
    if operation == "AbortMultipartUpload":
        return [_request("s3:AbortMultipartUpload", _s3_object(params))]
    if operation in ("GetObject", "HeadObject"):
        return [_request(f"s3:GetObject{versioned}", _s3_object(params))]
    if operation == "GetObjectAttributes":
        return [_request(f"s3:GetObject{versioned}Attributes", _s3_object(params))]
    if operation in ("ListObjectsV2", "ListObjects"):
        return [
            _request("s3:ListBucket", _s3_bucket(params), **{"s3:prefix": params.get("Prefix", "")})
        ]
    if operation == "ListObjectVersions":
        return [
            _request(
                "s3:ListBucketVersions",
                _s3_bucket(params),
                **{"s3:prefix": params.get("Prefix", "")},
            )
        ]
    if operation == "DeleteObject":
        return [_request(f"s3:DeleteObject{versioned}", _s3_object(params))]
    if operation == "DeleteObjects":
        return [
            _request("s3:DeleteObject", f"arn:aws:s3:::{params['Bucket']}/{item['Key']}")
            for item in params["Delete"]["Objects"]
        ]
    if operation == "RestoreObject":
        return [_request("s3:RestoreObject", _s3_object(params))]
    if operation == "CopyObject":
        source = params["CopySource"]
        if isinstance(source, str):
            bucket, _, key = source.lstrip("/").partition("/")
        else:
            bucket, key = source["Bucket"], source["Key"]
        return [
            _request("s3:PutObject", _s3_object(params)),
            _request("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"),
        ]
    raise KeyError(operation)


def _kms(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    key = str(params.get("KeyId", ""))
    if not key.startswith("arn:"):
        # a bare id or alias: IAM authorizes the key it names, which the suite always gives
        # as an ARN (the stack's output); anything else is a finding
        raise ValueError(f"KMS {operation} with KeyId {key!r}: the suite passes key ARNs")
    context = {
        f"kms:EncryptionContext:{name}": value
        for name, value in (params.get("EncryptionContext") or {}).items()
    }
    if operation in ("GenerateDataKey", "Decrypt", "Encrypt", "GenerateDataKeyWithoutPlaintext"):
        return [_request(f"kms:{operation}", key, **context)]
    raise KeyError(operation)


def _ecs(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    cluster = str(params.get("cluster", "default"))
    cluster_arn = cluster if cluster.startswith("arn:") else arn("ecs", f"cluster/{cluster}")
    cluster_name = cluster_arn.rsplit("/", 1)[1]

    def task_arn(task: str) -> str:
        return task if task.startswith("arn:") else arn("ecs", f"task/{cluster_name}/{task}")

    if operation == "RegisterTaskDefinition":
        requests = [_request("ecs:RegisterTaskDefinition", "*")]
        for role in (params.get("taskRoleArn"), params.get("executionRoleArn")):
            if role:
                requests.append(
                    _request(
                        "iam:PassRole", role, **{"iam:PassedToService": "ecs-tasks.amazonaws.com"}
                    )
                )
        if params.get("tags"):
            family = arn("ecs", f"task-definition/{params['family']}:*")
            requests.append(
                _request(
                    "ecs:TagResource", family, **{"ecs:CreateAction": "RegisterTaskDefinition"}
                )
            )
        return requests
    if operation == "DescribeTaskDefinition":
        return [_request("ecs:DescribeTaskDefinition", "*")]
    if operation == "RunTask":
        definition = str(params["taskDefinition"])
        if not definition.startswith("arn:"):
            definition = arn("ecs", f"task-definition/{definition}")
        requests = [_request("ecs:RunTask", definition, **{"ecs:cluster": cluster_arn})]
        if params.get("tags"):
            requests.append(
                _request(
                    "ecs:TagResource",
                    arn("ecs", f"task/{cluster_name}/new-task"),
                    **{"ecs:CreateAction": "RunTask"},
                )
            )
        return requests
    if operation == "DescribeTasks":
        return [
            _request("ecs:DescribeTasks", task_arn(task), **{"ecs:cluster": cluster_arn})
            for task in params["tasks"]
        ]
    if operation == "StopTask":
        return [_request("ecs:StopTask", task_arn(params["task"]), **{"ecs:cluster": cluster_arn})]
    raise KeyError(operation)


def _efs(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    if operation == "CreateAccessPoint":
        file_system = arn("elasticfilesystem", f"file-system/{params['FileSystemId']}")
        tags = {f"aws:RequestTag/{tag['Key']}": tag["Value"] for tag in params.get("Tags", ())}
        keys = [tag["Key"] for tag in params.get("Tags", ())]
        requests = [
            _request(
                "elasticfilesystem:CreateAccessPoint", file_system, **tags, **{"aws:TagKeys": keys}
            )
        ]
        if keys:
            requests.append(
                _request(
                    "elasticfilesystem:TagResource",
                    arn("elasticfilesystem", "access-point/fsap-new"),
                    **{"elasticfilesystem:CreateAction": "CreateAccessPoint"},
                )
            )
        return requests
    if operation == "DescribeAccessPoints":
        if params.get("FileSystemId"):
            resource = arn("elasticfilesystem", f"file-system/{params['FileSystemId']}")
        else:
            resource = arn("elasticfilesystem", f"access-point/{params['AccessPointId']}")
        return [_request("elasticfilesystem:DescribeAccessPoints", resource)]
    raise KeyError(operation)


def _ec2(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    if operation in ("DescribeSubnets", "DescribeSecurityGroups"):
        return [_request(f"ec2:{operation}", "*")]  # no resource-level permissions exist
    raise KeyError(operation)


def _secretsmanager(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    if operation == "GetSecretValue":
        return [_request("secretsmanager:GetSecretValue", str(params["SecretId"]))]
    raise KeyError(operation)


def _cognito(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    if operation == "DescribeUserPoolClient":
        pool = arn("cognito-idp", f"userpool/{params['UserPoolId']}")
        return [_request("cognito-idp:DescribeUserPoolClient", pool)]
    raise KeyError(operation)


def _events(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    if operation == "PutEvents":
        requests = []
        for entry in params["Entries"]:
            bus = str(entry.get("EventBusName") or "default")
            bus_arn = bus if bus.startswith("arn:") else arn("events", f"event-bus/{bus}")
            requests.append(
                _request(
                    "events:PutEvents",
                    bus_arn,
                    **{"events:source": entry["Source"], "events:detail-type": entry["DetailType"]},
                )
            )
        return requests
    raise KeyError(operation)


def _sns(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    if operation == "Publish":
        return [_request("sns:Publish", str(params["TopicArn"]))]
    raise KeyError(operation)


def _bedrock_runtime(operation: str, params: Mapping[str, Any], arn: Arns) -> list[Request]:
    if operation in ("Converse", "InvokeModel", "ConverseStream"):
        model = str(params["modelId"])
        resource = (
            model if model.startswith("arn:") else arn("bedrock", f"foundation-model/{model}")
        )
        resource = resource.replace(f":{arn.account}:foundation-model", "::foundation-model")
        action = (
            "bedrock:InvokeModelWithResponseStream"
            if operation == "ConverseStream"
            else "bedrock:InvokeModel"
        )
        return [_request(action, resource)]
    raise KeyError(operation)


MAPPINGS: dict[str, Callable[[str, Mapping[str, Any], Arns], list[Request]]] = {
    "s3": _s3,
    "kms": _kms,
    "ecs": _ecs,
    "efs": _efs,
    "ec2": _ec2,
    "secretsmanager": _secretsmanager,
    "cognito-idp": _cognito,
    "events": _events,
    "sns": _sns,
    "bedrock-runtime": _bedrock_runtime,
}


def iam_requests(
    service: str, operation: str, params: Mapping[str, Any], arn: Arns
) -> list[Request]:
    """The IAM requests one AWS call makes; raises when the call is not mapped."""
    mapping = MAPPINGS.get(service)
    try:
        if mapping is None:
            raise KeyError(operation)
        return mapping(operation, params, arn)
    except KeyError:
        raise AssertionError(
            f"{service} {operation}: no IAM mapping in tests/e2e/aws_iam.py; add one"
        ) from None
