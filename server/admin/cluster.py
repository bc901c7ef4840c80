"""`ottla cluster nodes|stop-node|start-node|isolate-node|move-leader|elect-preferred`: the node
controls of a running `ottla serve --nodes N`, from outside its process, over the control
channel `ottla faults` uses (its HTTP JSON API, found through `--bootstrap`: server/admin/control.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ottla.server.admin.client import ClientError
from ottla.server.admin.control import ControlChannel
from ottla.server.admin.output import as_json, table


def add_cluster_command(commands: argparse._SubParsersAction) -> None:
    cluster = commands.add_parser("cluster", help="stop, start and isolate the nodes of a running ottla serve --nodes N; move leaders")
    actions = cluster.add_subparsers(dest="action", required=True)
    channel = argparse.ArgumentParser(add_help=False)
    channel.add_argument("--bootstrap", "--bootstrap-server", "-b", dest="bootstrap", default="127.0.0.1:9092", help="host:port (default 127.0.0.1:9092)")
    channel.add_argument("--http", metavar="URL", help="the broker's HTTP address (default: asked of --bootstrap)")
    channel.add_argument("--json", action="store_true", help="machine-readable output")
    channel.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker (default 30)")
    actions.add_parser("nodes", parents=[channel], help="the nodes, their racks and states")
    for action, doc in (
        ("stop-node", "stop a node: its listeners close, its connections reset, its partitions elect new leaders"),
        ("start-node", "start a stopped node again, or reconnect an isolated one"),
        ("isolate-node", "make a node accept connections and never answer; its partitions elect new leaders"),
    ):
        parser = actions.add_parser(action, parents=[channel], help=doc)
        parser.add_argument("node", type=int, metavar="ID")
    move = actions.add_parser("move-leader", parents=[channel], help="make a running in-sync replica lead a partition")
    move.add_argument("topic")
    move.add_argument("partition", type=int)
    move.add_argument("node", type=int, metavar="ID")
    elect = actions.add_parser("elect-preferred", parents=[channel], help="move a partition's leadership back to its first replica")
    elect.add_argument("topic")
    elect.add_argument("partition", type=int)


def run_cluster(args: argparse.Namespace) -> int:
    try:
        channel = ControlChannel(args.http, args.timeout) if args.http else ControlChannel.discover(args.bootstrap, args.timeout)
        if args.action == "nodes":
            _show_nodes(args, channel.get("/api/cluster/nodes")["nodes"])
        elif args.action in ("stop-node", "start-node", "isolate-node"):
            verb = args.action.split("-")[0]
            _show_nodes(args, channel.post(f"/api/cluster/nodes/{args.node}/{verb}", {})["nodes"])
        elif args.action == "move-leader":
            _show_partition(args, channel.post("/api/cluster/leaders", {"topic": args.topic, "partition": args.partition, "node": args.node}))
        else:
            _show_partition(args, channel.post("/api/cluster/elections", {"topic": args.topic, "partition": args.partition}))
    except ClientError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 1
    return 0


def _show_nodes(args: argparse.Namespace, nodes: list[dict[str, Any]]) -> None:
    if args.json:
        as_json(nodes)
        return
    table(["NODE", "RACK", "STATE", "ADDRESS"], [(n["node_id"], n["rack"] or "-", n["state"], f"{n['host']}:{n['port']}") for n in nodes])


def _show_partition(args: argparse.Namespace, state: dict[str, Any]) -> None:
    if args.json:
        as_json(state)
        return
    table(
        ["TOPIC", "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR"],
        [(args.topic, args.partition, state["leader"], state["leader_epoch"], ",".join(map(str, state["replicas"])), ",".join(map(str, state["isr"])))],
    )
