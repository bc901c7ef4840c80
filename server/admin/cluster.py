"""`ottla cluster nodes|stop-node|crash-node|start-node|isolate-node|move-leader|elect-preferred`: the node
controls of a running `ottla serve --nodes N`, from outside its process, over the control
channel `ottla faults` uses (its HTTP JSON API, found through `--bootstrap`: server/admin/control.py)."""

from __future__ import annotations

import argparse
from typing import Any

from ottla.server.admin.control import ControlChannel, channel_options, run_on_channel
from ottla.server.admin.output import as_json, table


def add_cluster_command(commands: argparse._SubParsersAction) -> None:
    cluster = commands.add_parser("cluster", help="stop, start and isolate the nodes of a running ottla serve --nodes N; move leaders")
    actions = cluster.add_subparsers(dest="action", required=True)
    channel = channel_options()
    actions.add_parser("nodes", parents=[channel], help="the nodes, their racks and states")
    for action, doc in (
        ("stop-node", "stop a node as Kafka's controlled shutdown: its partitions elect new leaders, then (one "
                      "broker.heartbeat.interval.ms later) its listeners close and its connections reset"),
        ("crash-node", "crash a node: its listeners close and its connections reset, but it leads and stays in "
                       "every ISR until broker.session.timeout.ms passes, as a killed Kafka broker"),
        ("start-node", "start a stopped or crashed node again, or reconnect an isolated one"),
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
    return run_on_channel(args, lambda channel: _cluster(args, channel))


def _cluster(args: argparse.Namespace, channel: ControlChannel) -> None:
    if args.action == "nodes":
        _show_nodes(args, channel.get("/api/cluster/nodes")["nodes"])
    elif args.action in ("stop-node", "crash-node", "start-node", "isolate-node"):
        verb = args.action.split("-")[0]
        _show_nodes(args, channel.post(f"/api/cluster/nodes/{args.node}/{verb}", {})["nodes"])
    elif args.action == "move-leader":
        _show_partition(args, channel.post("/api/cluster/leaders", {"topic": args.topic, "partition": args.partition, "node": args.node}))
    else:
        _show_partition(args, channel.post("/api/cluster/elections", {"topic": args.topic, "partition": args.partition}))


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
