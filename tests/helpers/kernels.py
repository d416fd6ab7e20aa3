"""Running code in a real kernel and reading what came back on iopub: text, display updates,
widget comm messages (for the notebook layer's kernel tests)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpuoutlet_jupyter.server import ENV_SERVER_TOKEN, ENV_SERVER_URL

#: Variables a kernel must not inherit from the test process when a test chooses its path.
GPUOUTLET_VARIABLES = (
    ENV_SERVER_URL,
    ENV_SERVER_TOKEN,
    "GPUOUTLET_API_URL",
    "GPUOUTLET_SID",
    "GPUOUTLET_CREDENTIALS_FILE",
)
RENTAL_ID = re.compile(r"rent_[0-9A-Z]{20,}")  # the sandbox's ids: uppercase ULIDs


@dataclass
class Run:
    """One execute request: its reply and every iopub message it caused."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.reply["content"]["status"] == "ok")

    @property
    def text(self) -> str:
        return text_of(self.messages)

    @property
    def error(self) -> str:
        content = self.reply["content"]
        return "\n".join(content.get("traceback") or []) if content["status"] == "error" else ""


def text_of(messages: list[dict[str, Any]]) -> str:
    """Everything a person would read: streams, results, displays and their updates, errors."""
    parts: list[str] = []
    for msg in messages:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            parts.append(content["text"])
        elif kind in ("execute_result", "display_data", "update_display_data"):
            parts.append(str(content["data"].get("text/plain", "")))
            parts.append(str(content["data"].get("text/html", "")))
        elif kind == "error":
            parts.extend(content["traceback"])
    return "\n".join(parts)


def widget_states(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The final state of every widget model opened or updated, by comm id."""
    states: dict[str, dict[str, Any]] = {}
    for msg in messages:
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content.get("target_name") == "jupyter.widget":
            states[content["comm_id"]] = dict(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_msg" and content["comm_id"] in states:
            data = content.get("data", {})
            if data.get("method") == "update":
                states[content["comm_id"]].update(data.get("state", {}))
    return states


def kernel_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any gpuoutlet variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in GPUOUTLET_VARIABLES}
    env.update(extra or {})
    return env


async def execute(
    kc: Any,
    code: str,
    *,
    timeout: float = 60.0,
    on_message: Callable[[dict[str, Any]], Any] | None = None,
    on_other: Callable[[dict[str, Any]], None] | None = None,
) -> Run:
    """Run ``code``; ``on_message`` sees each iopub message as it arrives (it may be async).
    ``on_other`` gets the iopub messages of other requests read meanwhile (a background task's
    widget updates), which are otherwise dropped."""
    msg_id = kc.execute(code, allow_stdin=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    messages: list[dict[str, Any]] = []
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(
                f"no idle status within {timeout} s for {code!r}: {text_of(messages)}"
            )
        msg = await kc.get_iopub_msg(timeout=remaining)
        if msg["parent_header"].get("msg_id") != msg_id:
            if on_other is not None:
                on_other(msg)
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                break
            continue
        messages.append(msg)
        if on_message is not None:
            result = on_message(msg)
            if asyncio.iscoroutine(result):
                await result
    while True:
        reply = await kc.get_shell_msg(timeout=max(1.0, deadline - loop.time()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return Run(reply, messages)


async def ready_client(km: Any) -> Any:
    """A started client of the kernel manager `km`, once the kernel answers."""
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return kc


async def run_ok(kc: Any, code: str, **kwargs: Any) -> Run:
    """``execute``, asserting the cell succeeded."""
    run = await execute(kc, code, **kwargs)
    assert run.ok, f"{code!r} failed:\n{run.error}\n{run.text}"
    return run


async def comm_send(kc: Any, comm_id: str, data: dict[str, Any], *, timeout: float = 30.0) -> Run:
    """Send a widget's comm a message as the frontend does (a value typed, a button clicked:
    ``{"method": "update", "state": {...}}`` or ``{"method": "custom", "content": {...}}``);
    returns what the kernel published while handling it."""
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"buffer_paths": [], **data}})
    kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    messages: list[dict[str, Any]] = []
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no idle status within {timeout} s after {data!r}")
        reply = await kc.get_iopub_msg(timeout=remaining)
        if reply["parent_header"].get("msg_id") != msg_id:
            continue
        if reply["msg_type"] == "status":
            if reply["content"]["execution_state"] == "idle":
                return Run({"content": {"status": "ok"}}, messages)
            continue
        messages.append(reply)
