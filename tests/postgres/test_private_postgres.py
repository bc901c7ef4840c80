"""compat.postgres.PrivatePostgres: a real server that starts, serves its database to its user
over loopback TCP, and leaves nothing behind when it stops."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from unavailable import unavailable

from compat.postgres import PostgresUnavailable, PrivatePostgres


def _psql(url: str, sql: str) -> str:
    psql = shutil.which("psql")
    if psql is None:
        unavailable("psql is not on PATH")
    return subprocess.run([psql, "-X", "-A", "-t", "-c", sql, url], capture_output=True, text=True, check=True).stdout


def _running(pid: int) -> bool:
    """Whether `pid` is a live process. pg_ctl daemonizes the postmaster, so once stopped it is
    init's child, and an init that does not reap (some containers' PID 1) leaves a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_session_server_serves_its_database_to_its_user_with_fsync_on(private_postgres):
    answer = _psql(private_postgres.url, "SELECT current_user, current_database(), current_setting('fsync')")
    assert answer.strip() == "ottla|ottla|on"
    assert private_postgres.url.startswith("postgresql://ottla@127.0.0.1:")


def test_a_server_is_gone_after_its_block():
    try:
        server = PrivatePostgres(user="alice", database="wonderland")
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server:
        assert _psql(server.url, "SELECT current_user || '@' || current_database()").strip() == "alice@wonderland"
        pid = server.postmaster_pid()
        assert pid is not None
        directory, port = server.directory, server.port
    assert not directory.exists()
    assert not _running(pid)
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_a_failed_start_leaves_nothing_behind():
    try:
        server = PrivatePostgres(user='bad"name')
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with pytest.raises(RuntimeError, match="psql exited"):
        server.start()
    assert not server.directory.exists()
    assert server.postmaster_pid() is None
