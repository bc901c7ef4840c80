"""Start, stop and restart a real `ottla serve` subprocess for the compat matrix.

Scenarios only see a `Target`: a bootstrap address and a `restart()` callable. That keeps them
broker-agnostic, so the same matrix can later run against the reference Apache Kafka for
differential tests.

The broker's stderr goes straight to a log file (never a pipe: a pipe nobody drains would block
the broker once its buffer fills); readiness is found by polling that file for the ready line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from compat import procfs
from compat.sockets import read_frame

REPO_ROOT = Path(__file__).resolve().parent.parent

# The ready line: `bootstrap=` is the first listener (every node's address, comma-separated, in a
# cluster); with several, ` listeners=NAME://HOST:PORT,...` names every one as advertised
# (server/cli.py), after ` http=URL` when there is an HTTP listener, which follows
# ` storage=postgresql` on the PostgreSQL engine.
READY_RE = re.compile(
    rb"^ottla ready bootstrap=(?P<host>[^\s,]+):(?P<port>\d+)(?P<more_nodes>(?:,\S+)*) data=(?P<data>\S+)(?: storage=\S+)?(?: http=(?P<http>\S+))?(?: listeners=(?P<listeners>\S+))?(?: \S+=\S+)*$",
    re.M,
)
# server/dispatch.py logs every request at debug level as "ottla.request: FETCH v16 from ...".
REQUEST_RE = re.compile(r"ottla\.request: (?P<api>[A-Z_]+) v(?P<version>\d+) ")


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> bool:
    """Whether `condition()` came true within `timeout` seconds, polled every 50 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class BrokerError(RuntimeError):
    """The broker did not start, or did not stop cleanly. `detail` holds its log tail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        # Raised into a pytest fixture, the log tail is the part that explains it.
        return f"{self.reason}\n{self.detail}" if self.detail else self.reason


class Target(Protocol):
    """What a scenario needs from a broker, whoever runs it."""

    @property
    def bootstrap(self) -> str: ...

    def restart(self) -> None: ...

    def log_tail(self) -> str: ...


class OttlaBroker:
    """One `python -m ottla serve` process on a free loopback port with its own data dir.

    `restart()` stops with SIGTERM (the broker must flush and exit 0) and starts again on the
    same data dir and, when it is still free, the same port: clients prefer a stable address.
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        log_level: str | None = None,
        settings: dict[str, str] | None = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        serve_args: list[str] | None = None,
        event_loop: str | None = None,
        cpus: str | None = None,
        storage: str | None = None,
        node_id: int | None = None,
    ) -> None:
        """`event_loop` is `ottla serve --event-loop`'s (default: the environment's
        COMPAT_EVENT_LOOP, else the broker's own default); `cpus` pins the broker to those CPUs
        from its start (taskset's list, "0" or "0,1"); `storage` is `ottla serve --storage`'s
        postgresql:// URL (client topics in that database, the rest still in the data dir);
        `node_id` is `--node-id`'s (brokers on one database are one cluster, each its own id)."""
        # Without a work dir the data and the log vanish on close(); pass one to keep the log.
        self._tmp = None if work_dir else tempfile.TemporaryDirectory(prefix="ottla-compat-")
        self.work_dir = Path(work_dir) if work_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.data_dir = self.work_dir / "data"
        self.log_path = self.work_dir / "broker.log"
        self.log_level = log_level
        self.settings = dict(settings or {})
        # ottla.testing's TestHooks as its flags (["--drop-produce-response-every", "3"]): a
        # broker with hooks runs as `python -m ottla.testing serve`, never plain `ottla serve`.
        self.test_hook_args: list[str] = []
        # Further `ottla serve` flags (["--nodes", "3"]).
        self.serve_args: list[str] = serve_args or []
        self.event_loop = event_loop or os.environ.get("COMPAT_EVENT_LOOP")
        self.cpus = cpus
        self.storage = storage
        self.node_id = node_id
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.host = "127.0.0.1"
        self.port = 0
        # Every listener's advertised "host:port" by name, from the ready line when there are
        # several (one alone is `bootstrap`).
        self.listeners: dict[str, str] = {}
        # The other nodes' "host:port", comma-separated after the first, when it runs --nodes N.
        self.more_nodes = ""
        # The HTTP listener's URL, when it runs one (`--http-port`).
        self.http: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        if self._proc is None:
            raise BrokerError("broker is not running")
        return f"{self.host}:{self.port}{self.more_nodes}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BrokerError("broker is not running")
        return self._proc.pid

    def rss_bytes(self) -> int:
        """Resident set size of the broker process, as ReferenceKafka.rss_bytes gives Kafka's."""
        return procfs.rss_bytes(self.pid)

    def start(self) -> None:
        if self._proc is not None:
            raise BrokerError("broker already running")
        port = self.port if self.port and _port_free(self.host, self.port) else 0
        self._spawn(port)

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """Signal (SIGTERM, or SIGINT as Ctrl-C sends), then wait; a broker that hangs or exits
        non-zero is a bug worth reporting."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is not None:
            raise BrokerError(f"broker had already exited {proc.returncode}", self.log_tail())
        proc.send_signal(signum)
        try:
            code = proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BrokerError(f"broker ignored {signum.name} for {self.stop_timeout:.0f}s; killed", self.log_tail())
        if code != 0:
            raise BrokerError(f"broker exited {code} after {signum.name}", self.log_tail())

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer ends a broker: it flushes nothing and gives up
        nothing (on PostgreSQL its lease lapses in its time); there is nothing left to stop."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop, and remove the temp dir even when stopping failed."""
        try:
            self.stop()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self) -> OttlaBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"broker log {self.log_path} (tail):\n{tail}"

    def log_lines(self) -> list[str]:
        """Every line the broker has logged so far, over all its starts, the harness's notes among them."""
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def requests_seen(self) -> dict[str, list[int]]:
        """API name -> versions clients sent, from a debug-level log (empty at other levels)."""
        seen: dict[str, set[int]] = {}
        for match in REQUEST_RE.finditer(self.log_path.read_text(errors="replace")):
            seen.setdefault(match["api"], set()).add(int(match["version"]))
        return {api: sorted(versions) for api, versions in sorted(seen.items())}

    def _command(self, port: int) -> list[str]:
        program = ["ottla.testing", "serve", *self.test_hook_args] if self.test_hook_args else ["ottla", "serve"]
        cmd = [
            *(["taskset", "--cpu-list", self.cpus] if self.cpus else []), sys.executable, "-m", *program,
            "--host", self.host, "--port", str(port), "--data-dir", str(self.data_dir),
        ]
        cmd += [arg for key, value in self.settings.items() for arg in ("--set", f"{key}={value}")]
        cmd += self.serve_args
        if self.storage:
            cmd += ["--storage", self.storage]
        if self.node_id is not None:
            cmd += ["--node-id", str(self.node_id)]
        if self.event_loop:
            cmd += ["--event-loop", self.event_loop]
        return cmd + ["--log-level", self.log_level] if self.log_level else cmd

    def _log_note(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"[compat harness] {text}\n")

    def _spawn(self, port: int) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self._command(port)
        self._log_note("starting: " + " ".join(cmd))
        start_at = self.log_path.stat().st_size
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + self.ready_timeout
        while True:
            with open(self.log_path, "rb") as log:
                log.seek(start_at)
                match = READY_RE.search(log.read())
            if match:
                break
            if proc.poll() is not None:
                raise BrokerError(f"broker exited {proc.returncode} before the ready line", self.log_tail())
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise BrokerError(f"no ready line within {self.ready_timeout:.0f}s", self.log_tail())
            time.sleep(0.01)
        self.host = match["host"].decode()
        self.port = int(match["port"])
        self.more_nodes = match["more_nodes"].decode()
        self.http = match["http"].decode() if match["http"] else None
        self.listeners = _listener_addresses(match["listeners"].decode()) if match["listeners"] else {}
        self._proc = proc


