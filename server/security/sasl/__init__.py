"""SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) as Kafka's brokers run it.

Mechanisms are sans-IO state machines (bytes in, bytes out, a principal at the end);
`SaslAuthenticator` is one connection's exchange; `ScramCredentialStore` keeps SCRAM
credentials durably; `listener_sasl_settings` reads a listener's settings under Kafka's names.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ottla.server.security.sasl.authenticator import SUPPORTED_MECHANISMS, SaslAuthenticator, SaslSettings, SaslState
from ottla.server.security.sasl.credentials import ScramCredentialStore
from ottla.server.security.sasl.errors import AuthenticationFailed, IllegalSaslState, SaslServerError
from ottla.server.security.sasl.jaas import JaasError, LoginModule, parse_jaas_config
from ottla.server.security.sasl.oauthbearer import (
    JWKS_CALLBACK_HANDLERS,
    MECHANISM as OAUTHBEARER,
    UNSECURED_CALLBACK_HANDLER,
    JwksValidator,
    TokenValidator,
    UnsecuredJwsValidator,
)
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
    "SaslServerError",
    "listener_sasl_settings",
]

log = logging.getLogger("ottla.sasl")


class SaslConfigError(ValueError):
    """SASL settings a listener cannot run with; the message names keys, never values."""


def listener_sasl_settings(setting: Callable[[str], Any], listener: str) -> SaslSettings:
    """A listener's SASL settings. `setting(name)` is a setting as the listener sees it
    (`BrokerConfig.listener_value`: `listener.name.<l>.<name>` over `<name>`, None for a name
    no one defines). The JAAS config is per mechanism, `<mechanism>.sasl.jaas.config` under
    the listener's prefix, as Kafka's JaasContext.loadServerContext reads it: a bare
    `sasl.jaas.config` is ignored on a broker, with a warning."""
    prefix = f"listener.name.{listener.lower()}."
    enabled = _names(setting("sasl.enabled.mechanisms"))
    unsupported = [name for name in enabled if name not in SUPPORTED_MECHANISMS]
    if unsupported:
        raise SaslConfigError(
            f"sasl.enabled.mechanisms of listener {listener}: Ottla does not serve {', '.join(unsupported)} "
            f"(it serves {', '.join(SUPPORTED_MECHANISMS)})"
        )
    plain_users: dict[str, str] = {}
    if PLAIN in enabled:
        plain_users = _login_module(setting, listener, PLAIN).plain_users()
    oauthbearer = _oauthbearer_validator(setting, listener) if OAUTHBEARER in enabled else None
    reauth_ms = {}
    for mechanism in enabled:
        value = setting(f"{mechanism.lower()}.connections.max.reauth.ms")
        if value is None:
            value = setting("connections.max.reauth.ms")
        try:
            reauth_ms[mechanism] = max(int(value or 0), 0)
        except ValueError:
            raise SaslConfigError(f"connections.max.reauth.ms for {mechanism} on listener {listener} is not a number") from None
    return SaslSettings(enabled, plain_users, reauth_ms, oauthbearer)


def _login_module(setting: Callable[[str], Any], listener: str, mechanism: str) -> LoginModule:
    """The JAAS login module of `mechanism` on the listener (`<mechanism>.sasl.jaas.config`)."""
    prefix = f"listener.name.{listener.lower()}."
    name = f"{mechanism.lower()}.sasl.jaas.config"
    text = setting(name)
    if text is None:
        if setting("sasl.jaas.config") is not None:
            log.warning("sasl.jaas.config should be prefixed with the SASL mechanism name (%s%s); ignoring it", prefix, name)
        raise SaslConfigError(f"{mechanism} is enabled on listener {listener} but {prefix}{name} is not set")
    try:
        return parse_jaas_config(str(text))
    except JaasError as exc:
        raise SaslConfigError(f"{prefix}{name}: {exc}") from None


def _oauthbearer_validator(setting: Callable[[str], Any], listener: str) -> TokenValidator:
    """Kafka's choice of validator: `oauthbearer.sasl.server.callback.handler.class` naming
    OAuthBearerValidatorCallbackHandler validates signed tokens against
    `sasl.oauthbearer.jwks.endpoint.url`; no handler, Kafka's unsecured-JWS one, configured by
    the login module's `unsecuredValidator*` options (for development only)."""
    module = _login_module(setting, listener, OAUTHBEARER)
    handler = setting("oauthbearer.sasl.server.callback.handler.class")
    if handler is None or handler == UNSECURED_CALLBACK_HANDLER:
        try:
            return UnsecuredJwsValidator(module.options)
        except ValueError as exc:
            raise SaslConfigError(f"OAUTHBEARER on listener {listener}: {exc}") from None
    if handler not in JWKS_CALLBACK_HANDLERS:
        raise SaslConfigError(
            f"oauthbearer.sasl.server.callback.handler.class of listener {listener}: Ottla serves Kafka's "
            f"OAuthBearerValidatorCallbackHandler and the unsecured default, not {handler}"
        )
    url = setting("sasl.oauthbearer.jwks.endpoint.url")
    if not url:
        raise SaslConfigError(f"OAUTHBEARER on listener {listener} validates tokens with a JWKS: set sasl.oauthbearer.jwks.endpoint.url")
    try:
        return JwksValidator(
            str(url),
            expected_audience=_names(setting("sasl.oauthbearer.expected.audience")),
            expected_issuer=setting("sasl.oauthbearer.expected.issuer") or None,
            subject_claim=str(setting("sasl.oauthbearer.sub.claim.name") or "sub"),
            scope_claim=str(setting("sasl.oauthbearer.scope.claim.name") or "scope"),
            clock_skew_seconds=int(setting("sasl.oauthbearer.clock.skew.seconds") or 30),
            refresh_ms=int(setting("sasl.oauthbearer.jwks.endpoint.refresh.ms") or 3_600_000),
        )
    except (OSError, ValueError) as exc:
        raise SaslConfigError(f"sasl.oauthbearer.jwks.endpoint.url of listener {listener}: cannot read its JWKS: {exc}") from None


