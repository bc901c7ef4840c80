"""`/api/faults`: the broker's faults on demand (ottla.server.faults) from outside its process,
the channel `ottla faults` uses.

    GET    /api/faults          {"faults": [fault, ...]}
    POST   /api/faults          body: Faults.add's keyword arguments -> the fault set
    DELETE /api/faults/{id}     -> the fault removed, with how often it fired
    DELETE /api/faults          -> {"removed": [fault, ...]}

A fault is JSON as `Fault.describe` writes it. Mutations need the CSRF token, as every
mutation of this API does; with an authorizer, the principal must be allowed to Alter the
cluster, as for Kafka's own cluster-wide changes.
"""

from __future__ import annotations

from aiohttp import web

from ottla.server.faults import Fault, FaultError, Faults
from ottla.server.http.api import ApiError
from ottla.server.http.routes import BrokerOf, PrincipalOf, json_object, require_cluster_alter, running_services

# What a request may set, with the JSON types each takes: Faults.add's arguments (not `when`, a function).
_SETTABLE: dict[str, tuple[type, ...]] = {
    "api": (str, int), "topic": (str,), "partition": (int,), "node": (int,), "client_id": (str,), "error": (str, int),
    "delay_ms": (int,), "drop": (str,), "throttle_ms": (int,), "count": (int,), "every": (int,), "name": (str,),
}


def routes(broker_of: BrokerOf, principal_of: PrincipalOf) -> list[web.RouteDef]:
    def faults(request: web.Request, mutating: bool) -> Faults:
        broker = broker_of(request)
        services = running_services(broker)
        if mutating:
            require_cluster_alter(request, services, principal_of, "setting faults needs the Alter operation on the cluster")
        registry: Faults = broker.faults
        return registry

    async def list_faults(request: web.Request) -> web.StreamResponse:
        return web.json_response({"faults": [fault.describe() for fault in faults(request, False).list()]})

    async def add_fault(request: web.Request) -> web.StreamResponse:
        registry = faults(request, True)
        body = await json_object(request)
        unknown = sorted(set(body) - _SETTABLE.keys())
        if unknown:
            raise ApiError(400, f"unknown fault fields {unknown}; known: {sorted(_SETTABLE)}")
        for name, value in body.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, _SETTABLE[name])):
                raise ApiError(400, f"{name} takes {' or '.join(t.__name__ for t in _SETTABLE[name])}, not {value!r}")
        try:
            fault = registry.add(**body)
        except FaultError as exc:
            raise ApiError(400, str(exc)) from None
        return web.json_response(fault.describe(), status=201)

    async def remove_fault(request: web.Request) -> web.StreamResponse:
        registry = faults(request, True)
        fault = _fault(registry, request.match_info["id"])
        fault.remove()
        return web.json_response(fault.describe())

    async def clear_faults(request: web.Request) -> web.StreamResponse:
        registry = faults(request, True)
        removed = registry.list()
        registry.clear()
        return web.json_response({"removed": [fault.describe() for fault in removed]})

    return [
        web.get("/api/faults", list_faults),
        web.post("/api/faults", add_fault),
        web.delete("/api/faults", clear_faults),
        web.delete("/api/faults/{id}", remove_fault),
    ]


def _fault(registry: Faults, fault_id: str) -> Fault:
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    fault = registry.get(int(fault_id)) if fault_id.isascii() and fault_id.isdigit() else None
    if fault is None:
        raise ApiError(404, f"no fault {fault_id}")
    return fault

