"""Amazon Bedrock: the Converse API with ``toolConfig``, through boto3's ``bedrock-runtime``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from traitlets import Float, Int, Unicode, default

from westtek_core.agents.providers.base import (
    Message,
    Provider,
    ProviderError,
    ProviderTimeout,
    ToolCall,
    Turn,
)
from westtek_core.agents.tools import Tool

# infra/lib/config.ts's default bedrockModelIds[0] (the contract test keeps them equal)
DEFAULT_BEDROCK_MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
BEDROCK_MODELS_ENV = "WESTTEK_BEDROCK_MODEL_IDS"


def allowed_bedrock_models() -> list[str]:
    """The models this deployment allows, the default first.

    ``$WESTTEK_BEDROCK_MODEL_IDS`` (comma-separated), else :data:`DEFAULT_BEDROCK_MODEL_ID`.
    """
    models = [m.strip() for m in os.environ.get(BEDROCK_MODELS_ENV, "").split(",") if m.strip()]
    return models or [DEFAULT_BEDROCK_MODEL_ID]


class BedrockProvider(Provider):
    """Amazon Bedrock's Converse API with tools (``bedrock-runtime`` through boto3)."""

    model_id = Unicode(
        config=True,
        help="The Bedrock model or inference profile to converse with. Default: the first "
        "of $WESTTEK_BEDROCK_MODEL_IDS (on AWS, the stage's allowed models, infra's "
        f"bedrockModelIds, which its IAM policies allow), else {DEFAULT_BEDROCK_MODEL_ID}.",
    )

    @default("model_id")
    def _default_model_id(self) -> str:
        return allowed_bedrock_models()[0]

    region = Unicode(
        config=True,
        help="AWS region of the Bedrock endpoint. Default: $AWS_REGION, else us-east-1.",
    )

    @default("region")
    def _default_region(self) -> str:
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    endpoint_url = Unicode(
        "",
        config=True,
        help="Another Bedrock Runtime endpoint (a VPC endpoint, or a local one in tests).",
    )
    max_tokens = Int(2048, config=True, help="Most tokens the model may answer with.")
    temperature = Float(0.0, config=True, help="Sampling temperature (0: most deterministic).")

    def _client(self, timeout: float) -> Any:
        from botocore.config import Config

        from westtek_core.aws import aws_client

        config = Config(
            connect_timeout=min(timeout, 10),
            read_timeout=timeout,
            retries={"max_attempts": 1, "mode": "standard"},
        )
        return aws_client(
            "bedrock-runtime",
            region_name=self.region,
            endpoint_url=self.endpoint_url or None,
            config=config,
        )

    def request(
        self, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> dict[str, Any]:
        """The ``converse`` keyword arguments (a pure builder, tested as a whole dict)."""
        converse: list[dict[str, Any]] = []
        for message in messages:
            if message.role == "user":
                _append(converse, "user", [{"text": message.content}])
            elif message.role == "assistant":
                blocks: list[dict[str, Any]] = (
                    [{"text": message.content}] if message.content else []
                )
                blocks += [
                    {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}}
                    for c in message.tool_calls
                ]
                _append(converse, "assistant", blocks)
            else:
                _append(
                    converse,
                    "user",
                    [
                        {
                            "toolResult": {
                                "toolUseId": message.tool_call_id,
                                "content": [{"json": json.loads(message.content)}],
                                "status": "error" if message.error else "success",
                            }
                        }
                    ],
                )
        kwargs: dict[str, Any] = {
            "modelId": self.model_id,
            "system": [{"text": system}],
            "messages": converse,
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature},
        }
        if tools:
            kwargs["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": t.name,
                            "description": t.description,
                            "inputSchema": {"json": t.parameters},
                        }
                    }
                    for t in tools
                ]
            }
        return kwargs

    def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        timeout: float,
    ) -> Turn:
        """One Converse call."""
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        try:
            response = self._client(self._timeout(timeout)).converse(
                **self.request(system, messages, tools)
            )
        except ReadTimeoutError as e:
            raise ProviderTimeout(f"Amazon Bedrock did not answer in time ({e})") from e
        except ClientError as e:
            error = e.response.get("Error", {})
            raise ProviderError(
                f"Amazon Bedrock refused the request: {error.get('Code')}: {error.get('Message')}"
            ) from e
        except BotoCoreError as e:
            raise ProviderError(f"Amazon Bedrock could not be reached: {e}") from e
        content = ((response.get("output") or {}).get("message") or {}).get("content") or []
        text = "".join(str(b["text"]) for b in content if "text" in b)
        calls = [
            ToolCall(
                str(b["toolUse"]["toolUseId"]),
                str(b["toolUse"]["name"]),
                dict(b["toolUse"].get("input") or {}),
            )
            for b in content
            if "toolUse" in b
        ]
        return Turn(text=text, tool_calls=calls)


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Converse wants user and assistant turns to alternate: merge consecutive ones."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})
