"""`ottla topics|groups|users|produce|consume|offsets`: Kafka's command-line tools for a person at
a terminal, against any broker. Tables by default, `--json` for scripts; a failure is one
line on stderr and exit status 1.

Only arguments and rendering live here; the operations are operations.AdminClient's, built on
`wire/` rather than kafka-python: the CLI is then a second, independent user of our codec
from the client side, and every request it sends is one we chose and can explain.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Callable, Literal

from ottla.server.admin.client import ClientError
from ottla.server.admin.operations import AdminClient, ConsumedRecord
from ottla.server.admin.output import as_json, table
from ottla.server.admin.sasl import MECHANISMS, SCRAM, SaslLogin, jaas_credentials
from ottla.wire.properties import decode_properties

# The SASL password of the ottla commands, when not given as a flag.
PASSWORD_VARIABLE = "OTTLA_SASL_PASSWORD"
SCRAM_NAMES = list(SCRAM)


def add_commands(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    # Kafka's tools spell it --bootstrap-server and kcat -b: a habit from either works here.
    common.add_argument(
        "--bootstrap", "--bootstrap-server", "-b", dest="bootstrap", default="127.0.0.1:9092",
        help="host:port[,host:port...] (default 127.0.0.1:9092)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker (default 30)")
    # A SASL_PLAINTEXT listener's login: as flags, or Kafka's tools' --command-config file.
    common.add_argument("--command-config", metavar="FILE", help="Kafka client properties: security.protocol, sasl.mechanism, sasl.jaas.config")
    common.add_argument("--sasl-mechanism", choices=MECHANISMS, help="log in with SASL")
    common.add_argument("--sasl-username")
    common.add_argument("--sasl-password", help=f"default: ${PASSWORD_VARIABLE} (a flag is visible to other users in ps)")

    topics = commands.add_parser("topics", help="list, create, describe, alter and delete topics").add_subparsers(dest="action", required=True)
    topics.add_parser("list", parents=[common], help="all topics")
    create = topics.add_parser("create", parents=[common], help="create a topic")
    create.add_argument("topic")
    create.add_argument("--partitions", type=int, default=-1, help="default: the broker's num.partitions")
    create.add_argument("--replication-factor", type=int, default=-1, help="default: the broker's default")
    create.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="a topic config; repeatable")
    describe = topics.add_parser("describe", parents=[common], help="partitions and configs of topics")
    describe.add_argument("topic", nargs="+")
    describe.add_argument("--all-configs", action="store_true", help="include configs left at their default")
    delete = topics.add_parser("delete", parents=[common], help="delete topics")
    delete.add_argument("topic", nargs="+")
    alter = topics.add_parser("alter", parents=[common], help="add partitions or change configs")
    alter.add_argument("topic")
    alter.add_argument("--partitions", type=int, help="grow the topic to this many partitions")
    alter.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set a topic config; repeatable")
    alter.add_argument("--delete", action="append", default=[], metavar="KEY", help="return a config to its default; repeatable")

    groups = commands.add_parser("groups", help="list, describe, delete consumer groups and reset their offsets").add_subparsers(
        dest="action", required=True
    )
    groups.add_parser("list", parents=[common], help="all groups")
    describe_group = groups.add_parser("describe", parents=[common], help="state, members, committed offsets and lag")
    describe_group.add_argument("group")
    delete_group = groups.add_parser("delete", parents=[common], help="delete empty groups")
    delete_group.add_argument("group", nargs="+")
    reset = groups.add_parser("reset-offsets", parents=[common], help="commit new positions for an empty group")
    reset.add_argument("group")
    reset.add_argument("--topic", required=True)
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true")
    target.add_argument("--to-latest", action="store_true")
    target.add_argument("--to-offset", type=int)

    users = commands.add_parser("users", help="list, add and delete SCRAM users").add_subparsers(dest="action", required=True)
    list_users = users.add_parser("list", parents=[common], help="users with SCRAM credentials, and their mechanisms")
    list_users.add_argument("user", nargs="*", help="only these users")
    add_user = users.add_parser("add", parents=[common], help="set a user's SCRAM password (read from stdin unless --password)")
    add_user.add_argument("user")
    add_user.add_argument("--password", help="the password (default: prompted at a terminal, else the first line of stdin)")
    add_user.add_argument("--mechanism", action="append", choices=SCRAM_NAMES, help="repeatable (default: both)")
    add_user.add_argument("--iterations", type=int, default=4096, help="4096..16384 (default 4096)")
    delete_user = users.add_parser("delete", parents=[common], help="delete a user's SCRAM credentials")
    delete_user.add_argument("user")
    delete_user.add_argument("--mechanism", action="append", choices=SCRAM_NAMES, help="repeatable (default: every one the user has)")

    produce = commands.add_parser("produce", parents=[common], help="send stdin lines as records (key<TAB>value or value)")
    produce.add_argument("topic")
    produce.add_argument("--partition", type=int, help="default: by key hash (as Kafka's producer), round robin without a key")

    consume = commands.add_parser("consume", parents=[common], help="print records (key<TAB>value or value per line)")
    consume.add_argument("topic")
    consume.add_argument("--from-beginning", action="store_true", help="start at the earliest offset (default: the end)")
    consume.add_argument("--group", help="start from and commit to this group's offsets")
    consume.add_argument("--follow", action="store_true", help="keep waiting for new records (default: stop at the end)")
    consume.add_argument("--partition", type=int, action="append", help="only this partition; repeatable")
    consume.add_argument("--max-messages", type=int, help="stop after this many records")

    offsets = commands.add_parser("offsets", parents=[common], help="earliest and latest offset of each partition")
    offsets.add_argument("topic")


def run(args: argparse.Namespace) -> int:
    command = COMMANDS[(args.command, getattr(args, "action", None))]
    try:
        with AdminClient(args.bootstrap, timeout=args.timeout, sasl=sasl_login(args)) as admin:
            command(admin, args)
    except ClientError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def sasl_login(args: argparse.Namespace) -> SaslLogin | None:
    """The login the flags ask for, over what --command-config says (Kafka's client keys:
    `sasl.mechanism` and the username and password of `sasl.jaas.config`); None for none."""
    mechanism, username, password = None, None, None
    if args.command_config:
        properties = _client_properties(args.command_config)
        protocol = properties.get("security.protocol", "PLAINTEXT").upper()
        if protocol in ("SSL", "SASL_SSL"):
            raise ClientError(f"{args.command_config}: security.protocol={protocol}: the ottla commands speak PLAINTEXT and SASL_PLAINTEXT")
        if protocol == "SASL_PLAINTEXT":
            mechanism = properties.get("sasl.mechanism", "GSSAPI")
            username, password = jaas_credentials(properties.get("sasl.jaas.config", ""))
    mechanism = args.sasl_mechanism or mechanism
    username = args.sasl_username or username
    password = args.sasl_password or os.environ.get(PASSWORD_VARIABLE) or password
    if mechanism is None:
        return None
    if not username or password is None:
        raise ClientError(f"SASL {mechanism} needs --sasl-username and --sasl-password (or ${PASSWORD_VARIABLE})")
    return SaslLogin(mechanism, username, password)


def _client_properties(path: str) -> dict[str, str]:
    """Kafka tools' --command-config, read as they read it (Utils.loadProps: Properties.load),
    so a sasl.jaas.config continued over several lines is whole."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return decode_properties(data)
    except ValueError as exc:
        raise ClientError(f"cannot read {path}: {exc}") from None


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ClientError(f"{flag} takes KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _plain(value: Any) -> Any:
    """A library result (a dataclass or a list of them) as JSON-ready dicts, fields in order."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return dataclasses.asdict(value)


# --- topics ---------------------------------------------------------------------------


def topics_list(admin: AdminClient, args: argparse.Namespace) -> None:
    topics = admin.list_topics()
    if args.json:
        as_json(_plain(topics))
    else:
        table(["TOPIC", "PARTITIONS", "INTERNAL"], [(t.name, t.partitions, t.internal) for t in topics])


def topics_create(admin: AdminClient, args: argparse.Namespace) -> None:
    created = admin.create_topic(args.topic, args.partitions, _pairs(args.config, "--config"), args.replication_factor)
    if args.json:
        as_json(_plain(created))
    else:
        print(f"created topic {created.topic} with {created.partitions} partition(s)")


def topics_describe(admin: AdminClient, args: argparse.Namespace) -> None:
    topics = admin.describe_topics(args.topic, all_configs=args.all_configs)
    if args.json:
        as_json(_plain(topics))
        return
    for topic in topics:
        overrides = ",".join(f"{c.name}={c.value}" for c in topic.configs if c.overridden)
        print(f"Topic: {topic.name}  TopicId: {topic.topic_id}  Partitions: {len(topic.partitions)}  Configs: {overrides or '-'}")
        table(
            ["PARTITION", "LEADER", "REPLICAS", "ISR"],
            [(p.partition, p.leader, ",".join(map(str, p.replicas)), ",".join(map(str, p.isr))) for p in topic.partitions],
        )
        if args.all_configs:
            table(["CONFIG", "VALUE", "OVERRIDDEN"], [(c.name, c.value, c.overridden) for c in topic.configs])


def topics_delete(admin: AdminClient, args: argparse.Namespace) -> None:
    admin.delete_topics(args.topic)
    if args.json:
        as_json({"deleted": args.topic})
    else:
        for name in args.topic:
            print(f"deleted topic {name}")


def topics_alter(admin: AdminClient, args: argparse.Namespace) -> None:
    changes = _pairs(args.set, "--set")
    if args.partitions is None and not changes and not args.delete:
        raise ClientError("nothing to alter: give --partitions, --set or --delete")
    if args.partitions is not None:
        admin.create_partitions(args.topic, args.partitions)
    if changes or args.delete:
        admin.alter_topic_configs(args.topic, set_configs=changes, delete_configs=args.delete)
    if args.json:
        as_json({"topic": args.topic, "partitions": args.partitions, "set": changes, "deleted": args.delete})
    else:
        print(f"altered topic {args.topic}")


# --- offsets, produce, consume --------------------------------------------------------


def offsets(admin: AdminClient, args: argparse.Namespace) -> None:
    partitions = admin.list_offsets(args.topic)
    if args.json:
        as_json({"topic": args.topic, "partitions": _plain(partitions)})
    else:
        table(["PARTITION", "EARLIEST", "LATEST", "RECORDS"], [(p.partition, p.earliest, p.latest, p.records) for p in partitions])


def _stdin_records() -> Iterator[tuple[bytes | None, bytes]]:
    """One record per stdin line: `key<TAB>value`, or a value alone."""
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\r\n")
        key, tab, value = line.partition(b"\t")
        yield (key, value) if tab else (None, line)


def produce(admin: AdminClient, args: argparse.Namespace) -> None:
    result = admin.produce(args.topic, _stdin_records(), partition=args.partition)
    if args.json:
        as_json(_plain(result))
    else:
        print(f"produced {result.records} record(s) to {args.topic}", file=sys.stderr)


def consume(admin: AdminClient, args: argparse.Namespace) -> None:
    reader = admin.consume(args.topic, args.from_beginning, args.group, args.partition, args.follow)
    progress = _Progress(reader.positions, reader.end_offsets)
    printed = 0
    try:
        for record in reader:
            _print_record(args, record)
            printed += 1
            if args.max_messages is not None and printed >= args.max_messages:
                return
            progress.show(reader.positions)
            if args.follow:
                sys.stdout.flush()
    finally:
        progress.clear()
        reader.close()
        sys.stdout.flush()


def _print_record(args: argparse.Namespace, record: ConsumedRecord) -> None:
    key = None if record.key is None else record.key.decode("utf-8", "replace")
    value = None if record.value is None else record.value.decode("utf-8", "replace")
    if args.json:
        as_json({"partition": record.partition, "offset": record.offset, "timestamp": record.timestamp, "key": key, "value": value})
    elif key is not None:
        sys.stdout.write(f"{key}\t{value or ''}\n")
    else:
        sys.stdout.write(f"{value or ''}\n")


class _Progress:
    """A one-line progress report on stderr, for reads that take a while at a terminal."""

    def __init__(self, start: dict[int, int], end: dict[int, int]) -> None:
        self.total = sum(max(end[p] - start[p], 0) for p in start)
        self.start = dict(start)
        self.started = time.monotonic()
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def show(self, positions: dict[int, int]) -> None:
        if not self.enabled or time.monotonic() - self.started < 1.0:
            return
        done = sum(positions[p] - self.start[p] for p in positions)
        sys.stderr.write(f"\r{done}/{self.total} records read")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# --- groups ---------------------------------------------------------------------------


def groups_list(admin: AdminClient, args: argparse.Namespace) -> None:
    groups = admin.list_groups()
    if args.json:
        as_json(_plain(groups))
    else:
        table(["GROUP", "STATE", "PROTOCOL TYPE"], [(g.group, g.state, g.protocol_type) for g in groups])


def groups_describe(admin: AdminClient, args: argparse.Namespace) -> None:
    group = admin.describe_group(args.group)
    if args.json:
        as_json(_plain(group))
        return
    print(f"Group: {group.group}  State: {group.state}  Protocol: {group.protocol or '-'}  Members: {len(group.members)}")
    table(
        ["TOPIC", "PARTITION", "COMMITTED", "LOG END", "LAG", "MEMBER"],
        [(o.topic, o.partition, o.committed, o.log_end, o.lag, o.member) for o in group.offsets],
    )


def groups_delete(admin: AdminClient, args: argparse.Namespace) -> None:
    admin.delete_groups(args.group)
    if args.json:
        as_json({"deleted": args.group})
    else:
        for group in args.group:
            print(f"deleted group {group}")


def groups_reset_offsets(admin: AdminClient, args: argparse.Namespace) -> None:
    target: Literal["earliest", "latest"] | int = "earliest" if args.to_earliest else "latest" if args.to_latest else args.to_offset
    positions = admin.reset_offsets(args.group, args.topic, target)
    rows = [(args.topic, partition, offset) for partition, offset in positions.items()]
    if args.json:
        as_json([{"topic": topic, "partition": partition, "offset": offset} for topic, partition, offset in rows])
    else:
        table(["TOPIC", "PARTITION", "NEW OFFSET"], rows)


# --- users ----------------------------------------------------------------------------


def users_list(admin: AdminClient, args: argparse.Namespace) -> None:
    users = admin.describe_scram_users(args.user)
    if args.json:
        as_json(_plain(users))
    else:
        table(["USER", "MECHANISM", "ITERATIONS"], [(u.user, name, iterations) for u in users for name, iterations in u.mechanisms.items()])


def users_add(admin: AdminClient, args: argparse.Namespace) -> None:
    password = args.password if args.password is not None else _read_password(args.user)
    names = args.mechanism or SCRAM_NAMES
    admin.add_scram_user(args.user, password, names, args.iterations)
    if args.json:
        as_json({"user": args.user, "mechanisms": names, "iterations": args.iterations})
    else:
        print(f"set {', '.join(names)} credentials of user {args.user}")


def users_delete(admin: AdminClient, args: argparse.Namespace) -> None:
    deleted = admin.delete_scram_user(args.user, args.mechanism or ())
    if args.json:
        as_json({"user": args.user, "deleted": deleted})
    else:
        print(f"deleted {', '.join(deleted)} credentials of user {args.user}")


def _read_password(user: str) -> str:
    """At a terminal, asked twice without echo; otherwise the first line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {user}: ")
        if getpass.getpass("again: ") != password:
            raise ClientError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ClientError("an empty password")
    return password


COMMANDS: dict[tuple[str, str | None], Callable[[AdminClient, argparse.Namespace], None]] = {
    ("topics", "list"): topics_list,
    ("topics", "create"): topics_create,
    ("topics", "describe"): topics_describe,
    ("topics", "delete"): topics_delete,
    ("topics", "alter"): topics_alter,
    ("groups", "list"): groups_list,
    ("groups", "describe"): groups_describe,
    ("groups", "delete"): groups_delete,
    ("groups", "reset-offsets"): groups_reset_offsets,
    ("users", "list"): users_list,
    ("users", "add"): users_add,
    ("users", "delete"): users_delete,
    ("produce", None): produce,
    ("consume", None): consume,
    ("offsets", None): offsets,
}
