"""The `ottla` command line: `serve` runs the broker; the other subcommands are a client
for any Kafka broker (server/admin/)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# The rest is imported inside main(), where a Ctrl-C while it loads (most of a start-up's
# time before the broker sets its handlers) is caught: the console script imports this module
# before main() can catch anything.
if TYPE_CHECKING:
    import asyncio

    from ottla.server.config import BrokerConfig
    from ottla.server.hooks import TestHooks


# Not Kafka's (9092-9094), Confluent's (8081-8083, 8088, 9021), the UIs' (8080), Prometheus's
# (9090), Grafana's (3000), the JMX exporter's usual 7071, kafka_exporter's 9308, Redpanda's (9644)
# nor a managed Kafka's listeners (9094, 9096, 9098): beside all of them on one laptop.
DEFAULT_HTTP_PORT = 8092
# The event loops a broker can run on: asyncio's own, or uvloop's (libuv's, in C; the `uvloop`
# package, not a dependency) while the benchmarks decide whether it pays.
EVENT_LOOPS = ("asyncio", "uvloop")
# OTTLA_ variables the client subcommands read (server/admin/commands.py), set in the same
# shells as a broker's: no broker setting, so `ottla serve` passes them over without a word.
CLIENT_VARIABLES = frozenset({"OTTLA_SASL_PASSWORD"})


def _parser(serving: bool = False) -> argparse.ArgumentParser:
    """Every subcommand's arguments; only `serve`'s when `serving`, so that a broker's start
    does not import the admin client (a parser it would never use)."""
    parser = argparse.ArgumentParser(prog="ottla", description="A Kafka wire-protocol compatible broker, and a client for any Kafka.")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the broker")
    # Flag defaults are None so that an unset flag does not hide the same setting from
    # --config, the environment or --set; the registry holds the real defaults.
    serve.add_argument("--config", metavar="FILE", help="a Kafka server.properties file")
    serve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="one setting by Kafka name; repeatable")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1); 0.0.0.0 or :: binds every interface")
    serve.add_argument("--port", help="port to listen on; 0 picks a free one (default 9092)")
    store = serve.add_mutually_exclusive_group()
    store.add_argument("--data-dir", help="log directory, or several comma-separated, as Kafka's log.dirs (default ./ottla-data)")
    store.add_argument("--memory", action="store_true", help="keep everything in memory, write no files")
    serve.add_argument(
        "--storage", metavar="postgresql://USER@HOST/DB",
        help="keep topics, records, offsets and transactions in this PostgreSQL database (the postgresql extra: "
             "pip install 'ottla[postgresql]'); brokers on one database, each its own --node-id, are one cluster. "
             "What is not in it yet stays in --data-dir; the broker logs which at start (default: the local engine alone)",
    )
    serve.add_argument("--node-id", help="this broker's node id (default 1)")
    serve.add_argument(
        "--nodes", type=int, default=1, metavar="N",
        help="run a cluster of N nodes in this process, node ids from --node-id, each on its own port (default 1)",
    )
    serve.add_argument("--racks", metavar="A,B,...", help="the nodes' racks, one per node (rack-aware placement, fetch from a follower)")
    serve.add_argument(
        "--advertised-host",
        help="host name given to clients (default: --host; for 0.0.0.0 or ::, this machine's name, as Kafka advertises a listener bound to every interface)",
    )
    serve.add_argument("--http-port", help=f"HTTP listener port (console, /metrics, /api/); 0 picks a free one, -1 none (default {DEFAULT_HTTP_PORT})")
    serve.add_argument("--http-host", help="address the HTTP listener binds (default 127.0.0.1)")
    serve.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="text", choices=["text", "json"], help="json: one object per line")
    serve.add_argument(
        "--event-loop", default="asyncio", choices=EVENT_LOOPS,
        help="the event loop the broker runs on (default asyncio); uvloop needs the uvloop package, and is for measuring",
    )
    serve.add_argument(
        "--add-scram", action="append", default=[], metavar="CREDENTIAL",
        help="a SCRAM user set at start, as kafka-storage format takes it: 'SCRAM-SHA-256=[name=alice,password=...]'; repeatable",
    )
    certs = commands.add_parser("certs", help="write a development CA, broker and client certificates for trying TLS")
    certs.add_argument("directory", help="where to write them (created if missing)")
    if serving:
        return parser
    from ottla.server.admin.cluster import add_cluster_command
    from ottla.server.admin.commands import add_commands
    from ottla.server.admin.control import add_faults_command

    add_commands(commands)
    add_faults_command(commands)
    add_cluster_command(commands)
    return parser


class _VersionAction(argparse.Action):
    """argparse's `version` action, but the version is read only when asked for: reading it
    imports importlib.metadata, some 10 ms of CPU that every start would otherwise spend."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help="show program's version number and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog} {_version()}")
        parser.exit()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("ottla")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def main(argv: list[str] | None = None, test_hooks: TestHooks | None = None) -> int:
    """`test_hooks` come only from `python -m ottla.testing serve`."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(serving=argv[:1] == ["serve"]).parse_args(argv)
    if args.command == "certs":
        return _write_certificates(args.directory)
    if args.command == "cluster":
        from ottla.server.admin.cluster import run_cluster

        return run_cluster(args)
    if args.command == "faults":
        from ottla.server.admin.control import run_faults

        return run_faults(args)
    if args.command != "serve":
        from ottla.server.admin.commands import run

        return run(args)
    try:
        return _start(args, test_hooks)
    except KeyboardInterrupt:
        # Ctrl-C before the broker's own handler is set stops start-up as it stops the broker:
        # quietly, with the shell's status for SIGINT.
        return 130


def _start(args: argparse.Namespace, test_hooks: TestHooks | None) -> int:
    """`ottla serve`: check what was asked for, then run the broker until SIGINT or SIGTERM."""
    import asyncio

    from ottla.server.config import ConfigError
    from ottla.server.logs import configure
    from ottla.server.security.listeners import ListenerError, configured_listeners

    configure(args.log_level, args.log_format)
    try:
        config = broker_config(args)
    except ConfigError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 2
    if args.nodes < 1:
        print(f"ottla: --nodes must be at least 1, not {args.nodes}", file=sys.stderr)
        return 2
    racks = args.racks.split(",") if args.racks else []
    if racks and len(racks) != args.nodes:
        print(f"ottla: --racks names one rack per node: {args.nodes} node(s), {len(racks)} rack(s)", file=sys.stderr)
        return 2
    try:
        # Node k of a cluster listens on each fixed port + k - 1 (0 stays 0: a free port each).
        highest = max(listener.port for listener in configured_listeners(config))
    except ListenerError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 2
    if highest + args.nodes - 1 > 65535:
        print(f"ottla: --nodes {args.nodes} needs ports {highest} to {highest + args.nodes - 1}, past 65535: node k listens on the port + k - 1", file=sys.stderr)
        return 2
    _raise_open_file_limit()
    try:
        loop_factory = event_loop_factory(args.event_loop)
    except ImportError as exc:
        print(f"ottla: --event-loop {args.event_loop}: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve(config, test_hooks, args.add_scram, args.nodes, racks, args.storage))


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the loop of EVENT_LOOPS named `name`; None is asyncio's default. Raises
    ImportError for uvloop where the package is not installed."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def _write_certificates(directory: str) -> int:
    from pathlib import Path

    from ottla.server.security.certs import write

    try:
        written = write(Path(directory).resolve())
    except OSError as exc:
        # mkdir's "File exists" for a path that is a file says less than what is wrong with it.
        reason = "Not a directory" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
        print(f"ottla: cannot write certificates to {directory}: {reason}", file=sys.stderr)
        return 1
    print(f"# Development certificates in {written.directory} (CA: {written.ca}). Broker settings (server.properties):")
    print(written.server_properties())
    print("\n# Clients:")
    print(written.client_settings())
    return 0


def _raise_open_file_limit() -> None:
    """Every connection and every segment file holds a descriptor, and a shell's soft
    limit is often 1,024: lift it to the hard limit, as the JVM does for Kafka (MaxFDLimit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # a hard limit the platform will not grant as soft (macOS: above OPEN_MAX)


def broker_config(args: argparse.Namespace) -> BrokerConfig:
    """Settings from, lowest precedence first: defaults, --config, OTTLA_* variables, --set, flags."""
    from ottla.server.config import BrokerConfig, environment_settings, load_properties, set_settings

    config = BrokerConfig.from_settings()
    if args.config:
        config = config.updated(load_properties(args.config))
    config = config.updated(environment_settings({name: value for name, value in os.environ.items() if name not in CLIENT_VARIABLES}))
    config = config.updated(set_settings(args.set))
    flags: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "data.dir": args.data_dir,
        "node.id": args.node_id,
        "advertised.host": args.advertised_host,
        "http.port": args.http_port,
        "http.host": args.http_host,
    }
    config = config.updated({name: value for name, value in flags.items() if value is not None})
    config = _advertise_host_name(config)
    if "http.port" not in config.explicit and config.port != 0:
        # A broker a person starts gets its console; one on a free port (tests, benchmarks,
        # tools) does not unless asked. Not explicit: a taken 8092 then falls back to a free port.
        config = config.with_values({"http.port": DEFAULT_HTTP_PORT})
    if args.memory:
        config = config.updated({"data.dir": None})
    return config


