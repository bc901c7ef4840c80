"""A consumer-group member driver running in the background, for the group scenarios.

The driver's `member` action (compat/drivers/__init__.py) streams JSON lines; this keeps
what it reported (each assignment, the records it read and committed) and lets a scenario
wait for a condition, close the member (it leaves the group), freeze it with SIGSTOP (it
stops heartbeating but keeps its sockets, like a hung process) or kill it with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable

from compat.clients import Client, DriverError
from compat.harness import REPO_ROOT


class GroupMember:
    def __init__(
        self, client: Client, bootstrap: str, topic: str, group: str, name: str, instance_id: str | None = None, session_timeout_ms: int = 6000,
        protocol: str = "classic",
    ) -> None:
        self.client = client
        self.name = name
        cmd = [*client.argv, "--bootstrap", bootstrap, "--topic", topic, "--action", "member", "--group", group,
               "--session-timeout-ms", str(session_timeout_ms)]
        if protocol != "classic":
            cmd += ["--group-protocol", protocol]
        if instance_id is not None:
            cmd += ["--instance-id", instance_id]
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.assignments: list[list[int]] = []
        self.records: list[list[Any]] = []
        # Where in `records` each reported batch began, and where each assignment arrived.
        self.batch_starts: list[int] = []
        self.assigned_at: list[int] = []
        self.final: dict[str, Any] | None = None
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"member-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._changed:
                if event.get("event") == "assigned":
                    self.assignments.append(event["partitions"])
                    self.assigned_at.append(len(self.records))
                elif event.get("event") == "records":
                    self.batch_starts.append(len(self.records))
                    self.records += event["records"]
                else:
                    self.final = event
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def assignment(self) -> list[int] | None:
        with self._changed:
            return self.assignments[-1] if self.assignments else None

    def keys(self) -> list[str]:
        with self._changed:
            return [key for _, _, key, _ in self.records]

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Block until `condition()` holds; DriverError naming `what` if it never does."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise DriverError(f"{self.name} exited {self.proc.returncode} while waiting for {what}", self.stderr_tail())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DriverError(f"{self.name}: no {what} within {timeout:.0f}s", self.stderr_tail())
                self._changed.wait(min(remaining, 0.5))

    def close(self, timeout: float = 60.0) -> None:
        """Ask the member to leave its group and exit; DriverError if it does not do so cleanly."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DriverError(f"{self.name} did not close within {timeout:.0f}s", self.stderr_tail()) from None
        self._reader.join(5)
        if self.proc.returncode != 0 or not self.final or "error" in self.final:
            raise DriverError(f"{self.name} closed badly: {self.final or f'exit {self.proc.returncode}'}", self.stderr_tail())

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stderr_tail(self, lines: int = 20) -> str:
        self._stderr.seek(0)
        return "\n".join(self._stderr.read().splitlines()[-lines:])