def _names(value: Any) -> tuple[str, ...]:
    """A LIST setting's names, parsed (a tuple) or as written (comma-separated text)."""
    items = value.split(",") if isinstance(value, str) else (value or ())
    return tuple(item.strip() for item in items if item.strip())


def parse_add_scram(text: str) -> tuple[str, ScramMechanism, ScramCredential]:
    """One `--add-scram` value as `kafka-storage format --add-scram` takes it:
    `SCRAM-SHA-256=[name=alice,password=alice-secret]`, with optional `iterations=N`
    (default 4096); values may be double-quoted (and then hold commas). The error names no password."""
    mechanism_name, separator, rest = text.partition("=")
    mechanism = ScramMechanism.by_name(mechanism_name.strip())
    if not separator or mechanism is None:
        raise SaslConfigError(f"--add-scram takes SCRAM-SHA-256=[name=...,password=...] or SCRAM-SHA-512=[...], got mechanism {mechanism_name.strip()!r}")
    rest = rest.strip()
    if not (rest.startswith("[") and rest.endswith("]")):
        raise SaslConfigError("--add-scram: the credential goes in brackets, [name=...,password=...]")
    fields: dict[str, str] = {}
    for item in _split_outside_quotes(rest[1:-1]):
        key, _, value = item.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        fields[key.strip().lower()] = value
    if not fields.get("name") or "password" not in fields:
        raise SaslConfigError("--add-scram needs name=... and password=...")
    try:
        iterations = int(fields.get("iterations", "4096"))
    except ValueError:
        raise SaslConfigError("--add-scram: iterations must be a number") from None
    if not mechanism.min_iterations <= iterations <= mechanism.max_iterations:
        raise SaslConfigError(f"--add-scram: iterations must be between {mechanism.min_iterations} and {mechanism.max_iterations}")
    return fields["name"], mechanism, mechanism.credential_from_password(fields["password"], iterations)


def _split_outside_quotes(text: str) -> list[str]:
    """`a=1,b="x,y"` at its commas outside double quotes, as Kafka's ScramParser splits."""
    items, start, quoted = [], 0, False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    return items
