"""Listeners: the sockets a broker serves, each named and speaking one security protocol.

Kafka's settings, with Kafka's syntax and meaning (SocketServerConfigs.listenerListToEndPoints,
KafkaConfig.effectiveListenerSecurityProtocolMap, ListenerName):

- `listeners=NAME://HOST:PORT,...`: names are case-insensitive and normalised to upper case; an
  empty host binds every interface; port 0 picks a free port. Names are unique.
- `listener.security.protocol.map=NAME:PROTOCOL,...` gives each name its protocol; a given map
  replaces Kafka's default one (each protocol's name mapped to itself).
- `advertised.listeners` gives, by name, where clients are told to connect; a listener it
  does not name is advertised at its bind address. Without it, Kafka advertises `listeners`
  themselves and so refuses one written with the host `0.0.0.0` (KafkaConfig.validateValues on
  effectiveAdvertisedBrokerListeners); Ottla refuses it on every listener but the first, which
  is its `host` setting, where `0.0.0.0` is its way to bind every interface (server/cli.py).
- `controller.listener.names` are a controller's listeners: a single Ottla node serves none.
- `listener.name.<lower-case name>.<key>` overrides `<key>` on that listener only (KafkaConfig's
  `valuesWithPrefixOverride`); `BrokerConfig.listener_value` resolves it.

The first broker listener is the one Ottla's own `host`, `port` and `advertised.host` settings
(and `ottla serve --host/--port`) describe: setting `listeners` sets them, and setting them
afterwards moves that first listener. Without `listeners` there is one, named PLAINTEXT.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Protocol


class SecurityProtocol(enum.Enum):
    """Kafka's SecurityProtocol: what a listener speaks on its socket."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


# Whether SASL_PLAINTEXT and SASL_SSL listeners authenticate their clients (server/security/sasl/).
SASL_SERVED = True

# Kafka's keys that configure listeners; BrokerConfig keeps their values as given.
LISTENER_KEYS = ("listeners", "advertised.listeners")
# KafkaConfig.validateValues' refusal of an advertised broker listener at 0.0.0.0, which no client
# elsewhere can connect to.
NONROUTABLE = "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address."
LISTENER_PREFIX = "listener.name."

# Kafka's ssl.* settings Ottla acts on (the others it accepts are the JVM's: key and trust
# manager algorithms, providers, engine factories, the SecureRandom implementation).
TLS_KEYS = frozenset(
    {
        "ssl.keystore.type",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
        "ssl.key.password",
        "ssl.truststore.type",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.truststore.certificates",
        "ssl.client.auth",
        "ssl.enabled.protocols",
        "ssl.protocol",
        "ssl.cipher.suites",
        "ssl.principal.mapping.rules",
    }
)

# SocketServerConfigs' URI_PARSE_REGEX: NAME://HOST:PORT, an IPv6 host in brackets.
_ENDPOINT = re.compile(r"^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$")


class ListenerSettings(Protocol):
    """What listeners are read from: a BrokerConfig (which imports this module). Read-only
    members, so that a frozen dataclass matches."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def advertised_host(self) -> str | None: ...

    @property
    def listener_settings(self) -> tuple[tuple[str, str], ...]: ...

    def value(self, name: str) -> Any:
        """A setting by its Kafka name."""


class ListenerError(ValueError):
    """Listener settings Kafka would refuse; the message names the setting."""


@dataclass(slots=True, frozen=True)
class Endpoint:
    """One NAME://HOST:PORT of `listeners` or `advertised.listeners`, as written."""

    name: str
    host: str
    port: int


@dataclass(slots=True, frozen=True)
class Listener:
    """One socket the broker serves. `advertised_port` 0 means the port it is bound to
    (known once it listens, when `port` is 0)."""

    name: str
    protocol: SecurityProtocol
    host: str
    port: int
    advertised_host: str
    advertised_port: int


def parse_endpoints(key: str, text: str) -> list[Endpoint]:
    """The endpoints of a `listeners`-style value, or ListenerError naming `key`."""
    endpoints: list[Endpoint] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        match = _ENDPOINT.match(item)
        if match is None:
            raise ListenerError(f"invalid value for {key}: {item!r} is not NAME://HOST:PORT")
        name, host, port = match.group(1).upper(), match.group(2), int(match.group(3))
        if not 0 <= port <= 65535:
            raise ListenerError(f"invalid value for {key}: port {port} of {item!r} is out of range")
        if any(endpoint.name == name for endpoint in endpoints):
            raise ListenerError(f"invalid value for {key}: each listener must have a different name, {name} is repeated")
        if port and any((endpoint.host, endpoint.port) == (host, port) for endpoint in endpoints):
            raise ListenerError(f"invalid value for {key}: each listener must have a different port, {port} is repeated")
        endpoints.append(Endpoint(name, host, port))
    return endpoints


