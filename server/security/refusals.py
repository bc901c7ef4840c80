"""The words of a request refused for want of a permission on the cluster, as Kafka 4.4's
AuthHelper.authorizeClusterOperation words them: "Request <request> needs <OPERATION>
permission.", which the request's getErrorResponse carries (ApiError.fromThrowable keeps it, not
being the error's default). Kafka's <request> is its JVM object's text (Request.toString, with an
identity hash for the session), which no other broker can reproduce; Ottla writes the same
fields for its own connection, so the message reads, and filters, the same way. For the
requests a Kafka broker forwards to its controller (ElectLeaders, UpdateFeatures, the
reassignment and unregistration APIs, AlterUserScramCredentials) that text is the controller's
envelope request on its CONTROLLER listener, wrapping the forwarded one; Ottla answers them
itself and names the client's connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.security.authorizer import AclOperation

if TYPE_CHECKING:
    from ottla.server.context import RequestContext


def needs_permission(context: RequestContext, operation: AclOperation) -> str:
    client = context.client
    request = (
        f"Request(processor=0, connectionId={context.node.host}:{context.node.port}-{client.address}-0, "
        f"session=Session({client.principal},/{context.client_host}), listenerName=ListenerName({client.listener}), "
        f"securityProtocol={client.security_protocol.value}, buffer=null, envelope=Optional.empty)"
    )
    return f"Request {request} needs {operation.name} permission."
