"""Following the service in the background of a kernel: the panel's list, a widget's rental.

Widgets must be touched on the kernel's thread only, so live updates are an asyncio task on the
kernel's own event loop (ipykernel runs its cells and comms on it), never a thread. Each step
long-polls, so a waiting task costs one pending request and no CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..api import GpuOutletError

#: Seconds one background long-poll waits for a change (the displayed times move this often).
LIVE_WAIT_SECONDS = 10.0
#: Longest pause between retries after failed steps.
_MAX_BACKOFF = 30.0

#: One step: long-poll once and show the result; False when there is nothing more to follow.
Step = Callable[[], Awaitable[bool]]
#: Where a live view says that its updates paused or stopped ("" clears it), and whether it is bad.
Report = Callable[[str, bool], None]


def start_live(step: Step, report: Report, *, name: str) -> asyncio.Task[None] | None:
    """Run ``step`` again and again on the running loop; None when there is no running loop
    (plain IPython: the view is then updated only when asked)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.create_task(_repeat(step, report), name=name)


async def _repeat(step: Step, report: Report) -> None:
    failures = 0
    while True:
        try:
            more = await step()
        except asyncio.CancelledError:
            raise
        except GpuOutletError as exc:
            # A restarted server, a network blip, a 5xx: the next step may well work.
            failures += 1
            report(f"Live updates paused, retrying: {exc}", True)
            await asyncio.sleep(min(_MAX_BACKOFF, 2.0**failures))
            continue
        except Exception as exc:
            # A bug: say so in the view rather than in a log nobody reads.
            report(f"Live updates stopped ({type(exc).__name__}: {exc}).", True)
            return
        if failures:
            report("", False)
            failures = 0
        if not more:
            return