def parse_protocol_map(text: str) -> dict[str, SecurityProtocol]:
    """`listener.security.protocol.map`: listener name -> security protocol."""
    protocols: dict[str, SecurityProtocol] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, separator, protocol = item.partition(":")
        try:
            if not separator:
                raise ValueError
            protocols[name.strip().upper()] = SecurityProtocol(protocol.strip().upper())
        except ValueError:
            raise ListenerError(f"invalid value for listener.security.protocol.map: {item!r} is not NAME:PROTOCOL") from None
    return protocols


def first_listener_address(listeners: str, controller_names: tuple[str, ...] | None) -> tuple[str, int]:
    """Bind host and port of the first broker listener of a `listeners` value: what Ottla's
    `host` and `port` settings become when `listeners` is set."""
    controllers = {name.upper() for name in controller_names or ()}
    for endpoint in parse_endpoints("listeners", listeners):
        if endpoint.name not in controllers:
            # Kafka binds every interface when a listener names no host.
            return endpoint.host or "0.0.0.0", endpoint.port
    raise ListenerError(f"invalid value for listeners: {listeners!r} names no broker listener, only controller ones")


def configured_listeners(config: ListenerSettings) -> tuple[Listener, ...]:
    """The broker listeners `config` describes, the first one first, or ListenerError."""
    given = dict(config.listener_settings)
    protocols = parse_protocol_map(config.value("listener.security.protocol.map"))
    controllers = {name.upper() for name in config.value("controller.listener.names") or ()}
    if "listeners" in given:
        endpoints = [endpoint for endpoint in parse_endpoints("listeners", given["listeners"]) if endpoint.name not in controllers]
        if not endpoints:
            raise ListenerError("invalid value for listeners: it names no broker listener, only controller ones")
    else:
        endpoints = [Endpoint("PLAINTEXT", config.host, config.port)]
    endpoints[0] = Endpoint(endpoints[0].name, config.host, config.port)
    advertised = {endpoint.name: endpoint for endpoint in parse_endpoints("advertised.listeners", given.get("advertised.listeners", ""))}
    names = {endpoint.name for endpoint in endpoints}
    unknown = sorted(advertised.keys() - names - controllers)
    if unknown:
        raise ListenerError(f"invalid value for advertised.listeners: {', '.join(unknown)} not among the listeners")
    inter_broker = config.value("inter.broker.listener.name")
    if inter_broker is not None and inter_broker.upper() not in names:
        raise ListenerError(f"invalid value for inter.broker.listener.name: {inter_broker} is not among the listeners")
    if "advertised.listeners" not in given and any(endpoint.host == "0.0.0.0" for endpoint in endpoints[1:]):
        raise ListenerError(NONROUTABLE)
    listeners = []
    for index, endpoint in enumerate(endpoints):
        protocol = protocols.get(endpoint.name)
        if protocol is None:
            raise ListenerError(f"no security protocol defined for listener {endpoint.name} in listener.security.protocol.map")
        host = endpoint.host or "0.0.0.0"
        shown = advertised.get(endpoint.name)
        advertised_host = (config.advertised_host if index == 0 else None) or (shown.host if shown else "") or host
        listeners.append(Listener(endpoint.name, protocol, host, endpoint.port, advertised_host, shown.port if shown else 0))
    return tuple(listeners)


def inter_broker_listener(config: ListenerSettings, listeners: tuple[Listener, ...]) -> Listener | None:
    """The listener other brokers connect to (KafkaConfig.interBrokerListenerName):
    `inter.broker.listener.name`, else the one named by `security.inter.broker.protocol`
    (PLAINTEXT by default), else, where Kafka would refuse to start, the first listener, which
    Ottla's brokers then use (server/cluster/peers.py). None when the named one is missing."""
    named = config.value("inter.broker.listener.name")
    name = str(named).upper() if named is not None else str(config.value("security.inter.broker.protocol") or "PLAINTEXT").upper()
    by_name = {listener.name: listener for listener in listeners}
    return by_name.get(name) or (None if named is not None else next(iter(listeners), None))


def check_served(listeners: tuple[Listener, ...]) -> None:
    """ListenerError for a listener this build cannot serve as its protocol requires."""
    if SASL_SERVED:
        return
    for listener in listeners:
        if listener.protocol.uses_sasl:
            raise ListenerError(
                f"listener {listener.name} speaks {listener.protocol.value}, and this Ottla does not authenticate SASL clients yet: "
                "refusing to serve it unauthenticated"
            )
