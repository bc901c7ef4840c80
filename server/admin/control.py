"""Controls of a running Ottla from outside its process, through its HTTP JSON API (`/api/`):
`ottla faults` here, and any other command that changes what no Kafka API reaches.

The HTTP address is `--http URL` when given; otherwise the broker says it, as DescribeConfigs
of its BROKER resource (`http.host`, `http.port`), asked through `--bootstrap` like the other
`ottla` commands. A broker started on a free Kafka port runs no HTTP listener unless asked
(`ottla serve --http-port N`, `running_broker(http_port=0)`): with `--http-port 0` its port is
known only from the ready line's `http=`, so pass that as `--http`.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Callable

from ottla.server.admin.client import ClientError, KafkaClient, kafka_error
from ottla.server.admin.output import as_json, table
from ottla.wire.api import ApiKey

_BROKER_RESOURCE = 4


class ControlChannel:
    """JSON requests to a running broker's `/api/`, mutations with its CSRF token."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token: str | None = None

    @classmethod
    def discover(cls, bootstrap: str, timeout: float = 30.0) -> ControlChannel:
        """The channel of the broker at `bootstrap`, from its `http.host` and `http.port`."""
        with KafkaClient(bootstrap, timeout=timeout) as client:
            brokers = client.metadata([])["brokers"]
            if not brokers:
                raise ClientError(f"{bootstrap} names no broker")
            node = str(brokers[0]["node_id"])
            body = {
                "resources": [{"resource_type": _BROKER_RESOURCE, "resource_name": node, "configuration_keys": ["http.host", "http.port"]}],
                "include_synonyms": False,
                "include_documentation": False,
            }
            _, response = client.call(ApiKey.DESCRIBE_CONFIGS, body)
        result = response["results"][0]
        if result["error_code"]:
            raise kafka_error(result["error_code"], result["error_message"], f"configs of broker {node}")
        configs = {entry["name"]: entry["value"] for entry in result["configs"]}
        if "http.port" not in configs:
            raise ClientError(f"{bootstrap} does not say an HTTP address (not an Ottla broker?): pass --http URL")
        port = int(configs["http.port"] or -1)
        if port <= 0:
            raise ClientError(
                f"{bootstrap} runs {'no HTTP listener' if port < 0 else 'its HTTP listener on a free port'}: "
                "start it with --http-port N, or pass --http with the ready line's http= address"
            )
        host = configs.get("http.host") or "127.0.0.1"
        host = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return cls(f"http://{host}:{port}", timeout)

    def get(self, path: str) -> Any:
        return self._request("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path, None)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        headers = {"Accept": "application/json"}
        if method != "GET":
            if self._token is None:
                self._token = self.get("/api/csrf")["token"]
            headers["X-CSRF-Token"] = self._token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise ClientError(f"{method} {path}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None


def channel_options() -> argparse.ArgumentParser:
    """The options every command on the control channel takes, as an argparse parent."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--bootstrap", "--bootstrap-server", "-b", dest="bootstrap", default="127.0.0.1:9092", help="host:port (default 127.0.0.1:9092)")
    options.add_argument("--http", metavar="URL", help="the broker's HTTP address (default: asked of --bootstrap)")
    options.add_argument("--json", action="store_true", help="machine-readable output")
    options.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker (default 30)")
    return options


def run_on_channel(args: argparse.Namespace, act: Callable[[ControlChannel], None]) -> int:
    """Run `act` on the channel `--http` names, else the one `--bootstrap` says; a ClientError
    is printed and exits 1."""
    try:
        act(ControlChannel(args.http, args.timeout) if args.http else ControlChannel.discover(args.bootstrap, args.timeout))
    except ClientError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 1
    return 0


def add_faults_command(commands: argparse._SubParsersAction) -> None:
    """`ottla faults add|list|remove|clear`."""
    faults = commands.add_parser("faults", help="set, list and remove faults of a running ottla (tests of client retries)")
    actions = faults.add_subparsers(dest="action", required=True)
    channel = channel_options()
    add = actions.add_parser("add", parents=[channel], help="set a fault; prints it, with its id")
    add.add_argument("--api", help="an API by name or key (produce, fetch, find_coordinator, 10, ...); default: any")
    add.add_argument("--topic")
    add.add_argument("--partition", type=int)
    add.add_argument("--node", type=int, help="only requests to this node id")
    add.add_argument("--client-id")
    action = add.add_mutually_exclusive_group()
    action.add_argument("--error", help="answer this error code, by name or number (NOT_LEADER_OR_FOLLOWER, 7)")
    action.add_argument("--drop", choices=["before", "after"], help="close the connection before or after the request takes effect")
    action.add_argument("--throttle-ms", type=int, help="answer with this throttle time and mute the connection as long")
    add.add_argument("--delay-ms", type=int, help="answer this much later (alone, or with one of the above)")
    add.add_argument("--count", type=int, help="fire this many times, then stop (default: until removed)")
    add.add_argument("--every", type=int, help="fire on every Nth matching request (default 1)")
    add.add_argument("--name", help="how logs and listings call it")
    actions.add_parser("list", parents=[channel], help="the faults set, and how often each fired")
    remove = actions.add_parser("remove", parents=[channel], help="remove faults by id")
    remove.add_argument("id", nargs="+", type=int)
    actions.add_parser("clear", parents=[channel], help="remove every fault")


def run_faults(args: argparse.Namespace) -> int:
    return run_on_channel(args, lambda channel: _faults(args, channel))


def _faults(args: argparse.Namespace, channel: ControlChannel) -> None:
    if args.action == "add":
        fields = ("api", "topic", "partition", "node", "client_id", "error", "drop", "throttle_ms", "delay_ms", "count", "every", "name")
        body = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
        _show(args, [channel.post("/api/faults", body)])
    elif args.action == "list":
        _show(args, channel.get("/api/faults")["faults"])
    elif args.action == "remove":
        _show(args, [channel.delete(f"/api/faults/{fault_id}") for fault_id in args.id])
    else:
        _show(args, channel.delete("/api/faults")["removed"])


def _show(args: argparse.Namespace, faults: list[dict[str, Any]]) -> None:
    if args.json:
        as_json(faults)
        return
    def match(fault: dict[str, Any]) -> str:
        parts = [f"{key}={fault[key]}" for key in ("api", "topic", "partition", "node", "client_id") if fault[key] is not None]
        return ",".join(parts) or "any request"
    def action(fault: dict[str, Any]) -> str:
        parts = [f"{key}={fault[key]}" for key in ("error", "drop", "throttle_ms", "delay_ms") if fault[key]]
        return ",".join(parts) or "-"
    table(
        ["ID", "NAME", "MATCHES", "ACTION", "COUNT", "EVERY", "FIRED"],
        [(f["id"], f["name"], match(f), action(f), f["count"] if f["count"] is not None else "-", f["every"], f["fired"]) for f in faults],
    )