# Bind addresses that stand for every interface (a listener without a host binds 0.0.0.0): a
# client cannot connect to one from elsewhere.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})


def _advertise_host_name(config: BrokerConfig) -> BrokerConfig:
    """`config`, advertising this machine's canonical host name for each listener that binds
    every interface and that nothing names a host to advertise for: what Kafka advertises for a
    listener without a host (ListenerInfo.withWildcardHostnamesResolved:
    InetAddress.getLocalHost().getCanonicalHostName()). The first listener gets it as
    `advertised.host`; the others as their `advertised.listeners` entries (an entry without a
    host is completed; a listener without one is advertised at its bound port). Kafka refuses
    to start with `0.0.0.0` itself in `listeners` and no `advertised.listeners`; Ottla's
    `--host 0.0.0.0` is its way to bind every interface, so it is read as the host-less
    listener (on the first listener only: an extra listener at `0.0.0.0` without
    `advertised.listeners` is refused, as Kafka refuses it). Not explicit: DescribeConfigs shows
    it as a default. ConfigError where the machine's name does not resolve, as Kafka's UnknownHostException
    stops it."""
    from ottla.server.security.listeners import ListenerError, configured_listeners, parse_endpoints

    try:
        first, *others = configured_listeners(config)
        given = parse_endpoints("advertised.listeners", dict(config.listener_settings).get("advertised.listeners", ""))
    except ListenerError:
        return config  # refused with its own message before the broker starts
    named = {endpoint.name: endpoint for endpoint in given}
    unnamed = [
        listener for listener in others
        if (not named[listener.name].host if listener.name in named else listener.host in WILDCARD_HOSTS)
    ]
    values: dict[str, str] = {}
    if config.advertised_host is None and first.advertised_host in WILDCARD_HOSTS:
        values["advertised.host"] = _canonical_host_name(first.host)
    if unnamed:
        canonical = _canonical_host_name(unnamed[0].host)
        endpoints = {endpoint.name: (endpoint.host, endpoint.port) for endpoint in given}
        for listener in unnamed:
            endpoints[listener.name] = (canonical, named[listener.name].port if listener.name in named else 0)
        values["advertised.listeners"] = ",".join(
            f"{name}://{f'[{host}]' if ':' in host else host}:{port}" for name, (host, port) in endpoints.items()
        )
    return config.with_values(values) if values else config


