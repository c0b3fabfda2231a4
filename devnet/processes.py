"""Start/stop lifecycle shared by the local stack's parts, and stopping a child process by PID.

`Lifecycle` is the context manager behind anvil, the dev node, the whole stack, the JSON-RPC
fault proxy and the SDK peer: `__enter__` is `start()`, and `__exit__` calls `stop()` whatever
happened in the `with` block.

    class Thing(Lifecycle):
        def start(self) -> Thing: ...
        def stop(self) -> None: ...

`stop_process` asks a child to stop (SIGTERM to its PID), waits, and sends SIGKILL if it lingers;
`kill_process` sends SIGKILL at once (the crash case). Both do nothing for a process that has
already exited. Signals go to the PID only, never to a name or a process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

KILL_WAIT_SECONDS = 5.0


class Lifecycle(ABC):
    """Something started by `start()` and stopped by `stop()`; stopped on leaving a `with`."""

    @abstractmethod
    def start(self) -> Self:
        """Start and return self once ready."""

    @abstractmethod
    def stop(self) -> None:
        """Stop; harmless when not started or already stopped."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(process: subprocess.Popen[Any] | None, timeout: float) -> None:
    """SIGTERM by PID and wait up to `timeout` seconds; SIGKILL if it is still running then."""
    if process is None or process.poll() is not None:
        return
    try:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=KILL_WAIT_SECONDS)
    except ProcessLookupError:
        pass


def kill_process(process: subprocess.Popen[Any] | None) -> None:
    """SIGKILL by PID and reap it: nothing is flushed or closed."""
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=KILL_WAIT_SECONDS)
