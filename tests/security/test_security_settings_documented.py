"""The README's Security section is the list of Kafka's security settings, each accepted,
accepted without effect (and why) or refused: every `ssl.`/`sasl.` setting Kafka 4.4's broker
has, and the other security ones, must appear in it, and none that Ottla reads may be listed as
having no effect."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

from ottla.server.config import all_keys
from ottla.server.kafka_settings import ACTED_ON, inert_keys

README = Path(__file__).resolve().parents[2] / "README.md"
SECURITY = ("ssl.", "sasl.")
# The security settings outside the ssl. and sasl. families.
OTHERS = (
    "listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name", "controller.listener.names",
    "security.inter.broker.protocol", "security.providers", "authorizer.class.name", "super.users", "allow.everyone.if.no.acl.found",
    "early.start.listeners", "principal.builder.class", "connections.max.reauth.ms", "connection.failed.authentication.delay.ms",
    "quota.window.num", "quota.window.size.seconds", "client.quota.callback.class", "controller.quota.window.num",
    "max.connection.creation.rate", "max.connections", "max.connections.per.ip", "max.connections.per.ip.overrides",
    "delegation.token.secret.key", "delegation.token.expiry.time.ms", "delegation.token.max.lifetime.ms",
    "delegation.token.expiry.check.interval.ms",
)


def _security_section() -> str:
    text = README.read_text()
    start = text.index("\n## Security\n")
    return text[start:text.index("\n## ", start + 1)]


def _names(text: str) -> set[str]:
    return {name for name in re.findall(r"`([^`\s]+)`", text)}


def _documented(key: str, names: set[str]) -> bool:
    return key in names or any(fnmatchcase(key, name) for name in names if name.endswith(".*"))


def test_every_security_setting_is_listed() -> None:
    names = _names(_security_section())
    keys = [key for key in inert_keys() if key.startswith(SECURITY)] + list(OTHERS)
    assert all(key in all_keys() or key in OTHERS for key in keys)
    assert [key for key in keys if not _documented(key, names)] == []


def test_no_setting_ottla_reads_is_listed_as_having_no_effect() -> None:
    rows = [line for line in _security_section().splitlines() if line.startswith("| `")]
    no_effect = {name for row in rows for names, verdict in [row.rsplit(" | ", 1)] if "no effect" in verdict for name in _names(names)}
    assert sorted(no_effect & ACTED_ON.keys()) == []
