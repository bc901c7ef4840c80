"""A private PostgreSQL server for tests: `with PrivatePostgres() as pg: pg.url`.

Each one is a fresh cluster: `initdb` into a temporary directory, `pg_ctl start` on a free
loopback port with its unix socket in that directory, one login role and one database it owns
(`pg.url` = ``postgresql://USER@127.0.0.1:PORT/DB``, trust authentication, loopback only).
Leaving the block stops the server and removes the directory, also when start-up failed halfway.

The server runs with fsync on, as a real deployment does, so commit latency in tests is the real
thing; only initdb's own final sync of the template files is skipped (`--no-sync`): a crash of the
machine would lose a throw-away cluster, nothing else, and it saves most of a second.

Binaries: `pg_ctl` on PATH, else Debian's /usr/lib/postgresql/<major>/bin (the newest major), where
the `postgresql` package installs them off PATH; `python -m compat.install` installs it on a clean
machine. initdb and postgres refuse to run as root, so as root they run as the unprivileged
`postgres` user (Debian's package creates it), which owns the temporary directory.

`python -m compat.postgres` starts one and prints its URL until Ctrl-C.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"
SUPERUSER = "postgres"
_START_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries, or a user to run them as, are not on this machine."""


def server_bin_dir() -> Path:
    """The folder holding initdb, pg_ctl and postgres, or PostgresUnavailable."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        folder = Path(on_path).resolve().parent
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    majors = sorted(
        (p for p in DEBIAN_ROOT.glob("*/bin") if (p / "pg_ctl").exists() and p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
    )
    if majors:
        return majors[-1]
    raise PostgresUnavailable(f"no pg_ctl on PATH nor under {DEBIAN_ROOT}/*/bin: run `python -m compat.install`")


def _run_as() -> str | None:
    """The user initdb and postgres run as: `postgres` when we are root, ourselves otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root and no {SERVICE_USER!r} user to run PostgreSQL as") from None
    return SERVICE_USER


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivatePostgres:
    """One throw-away PostgreSQL cluster on loopback; see the module docstring.

    `close()` is idempotent and also runs at interpreter exit, so an aborted test run does not
    leave a postmaster behind.
    """

    def __init__(self, *, user: str = "ottla", database: str = "ottla") -> None:
        self.user = user
        self.database = database
        self.bin_dir = server_bin_dir()
        self._run_user = _run_as()
        self.directory = Path(tempfile.mkdtemp(prefix="ottla-pg-"))
        self.data_dir = self.directory / "data"
        self.log_file = self.directory / "server.log"
        self.port = 0
        self._started = False
        self._closed = False
        atexit.register(self.close)

    @property
    def socket_dir(self) -> Path:
        return self.directory

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def superuser_url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/template1"

    def start(self) -> PrivatePostgres:
        try:
            if self._run_user is not None:
                shutil.chown(self.directory, user=self._run_user)
            self._pg(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
            )
            self._start_on_free_port()
            # Renaming initdb's `postgres` database is a catalog update; CREATE DATABASE would copy
            # and fsync a template (half a second or more on a busy machine).
            self.psql(
                f'CREATE ROLE "{self.user}" LOGIN',
                f'ALTER DATABASE postgres RENAME TO "{self.database}"',
                f'ALTER DATABASE "{self.database}" OWNER TO "{self.user}"',
            )
        except BaseException:
            self.close()
            raise
        return self

    def _start_on_free_port(self) -> None:
        """pg_ctl start, on a new port if another process took the one we picked meanwhile."""
        for attempt in range(_START_ATTEMPTS):
            self.port = _free_port()
            try:
                self._pg_ctl_start()
            except RuntimeError:
                if attempt + 1 == _START_ATTEMPTS or "Address already in use" not in self.server_log():
                    raise
                continue
            self._started = True
            return

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=on "
            "-c max_connections=50"
        )
        self._pg("pg_ctl", "start", "-w", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options)

    def stop(self) -> None:
        """Stop the server and keep its data, as an operator's restart does (a fast shutdown):
        connections are closed and new ones refused until `start_again`."""
        self._pg("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))

    def start_again(self) -> None:
        """Start the server `stop` stopped, on the same port."""
        self._pg_ctl_start()

    def psql(self, *statements: str) -> str:
        """Run each statement on its own (CREATE DATABASE refuses a transaction block) as the
        superuser over the unix socket; returns psql's unaligned output."""
        args = [str(self._psql()), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, "-d", "template1"]
        for statement in statements:
            args += ["-c", statement]
        return self._run(args)

    def _psql(self) -> Path:
        beside = self.bin_dir / "psql"
        if beside.exists():
            return beside
        on_path = shutil.which("psql")
        if on_path is None:
            raise PostgresUnavailable("no psql beside pg_ctl nor on PATH")
        return Path(on_path)

    def server_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from its pid file; None when it is not running."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _pg(self, tool: str, *args: str) -> str:
        return self._run([str(self.bin_dir / tool), *args])

    def _run(self, args: list[str]) -> str:
        proc = subprocess.run(
            args, cwd=self.directory, user=self._run_user, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, check=False,
        )
        if proc.returncode != 0:
            log_tail = self.server_log()[-2000:]
            raise RuntimeError(
                f"{Path(args[0]).name} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}"
                + (f"\nserver log:\n{log_tail}" if log_tail else "")
            )
        return proc.stdout

    def close(self) -> None:
        """Stop the server and remove the directory; a postmaster that ignores pg_ctl is killed.

        Immediate shutdown: no shutdown checkpoint (it would fsync everything the tests wrote,
        seconds on a busy machine) for a cluster that is deleted the moment it stops."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            if self._started or self.postmaster_pid() is not None:
                try:
                    self._pg("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir))
                except RuntimeError:
                    pid = self.postmaster_pid()
                    if pid is not None:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def main() -> int:
    with PrivatePostgres() as pg:
        print(pg.url, flush=True)
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
