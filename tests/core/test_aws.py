"""The suite's one boto3 client factory: one client per service and settings and environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.config import Config

from tests.loopback import use_dummy_aws
from westtek_core import aws
from westtek_core.aws import aws_client


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_dummy_aws(monkeypatch, tmp_path)  # making a client dials nothing


def test_the_same_settings_give_the_same_client():
    # Config has no value equality: equal options still mean the same client.
    def config() -> Config:
        return Config(read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})

    client = aws_client("sns", region_name="eu-west-1", config=config())
    assert aws_client("sns", region_name="eu-west-1", config=config()) is client
    assert aws_client("sns", region_name="eu-west-1", config=Config(read_timeout=6)) is not client
    assert aws_client("sns", region_name="eu-west-2", config=config()) is not client
    assert aws_client("sqs", region_name="eu-west-1", config=config()) is not client


def test_region_and_endpoint_come_from_the_environment_as_in_boto3(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    client = aws_client("kms")
    assert (client.meta.region_name, client.meta.endpoint_url) == (
        "us-east-1",
        "http://127.0.0.1:4566",
    )
    # An explicit argument wins over the environment, as in boto3.
    explicit = aws_client("kms", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    assert (explicit.meta.region_name, explicit.meta.endpoint_url) == (
        "eu-west-1",
        "http://127.0.0.1:9",
    )


def test_a_changed_environment_gets_new_clients(monkeypatch):
    # Given a client made while the environment named one endpoint,
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    before = aws_client("s3")
    # when the environment names another (a test's own moto server, say),
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4567")
    after = aws_client("s3")
    # the next client follows it rather than the cached one.
    assert after is not before
    assert after.meta.endpoint_url == "http://127.0.0.1:4567"
    assert aws_client("s3") is after


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(aws, "MAX_CLIENTS", 2)
    first = aws_client("sns", config=Config(read_timeout=1))
    aws_client("sns", config=Config(read_timeout=2))
    aws_client("sns", config=Config(read_timeout=3))
    assert len(aws._clients) == 2
    assert aws_client("sns", config=Config(read_timeout=1)) is not first
