"""Stopping a child process of the local stack (anvil, the dev node) by its PID.

`stop_process` asks a child to stop (SIGTERM to its PID), waits, and sends SIGKILL if it lingers;
`kill_process` sends SIGKILL at once (the crash case). Both do nothing for a process that has
already exited. Signals go to the PID only, never to a name or a process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

KILL_WAIT_SECONDS = 5.0


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
