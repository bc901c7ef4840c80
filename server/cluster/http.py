"""`/api/cluster/...`: the node controls of a running cluster (Broker.stop_node and the others)
from outside its process, through the same HTTP channel as `/api/faults`; `ottla cluster`
(server/admin/cluster.py) speaks it.

    GET  /api/cluster/nodes                  {"nodes": [{"node_id", "rack", "state", "host", "port"}, ...]}
    POST /api/cluster/nodes/{id}/stop        -> the nodes, once it has handed over and closed
    POST /api/cluster/nodes/{id}/crash       (fenced after broker.session.timeout.ms)
    POST /api/cluster/nodes/{id}/start
    POST /api/cluster/nodes/{id}/isolate
    POST /api/cluster/leaders                body {"topic", "partition", "node"} -> the partition's state
    POST /api/cluster/elections              body {"topic", "partition"} -> the partition's state (preferred election)

Mutations need the CSRF token, as every mutation of this API does; with an authorizer, the
principal must be allowed to Alter the cluster. A broker of one node answers 409.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ottla.server.http.api import ApiError
from ottla.server.http.routes import BrokerOf, PrincipalOf, json_object, require_cluster_alter, running_services


def routes(broker_of: BrokerOf, principal_of: PrincipalOf) -> list[web.RouteDef]:
    def broker(request: web.Request, mutating: bool) -> Any:
        running = broker_of(request)
        services = running_services(running)
        if running.cluster is None:
            raise ApiError(409, "this broker is a single node: start it with --nodes N for the node controls")
        if mutating:
            require_cluster_alter(request, services, principal_of, "the node controls need the Alter operation on the cluster")
        return running

    def node_id(running: Any, request: web.Request) -> int:
        text = request.match_info["node"]
        # ASCII digits only: "²".isdigit() is true, and int() refuses it.
        if not (text.isascii() and text.isdigit()) or int(text) not in running.cluster.nodes:
            raise ApiError(404, f"no node {text}: the nodes are {sorted(running.cluster.nodes)}")
        return int(text)

    async def nodes(request: web.Request) -> web.StreamResponse:
        return web.json_response({"nodes": _nodes(broker(request, False))})

    async def control(request: web.Request) -> web.StreamResponse:
        running = broker(request, True)
        node = node_id(running, request)
        action = request.match_info["action"]
        try:
            if action == "stop":
                await running.stop_node(node)
            elif action == "start":
                await running.start_node(node)
            elif action == "crash":
                await running.crash_node(node)
            elif action == "isolate":
                running.isolate_node(node)
            else:
                raise ApiError(404, f"no node action {action!r}: stop, crash, start or isolate")
        except ValueError as exc:
            raise ApiError(409, str(exc)) from None
        return web.json_response({"nodes": _nodes(running)})

    async def move_leader(request: web.Request) -> web.StreamResponse:
        running = broker(request, True)
        body = await json_object(request)
        topic, partition, node = _field(body, "topic", str), _field(body, "partition", int), _field(body, "node", int)
        try:
            running.move_leader(topic, partition, node)
            return web.json_response(running.partition_state(topic, partition))
        except ValueError as exc:
            raise ApiError(409, str(exc)) from None

    async def elect_preferred(request: web.Request) -> web.StreamResponse:
        running = broker(request, True)
        body = await json_object(request)
        topic, partition = _field(body, "topic", str), _field(body, "partition", int)
        try:
            state = running.partition_state(topic, partition)
        except ValueError as exc:
            raise ApiError(404, str(exc)) from None
        running.cluster.elect_preferred(topic, partition)
        return web.json_response({**running.partition_state(topic, partition), "previous_leader": state["leader"]})

    return [
        web.get("/api/cluster/nodes", nodes),
        web.post("/api/cluster/nodes/{node}/{action}", control),
        web.post("/api/cluster/leaders", move_leader),
        web.post("/api/cluster/elections", elect_preferred),
    ]


def _nodes(running: Any) -> list[dict[str, Any]]:
    first_listener = running.listeners[0].name
    answer = []
    for node in running.cluster.nodes.values():
        endpoint = running.cluster.endpoints[node.node_id][first_listener]
        answer.append({"node_id": node.node_id, "rack": node.rack, "state": node.state.value, "host": endpoint.host, "port": endpoint.port})
    return answer


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ApiError(400, f"give `{name}` as {kind.__name__}")
    return value