def _listener_addresses(listeners: str) -> dict[str, str]:
    """{"SSL": "localhost:9093", ...} from "PLAINTEXT://127.0.0.1:9092,SSL://localhost:9093"."""
    return dict(endpoint.split("://", 1) for endpoint in listeners.split(","))


def _port_free(host: str, port: int) -> bool:
    """Whether `port` can be bound again (SO_REUSEADDR, as asyncio's server does on POSIX)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# --- secured listeners: the security scenarios' broker (issue 18) ---------------------------

# Who the security scenarios connect as. alice may write and read every `compat-` topic; bob
# may only read and describe them; "client" is the principal of `ottla certs`' client
# certificate (CN=client) under PRINCIPAL_RULES, with alice's rights. Both users exist for
# PLAIN (the SASL_PLAINTEXT listener's JAAS config) and SCRAM-SHA-512 (the SASL_SSL listener).
ALICE = ("alice", "alice-secret")
BOB = ("bob", "bob-secret")
CERTIFICATE_USER = "client"
PRINCIPAL_RULES = "RULE:^CN=([^,]+),.*$/$1/,DEFAULT"
TOPIC_PREFIX = "compat-"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@dataclass(frozen=True)
class SecureListeners:
    """A broker secured by `secure()`: each listener's bootstrap and the files a client needs."""

    plaintext: str  # User:ANONYMOUS, a super user: where the scenarios create their topics
    sasl_ssl: str  # SCRAM-SHA-512
    sasl_plaintext: str  # PLAIN
    ssl: str  # mutual TLS: ssl.client.auth=required
    ca: Path
    client_certificate: Path
    client_key: Path


