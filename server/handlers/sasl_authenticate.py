"""SaslAuthenticate (KIP-152; v1 session lifetime, KIP-368): one token of the exchange the
handshake chose. A failure is answered with SASL_AUTHENTICATION_FAILED and Kafka's message,
then the connection closes; on a listener without SASL, or once authenticated, KafkaApis'
ILLEGAL_SASL_STATE."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import SaslAuthenticateRequest, SaslAuthenticateResponse

API = ApiKey.SASL_AUTHENTICATE
VERSIONS = (0, 2)

_AFTER_SUCCESS = "SaslAuthenticate request received after successful authentication"


def handle(context: RequestContext, header: RequestHeader, request: SaslAuthenticateRequest) -> SaslAuthenticateResponse:
    sasl = context.sasl
    if sasl is None:
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "error_message": _AFTER_SUCCESS, "auth_bytes": b"", "session_lifetime_ms": 0}
    error, message, token, lifetime_ms = sasl.authenticate(bytes(request["auth_bytes"]), header.api_version, time.monotonic())
    # A token without a message is answered with the generated default Kafka leaves, "" (not null).
    return {"error_code": error, "error_message": "" if message is None else message, "auth_bytes": token, "session_lifetime_ms": lifetime_ms}
