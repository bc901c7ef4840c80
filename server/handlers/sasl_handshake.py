"""SaslHandshake: the mechanism a SASL exchange will use (v1 then SaslAuthenticate requests,
v0 then raw tokens). On a listener without SASL, or on an authenticated connection with no
session lifetime to renew or that started re-authenticating less than a second ago, Kafka's
KafkaApis answers ILLEGAL_SASL_STATE; an unsupported mechanism is answered, with the enabled
ones (in Kafka's HashSet order), and the connection closes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.sasl.authenticator import handshake_mechanisms
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import SaslHandshakeRequest, SaslHandshakeResponse

API = ApiKey.SASL_HANDSHAKE
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: SaslHandshakeRequest) -> SaslHandshakeResponse:
    sasl = context.sasl
    if sasl is None:
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}
    error = sasl.handshake(request["mechanism"], header.api_version, time.monotonic())
    mechanisms = handshake_mechanisms(sasl.settings.enabled_mechanisms) if error is not ErrorCode.ILLEGAL_SASL_STATE else []
    return {"error_code": error, "mechanisms": mechanisms}