def _canonical_host_name(bound: str) -> str:
    """InetAddress.getLocalHost().getCanonicalHostName(): this machine's name, resolved and
    looked up again; the address where the reverse lookup fails. ConfigError naming `bound`,
    the wildcard host it stands for, where the name does not resolve."""
    import socket

    from ottla.server.config import ConfigError

    name = socket.gethostname()
    try:
        address = socket.getaddrinfo(name, None)[0][4][0]
    except OSError as exc:
        raise ConfigError(f"cannot advertise this machine's name {name} for host {bound}: {exc.strerror or exc}; give --advertised-host") from None
    try:
        return socket.gethostbyaddr(str(address))[0]
    except OSError:
        return str(address)  # getCanonicalHostName's answer where the reverse lookup fails


async def _serve(
    config: BrokerConfig, test_hooks: TestHooks | None, add_scram: list[str], nodes: int = 1, racks: list[str] | None = None, storage_url: str | None = None
) -> int:
    import asyncio
    import gc
    import signal

    from ottla.server.broker import Broker
    from ottla.server.security.listeners import ListenerError

    # An --add-scram value that cannot be read (SASL is imported only for one).
    unreadable: tuple[type[Exception], ...] = ()
    if add_scram:
        from ottla.server.security.sasl import SaslConfigError

        unreadable = (SaslConfigError,)
    try:
        broker = Broker(config, test_hooks=test_hooks, add_scram=add_scram, nodes=nodes, racks=racks or (), storage_url=storage_url)
    except ValueError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 2
    except unreadable as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # A database that cannot be used at start (the engine is imported only for one).
    unusable: tuple[type[Exception], ...] = ()
    if storage_url is not None:
        if not storage_url.startswith(("postgresql://", "postgres://")):
            print(f"ottla: --storage takes a postgresql://USER@HOST/DB URL, not {storage_url!r}", file=sys.stderr)
            return 2
        try:
            from ottla.storage.postgresql.engine import DatabaseUnavailable
        except ImportError as exc:
            print(f"ottla: --storage needs the postgresql extra (pip install 'ottla[postgresql]'): {exc}", file=sys.stderr)
            return 2
        unusable = (DatabaseUnavailable,)
    try:
        await broker.start()
    except unusable as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 1
    except ListenerError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ottla: {_start_failure(config, exc)}", file=sys.stderr)
        return 1
    data = "memory" if broker.data_dir is None else str(broker.data_dir)
    if storage_url is not None:
        data += " storage=postgresql"
    http = "" if broker.http is None else f" http={broker.http.url}"
    # bootstrap= is the first listener; with more, all of them follow, as advertised.
    listeners = f" listeners={broker.advertised_listeners()}" if len(broker.listeners) > 1 else ""
    # What start-up built (modules, message schemas, configs, the logs' state) lives as long as
    # the broker: out of the cycle collector's sight, a full collection walks only what serving
    # made since. It walked some 50,000 objects, about 20 ms of CPU with the loop stopped, inside
    # the latency of every request then in flight; about 23,000 now (the lazily loaded handlers).
    gc.freeze()
    print(f"ottla ready bootstrap={broker.bootstrap_servers} data={data}{http}{listeners}", file=sys.stderr, flush=True)
    await stop.wait()
    await broker.stop()
    return 0