def security_settings(host: str, ports: dict[str, int], certs: Path) -> dict[str, str]:
    """Kafka's broker properties for PLAINTEXT, SASL_SSL, SASL_PLAINTEXT and SSL listeners on
    `ports` (by listener name), with StandardAuthorizer ACLs: the same on Ottla and on Kafka."""
    plain_jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required " + " ".join(
        f'user_{user}="{password}"' for user, password in (ALICE, BOB)) + ";"
    return {
        "listeners": ",".join(f"{name}://{host}:{port}" for name, port in ports.items()),
        "advertised.listeners": ",".join(f"{name}://{host}:{port}" for name, port in ports.items()),
        "listener.security.protocol.map": ",".join(f"{name}:{name}" for name in ports),
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(certs / "broker.p12"),
        "ssl.keystore.password": "ottla-dev",  # ottla.server.security.certs.KEYSTORE_PASSWORD
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs / "ca.pem"),
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": PRINCIPAL_RULES,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": plain_jaas,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "authorizer.class.name": STANDARD_AUTHORIZER,
        # PLAINTEXT is the set-up listener (and Kafka's controller listener): its anonymous
        # principal may do anything, so every refusal the scenarios see is an ACL's.
        "super.users": "User:ANONYMOUS",
    }


class Reconfigurable(Protocol):
    """A target that restarts with more broker properties (ReferenceKafka's in compat.__main__)."""

    work_dir: Path
    host: str
    port: int

    def reconfigure(self, settings: dict[str, str]) -> None: ...


def secure(target: Target) -> SecureListeners:
    """Restart `target` with `security_settings` (once: a secured target keeps them), create
    the SCRAM-SHA-512 users and the ACLs through its PLAINTEXT listener, and say where it listens.

    The credentials and ACLs go through the admin API (AlterUserScramCredentials, CreateAcls),
    as `kafka-configs` and `kafka-acls` would send them, so both brokers are set up alike."""
    existing: SecureListeners | None = getattr(target, "security", None)
    if existing is not None:
        return existing
    if not isinstance(target, OttlaBroker) and not hasattr(target, "reconfigure"):
        raise BrokerError(f"{type(target).__name__} cannot be restarted with secured listeners")
    securable: Reconfigurable = target  # type: ignore[assignment]
    certs = securable.work_dir / "certs"
    # `ottla certs`, as a user would run it (compat reaches Ottla only through its CLI and sockets).
    made = subprocess.run([sys.executable, "-m", "ottla", "certs", str(certs)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        raise BrokerError(f"ottla certs exited {made.returncode}", made.stderr)
    names = ("PLAINTEXT", "SASL_SSL", "SASL_PLAINTEXT", "SSL")
    ports = {"PLAINTEXT": securable.port, **{name: _free_port() for name in names[1:]}}
    settings = security_settings(securable.host, ports, certs)
    if isinstance(target, OttlaBroker):
        target.settings.update(settings)
        target.restart()
    else:
        securable.reconfigure(settings)
    address = {name: f"{securable.host}:{port}" for name, port in ports.items()}
    _grant(address["PLAINTEXT"])
    listeners = SecureListeners(address["PLAINTEXT"], address["SASL_SSL"], address["SASL_PLAINTEXT"], address["SSL"],
                                certs / "ca.pem", certs / "client.pem", certs / "client-key.pem")
    target.security = listeners  # type: ignore[attr-defined]
    return listeners


def _grant(bootstrap: str) -> None:
    """SCRAM-SHA-512 credentials for alice and bob, and the ACLs of the module comment."""
    from kafka.admin import (
        ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient, ResourcePattern, ResourceType,
        ScramMechanism, UserScramCredentialUpsertion,
    )

    def allow(user: str, operation: ACLOperation, kind: ResourceType, name: str, pattern: ACLResourcePatternType) -> ACL:
        return ACL(f"User:{user}", "*", operation, ACLPermissionType.ALLOW, ResourcePattern(kind, name, pattern))

    prefixed, literal = ACLResourcePatternType.PREFIXED, ACLResourcePatternType.LITERAL
    acls = []
    for writer in (ALICE[0], CERTIFICATE_USER):
        acls += [allow(writer, ACLOperation.ALL, ResourceType.TOPIC, TOPIC_PREFIX, prefixed),
                 allow(writer, ACLOperation.ALL, ResourceType.GROUP, "*", literal)]
    acls += [allow(BOB[0], operation, ResourceType.TOPIC, TOPIC_PREFIX, prefixed) for operation in (ACLOperation.READ, ACLOperation.DESCRIBE)]
    acls.append(allow(BOB[0], ACLOperation.READ, ResourceType.GROUP, "*", literal))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        failed = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password) for user, password in (ALICE, BOB)])
        refused = {user: why for user, why in failed.items() if why}
        if refused:
            raise BrokerError(f"AlterUserScramCredentials refused: {refused}")
        created = admin.create_acls(acls)
        if created["failed"]:
            raise BrokerError(f"CreateAcls refused: {created['failed']}")
    finally:
        admin.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- a cluster: the cluster scenarios' broker (issue 20) -------------------------------------

