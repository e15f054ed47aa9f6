"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint with ``tools``, through urllib.

vLLM, Ollama and llama.cpp's server speak it; only the standard library is used.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
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
    env_default,
)
from westtek_core.agents.tools import Tool, dumps


class OpenAIProvider(Provider):
    """Any OpenAI-compatible ``/v1/chat/completions`` endpoint with tools."""

    base_url = Unicode(
        config=True,
        help="The API's base URL, up to and including /v1 (vLLM, Ollama, llama.cpp server). "
        "Default: $OPENAI_BASE_URL, else http://127.0.0.1:8000/v1.",
    )

    _default_base_url = default("base_url")(
        env_default("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    )

    model = Unicode(
        config=True,
        help="The model name the endpoint serves. Default: $OPENAI_MODEL, else 'default'.",
    )

    _default_model = default("model")(env_default("OPENAI_MODEL", "default"))

    api_key = Unicode(
        config=True,
        help="Bearer token for the endpoint (empty: none). Default: $OPENAI_API_KEY.",
    )

    _default_api_key = default("api_key")(env_default("OPENAI_API_KEY", ""))

    max_tokens = Int(2048, config=True, help="Most tokens the model may answer with.")
    temperature = Float(0.0, config=True, help="Sampling temperature (0: most deterministic).")

    def request(
        self, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> dict[str, Any]:
        """The chat-completions request body (a pure builder, tested as a whole dict)."""
        chat: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for message in messages:
            if message.role == "tool":
                chat.append(
                    {
                        "role": "tool",
                        "tool_call_id": message.tool_call_id,
                        "content": message.content,
                    }
                )
            elif message.role == "assistant":
                entry: dict[str, Any] = {"role": "assistant", "content": message.content or None}
                if message.tool_calls:
                    entry["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": dumps(c.arguments)},
                        }
                        for c in message.tool_calls
                    ]
                chat.append(entry)
            else:
                chat.append({"role": "user", "content": message.content})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in tools
            ]
            body["tool_choice"] = "auto"
        return body

    def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        timeout: float,
    ) -> Turn:
        """One chat-completions call."""
        import socket

        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = json.dumps(self.request(system, messages, tools)).encode()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self._timeout(timeout)) as response:
                payload = json.loads(response.read())
        except TimeoutError as e:
            raise ProviderTimeout(
                f"the model at {self.base_url} did not answer within "
                f"{time.monotonic() - started:.0f} s"
            ) from e
        except urllib.error.HTTPError as e:
            detail = e.read()[:300].decode("utf-8", "replace")
            raise ProviderError(f"the model at {self.base_url} answered {e.code}: {detail}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise ProviderTimeout(f"the model at {self.base_url} did not answer in time") from e
            raise ProviderError(
                f"the model at {self.base_url} could not be reached: {e.reason}"
            ) from e
        except ValueError as e:
            raise ProviderError(f"the model at {self.base_url} answered something not JSON") from e
        try:
            message = payload["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as e:
            raise ProviderError(f"the model at {self.base_url} answered without a message") from e
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = {"_unparsable": function.get("arguments")}
            calls.append(ToolCall(str(call.get("id")), str(function.get("name")), arguments))
        return Turn(text=str(message.get("content") or ""), tool_calls=calls)
