"""SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) as Kafka's brokers run it.

Mechanisms are sans-IO state machines (bytes in, bytes out, a principal at the end);
`SaslAuthenticator` is one connection's exchange; `ScramCredentialStore` keeps SCRAM
credentials durably; `listener_sasl_settings` reads a listener's settings under Kafka's names.
"""

from __future__ import annotations

import logging
from typing import Callable

from ottla.server.security.sasl.authenticator import SUPPORTED_MECHANISMS, SaslAuthenticator, SaslSettings, SaslState
from ottla.server.security.sasl.credentials import ScramCredentialStore
from ottla.server.security.sasl.errors import AuthenticationFailed, IllegalSaslState
from ottla.server.security.sasl.jaas import JaasError, parse_jaas_config
from ottla.server.security.sasl.plain import MECHANISM as PLAIN
from ottla.server.security.sasl.scram import ScramCredential, ScramMechanism

__all__ = [
    "AuthenticationFailed",
    "IllegalSaslState",
    "SUPPORTED_MECHANISMS",
    "SaslAuthenticator",
    "SaslSettings",
    "SaslState",
    "ScramCredential",
    "ScramCredentialStore",
    "ScramMechanism",
    "SaslConfigError",
    "listener_sasl_settings",
]

log = logging.getLogger("ottla.sasl")


class SaslConfigError(ValueError):
    """SASL settings a listener cannot run with; the message names keys, never values."""


def listener_sasl_settings(setting: Callable[[str], str | None], listener: str) -> SaslSettings:
    """A listener's SASL settings, looked up as Kafka looks them up: `listener.name.<l>.<key>`
    first, then `<key>`; the JAAS config per mechanism, `listener.name.<l>.<mechanism>.sasl.jaas.config`
    (JaasContext.loadServerContext: a bare `sasl.jaas.config` is ignored on a broker, with a warning).
    `setting(name)` gives a raw setting's value or None."""
    prefix = f"listener.name.{listener.lower()}."

    def lookup(key: str) -> str | None:
        value = setting(prefix + key)
        return setting(key) if value is None else value

    enabled = tuple(item.strip() for item in (lookup("sasl.enabled.mechanisms") or "GSSAPI").split(",") if item.strip())
    unsupported = [name for name in enabled if name not in SUPPORTED_MECHANISMS]
    if unsupported:
        raise SaslConfigError(f"{prefix}sasl.enabled.mechanisms: Ottla does not serve {', '.join(unsupported)} (it serves {', '.join(SUPPORTED_MECHANISMS)})")
    plain_users: dict[str, str] = {}
    if PLAIN in enabled:
        text = setting(f"{prefix}plain.sasl.jaas.config")
        if text is None:
            if setting("sasl.jaas.config") is not None or setting(prefix + "sasl.jaas.config") is not None:
                log.warning("sasl.jaas.config should be prefixed with the SASL mechanism name (%splain.sasl.jaas.config); ignoring it", prefix)
            raise SaslConfigError(f"PLAIN is enabled on listener {listener} but {prefix}plain.sasl.jaas.config is not set")
        try:
            plain_users = parse_jaas_config(text).plain_users()
        except JaasError as exc:
            raise SaslConfigError(f"{prefix}plain.sasl.jaas.config: {exc}") from None
    reauth_ms = {}
    for mechanism in enabled:
        value = setting(f"{prefix}{mechanism.lower()}.connections.max.reauth.ms") or lookup("connections.max.reauth.ms")
        try:
            reauth_ms[mechanism] = max(int(value or 0), 0)
        except ValueError:
            raise SaslConfigError(f"connections.max.reauth.ms for {mechanism} on listener {listener} is not a number") from None
    return SaslSettings(enabled, plain_users, reauth_ms)