CLUSTER_NODES = 3
# Kafka's usual production shape: every partition on all three nodes, an acks=all write needing two.
CLUSTER_SETTINGS = {"default.replication.factor": str(CLUSTER_NODES), "min.insync.replicas": "2"}


class OttlaCluster(OttlaBroker):
    """`ottla serve --nodes 3` (three nodes in one process; `bootstrap` lists each) with an
    HTTP listener on a free port: the channel through which the cluster scenarios stop and
    start nodes (`/api/cluster`) and set faults (`/api/faults`), as `ottla cluster` and
    `ottla faults` do from a shell."""

    def __init__(self, work_dir: Path | None = None, **kwargs: Any) -> None:
        super().__init__(work_dir, **kwargs)
        self.serve_args = ["--nodes", str(CLUSTER_NODES), "--http-port", "0", *self.serve_args]
        self.settings = {**CLUSTER_SETTINGS, **self.settings}
        self._csrf: str | None = None

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One JSON request to the broker's `/api/`; a refusal raises BrokerError with its reason."""
        if self.http is None:
            raise BrokerError("the cluster runs no HTTP listener")
        headers = {"Accept": "application/json"}
        if method != "GET":
            if self._csrf is None:
                self._csrf = self.control("GET", "/api/csrf")["token"]
            headers["X-CSRF-Token"] = self._csrf or ""
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.http.rstrip("/") + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise BrokerError(f"{method} {path}: HTTP {exc.code} {exc.read().decode(errors='replace')[:300]}", self.log_tail()) from None
        except OSError as exc:
            raise BrokerError(f"{method} {path}: {exc}", self.log_tail()) from None

    def stop_node(self, node: int) -> None:
        """Stop a node as Kafka's controlled shutdown does: its partitions elect new leaders, then it closes."""
        self.control("POST", f"/api/cluster/nodes/{node}/stop", {})

    def crash_node(self, node: int) -> None:
        """Crash a node: unreachable, yet leading and in sync until broker.session.timeout.ms fences it."""
        self.control("POST", f"/api/cluster/nodes/{node}/crash", {})

    def start_node(self, node: int) -> None:
        """Start a stopped or crashed node again, or reconnect an isolated one."""
        self.control("POST", f"/api/cluster/nodes/{node}/start", {})

    def isolate_node(self, node: int) -> None:
        """Cut a node off: it accepts connections and never answers, and the cluster fences it."""
        self.control("POST", f"/api/cluster/nodes/{node}/isolate", {})

    def node_states(self) -> dict[int, str]:
        """Each node's state by id: "running", "stopped", "crashed", "shutting-down" or "isolated"."""
        return {node["node_id"]: node["state"] for node in self.control("GET", "/api/cluster/nodes")["nodes"]}

    def group_coordinator(self, group: str) -> int:
        """The node FindCoordinator names for `group`, asked of the running nodes in turn."""
        running = [node for node in self.control("GET", "/api/cluster/nodes")["nodes"] if node["state"] == "running"]
        for node in running:
            try:
                found = find_coordinator(node["host"], node["port"], group)
            except OSError:
                continue
            if found is not None:
                return found
        raise BrokerError(f"no running node of {[node['node_id'] for node in running]} named a coordinator for group {group}", self.log_tail())

    def add_fault(self, **fault: Any) -> int:
        """Set a fault (Faults.add's arguments); its id."""
        fault_id: int = self.control("POST", "/api/faults", fault)["id"]
        return fault_id

    def fired(self, fault_id: int) -> int:
        """How often a fault has fired so far (0 once it is gone without firing)."""
        faults = self.control("GET", "/api/faults")["faults"]
        return next((int(f["fired"]) for f in faults if f["id"] == fault_id), 0)

    def remove_fault(self, fault_id: int) -> int:
        """Remove a fault that is still set; how often it fired."""
        fired: int = self.control("DELETE", f"/api/faults/{fault_id}")["fired"]
        return fired

    def clear_faults(self) -> list[dict[str, Any]]:
        """Remove every fault; each as it was, with how often it fired."""
        removed: list[dict[str, Any]] = self.control("DELETE", "/api/faults")["removed"]
        return removed