def _start_failure(config: BrokerConfig, exc: OSError) -> str:
    """What stopped start-up. A file system call names its path in the error (mkdir, open) and
    a socket's bind never does, so the path tells a data directory that cannot be used from an
    address that cannot be listened on. The address named is the one that failed: the HTTP
    listener's or a cluster node's, not necessarily the broker's own host and port."""
    if exc.filename is not None:
        where = "" if str(exc.filename) == str(config.data_dir) else f" ({exc.filename})"
        # mkdir's "File exists" for a file where a directory belongs says less than what is wrong.
        problem = "Not a directory" if isinstance(exc, FileExistsError) and not os.path.isdir(exc.filename) else exc.strerror or str(exc)
        return f"cannot use data directory {config.data_dir}: {problem}{where}"
    import re
    import socket

    if exc.strerror and exc.strerror.startswith("cannot listen"):
        # The HTTP listener's own words, less what socket.create_server appends ("(while
        # attempting to bind on address ...)"): the address is in them already.
        return exc.strerror.partition(" (while attempting")[0]
    # A host that does not resolve: a getaddrinfo error's errno is not one os.strerror knows.
    reason = str(exc.strerror) if isinstance(exc, socket.gaierror) else os.strerror(exc.errno) if exc.errno else str(exc)
    # asyncio's create_server rewords a bind error, naming the address it tried as a tuple.
    bound = re.search(r"bind on address \('([^']*)', (\d+)", str(exc))
    host, port = bound.groups() if bound else (config.host, str(config.port))
    return f"cannot listen on {f'[{host}]' if ':' in host else host}:{port}: {reason}"