class PostgresBrokers:
    """`nodes` `ottla serve --storage URL --node-id N` processes (N = 1..nodes) over one database:
    one Kafka cluster, each broker listed in Metadata while its lease lives. `bootstrap` lists
    every broker; `restart()` restarts them one at a time (a rolling restart: a SIGTERM'd broker
    gives its lease up, the others lead its partitions and coordinate its groups meanwhile, and it
    takes its share back when it returns), so clients ride it out as they would on Kafka."""

    def __init__(self, work_dir: Path, storage: str, nodes: int = 3, **broker: Any) -> None:
        """Each broker's data dir and log under `work_dir`/node-N; `broker` are OttlaBroker's
        further arguments, the same for every one."""
        self.work_dir = Path(work_dir)
        self.brokers = [OttlaBroker(self.work_dir / f"node-{node_id}", storage=storage, node_id=node_id, **broker)
                        for node_id in range(1, nodes + 1)]

    @property
    def bootstrap(self) -> str:
        return ",".join(broker.bootstrap for broker in self.brokers)

    def start(self) -> None:
        for broker in self.brokers:
            broker.start()
        self._settle()

    def restart(self) -> None:
        for broker in self.brokers:
            broker.restart()
        self._settle()

    def _settle(self) -> None:
        """Wait until every broker's Metadata lists all of them: until then a broker that has not
        yet read the others' leases leads and coordinates what will move to them, so a scenario
        would start in the middle of a leadership change no steady cluster has."""
        def settled() -> bool:
            try:
                return all(metadata_broker_count(broker.host, broker.port) == len(self.brokers) for broker in self.brokers)
            except OSError:
                return False

        ready_timeout = self.brokers[0].ready_timeout
        if not wait_for(settled, ready_timeout):
            raise BrokerError(f"the brokers did not all list each other within {ready_timeout:.0f}s", self.log_tail())

    def reconfigure(self, settings: dict[str, str]) -> None:
        """Every broker restarted, in turn, with these settings as well."""
        for broker in self.brokers:
            broker.settings.update(settings)
        self.restart()

    def close(self) -> None:
        """Stop every broker, even when one fails to stop; the first failure is raised."""
        failure: BrokerError | None = None
        for broker in self.brokers:
            try:
                broker.close()
            except BrokerError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def __enter__(self) -> PostgresBrokers:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 8) -> str:
        return "\n".join(broker.log_tail(lines) for broker in self.brokers)


# FindCoordinator v0 (api key 10, request header v1, response header v0): the oldest form every
# broker still serves, written by hand so the harness needs no client to ask who coordinates.
_FIND_COORDINATOR_V0 = struct.Struct(">hhih")


# Metadata v1 for no topic (an empty array; null would be every topic): request header v1.
_METADATA_V1 = struct.Struct(">hhih")


def metadata_broker_count(host: str, port: int, timeout: float = 5.0) -> int:
    """How many brokers a broker's Metadata lists, asked by hand as find_coordinator asks."""
    client_id = b"compat-harness"
    body = _METADATA_V1.pack(3, 1, 1, len(client_id)) + client_id + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        frame = read_frame(sock)
    if frame is None:
        raise ConnectionError(f"{host}:{port} closed the connection before answering Metadata")
    (brokers,) = struct.unpack_from(">i", frame, 4)  # after the correlation id
    return int(brokers)


def find_coordinator(host: str, port: int, group: str, timeout: float = 5.0) -> int | None:
    """The node id a broker names as `group`'s coordinator; None while it names none (an error)."""
    client_id, key = b"compat-harness", group.encode()
    body = _FIND_COORDINATOR_V0.pack(10, 0, 1, len(client_id)) + client_id + struct.pack(">h", len(key)) + key
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        frame = read_frame(sock)
    if frame is None:
        raise ConnectionError(f"{host}:{port} closed the connection before answering FindCoordinator")
    error, node = struct.unpack_from(">hi", frame, 4)  # after the correlation id
    return None if error else int(node)
