"""SASL/OAUTHBEARER: the mechanism and its two validators without sockets (Kafka's
unsecured-JWS default and JWKS-verified RS256/ES256 tokens), then stock clients over a real
SASL_PLAINTEXT listener: confluent-kafka with librdkafka's unsecured JWT builder, and
kafka-python with a token signed by a test JWKS key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ottla.server.config import BrokerConfig
from ottla.server.security.sasl import SaslAuthenticator, SaslConfigError, SaslSettings, ScramCredentialStore, listener_sasl_settings
from ottla.server.security.sasl.errors import AuthenticationFailed, InvalidCredentials
from ottla.server.security.sasl.oauthbearer import JwksValidator, OAuthBearerServer, TokenRejected, UnsecuredJwsValidator
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.errors import ErrorCode

NOW = 1_800_000_000.0
JAAS = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def unsecured(**claims: Any) -> str:
    return f"{_part({'alg': 'none'})}.{_part(claims)}."


def client_first(token: str, authzid: str = "", **extensions: str) -> bytes:
    pairs = "".join(f"{key}={value}\x01" for key, value in extensions.items())
    return f"n,{'a=' + authzid if authzid else ''},\x01auth=Bearer {token}\x01{pairs}\x01".encode()


class Keys:
    """A test identity provider: an RSA and an EC P-256 key, published as a JWKS file."""

    def __init__(self, directory: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.path = directory / "jwks.json"
        self.publish(self.rsa, "rsa-1", self.ec, "ec-1")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def publish(self, rsa_key: Any, rsa_kid: str, ec_key: Any, ec_kid: str) -> None:
        numbers = rsa_key.public_key().public_numbers()
        point = ec_key.public_key().public_numbers()
        keys = [
            {"kty": "RSA", "kid": rsa_kid, "use": "sig", "n": _b64(numbers.n.to_bytes(256, "big")), "e": _b64(numbers.e.to_bytes(3, "big"))},
            {"kty": "EC", "kid": ec_kid, "crv": "P-256", "x": _b64(point.x.to_bytes(32, "big")), "y": _b64(point.y.to_bytes(32, "big"))},
        ]
        self.path.write_text(json.dumps({"keys": keys}))

    def sign(self, claims: dict[str, Any], alg: str = "RS256", kid: str | None = None, key: Any = None) -> str:
        header = {"alg": alg, "typ": "JWT", "kid": kid or ("rsa-1" if alg == "RS256" else "ec-1")}
        signed = f"{_part(header)}.{_part(claims)}".encode()
        if alg == "RS256":
            signature = (key or self.rsa).sign(signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature((key or self.ec).sign(signed, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signed.decode()}.{_b64(signature)}"


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


# --- the unsecured validator ----------------------------------------------------------------


def test_unsecured_token_authenticates_with_extensions() -> None:
    server = OAuthBearerServer(UnsecuredJwsValidator({}, clock=lambda: NOW))
    token = unsecured(sub="alice", iat=NOW - 10, exp=NOW + 60, scope="test")
    assert server.evaluate(client_first(token, authzid="alice", traceId="abc 123")) == b""
    assert server.complete and server.principal == "alice"
    assert server.extensions == {"traceId": "abc 123"}
    assert server.expires_at_ms == int((NOW + 60) * 1000)


@pytest.mark.parametrize(
    "claims, why",
    [
        ({"sub": "alice", "exp": NOW - 1}, "expired"),
        ({"sub": "alice", "iat": NOW + 60, "exp": NOW + 120}, "issued in the future"),
        ({"sub": "alice"}, "no exp"),
        ({"exp": NOW + 60}, "no subject"),
        ({"sub": "alice", "iat": NOW, "exp": NOW}, "exp not after iat"),
    ],
)
def test_unsecured_claims_are_checked_and_the_error_challenge_flow(claims: dict[str, Any], why: str) -> None:
    server = OAuthBearerServer(UnsecuredJwsValidator({}, clock=lambda: NOW))
    assert server.evaluate(client_first(unsecured(**claims))) == b'{"status":"invalid_token"}', why
    assert not server.complete
    # The client acknowledges the challenge with a lone %x01; the exchange fails with the JSON.
    with pytest.raises(AuthenticationFailed, match='^{"status":"invalid_token"}$'):
        server.evaluate(b"\x01")


def test_unsecured_validator_options() -> None:
    options = {
        "unsecuredValidatorPrincipalClaimName": "client",
        "unsecuredValidatorScopeClaimName": "roles",
        "unsecuredValidatorRequiredScope": "produce,consume",
        "unsecuredValidatorAllowableClockSkewMs": "5000",
    }
    validator = UnsecuredJwsValidator(options, clock=lambda: NOW)
    assert validator.validate(unsecured(client="bob", exp=NOW - 4, roles=["produce", "consume", "x"])).principal == "bob"
    with pytest.raises(TokenRejected) as lacking:
        validator.validate(unsecured(client="bob", exp=NOW + 60, roles=["produce"]))
    assert (lacking.value.status, lacking.value.scope) == ("insufficient_scope", "[produce, consume]")
    server = OAuthBearerServer(validator)
    assert server.evaluate(client_first(unsecured(client="bob", exp=NOW + 60, roles="produce"))) == (
        b'{"status":"insufficient_scope", "scope":"[produce, consume]"}'
    )


_OUT_OF_RANGE_CLAIMS = (
    b'{"sub": "a", "exp": NaN}',
    b'{"sub": "a", "exp": 1e400}',
    b'{"sub": "a", "exp": 1' + b"0" * 400 + b"}",
    b'{"sub": "a", "iat": -Infinity, "exp": 9999999999}',
)


@pytest.mark.parametrize(
    "token",
    [
        f"{_part({'alg': 'HS256'})}.{_part({'sub': 'a', 'exp': NOW + 60})}.",
        f"{_part({'alg': 'none'})}.{_part({'sub': 'a', 'exp': NOW + 60})}.c2ln",
        f"{_part({'alg': 'none'})}..",
        "not-a-jws",
        f"{_b64(b'[1]')}.{_part({'sub': 'a', 'exp': NOW + 60})}.",
        # Numbers Kafka's JSON parser refuses or no expiry can hold: refused, not a crash.
        *(_part({"alg": "none"}) + "." + _b64(claims) + "." for claims in _OUT_OF_RANGE_CLAIMS),
    ],
)
def test_unsecured_malformed_tokens_are_invalid_tokens(token: str) -> None:
    server = OAuthBearerServer(UnsecuredJwsValidator({}, clock=lambda: NOW))
    assert server.evaluate(client_first(token)) == b'{"status":"invalid_token"}'


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"n,,\x01auth=Bearer abc\x01",  # no closing separator
        b"n,,\x01\x01",  # no auth
        b"n,,\x01auth=Basic abc\x01\x01",
        b"n,,\x01auth=Bearer a b\x01\x01",
        b"y,,\x01auth=Bearer abc\x01\x01",
        b"\xff\xfe",
        b"\x01",  # an acknowledgement with no challenge before it
    ],
)
def test_malformed_client_messages_fail_as_invalid_credentials(message: bytes) -> None:
    server = OAuthBearerServer(UnsecuredJwsValidator({}, clock=lambda: NOW))
    with pytest.raises(InvalidCredentials):
        server.evaluate(message)


def test_authorization_id_must_be_the_principal() -> None:
    server = OAuthBearerServer(UnsecuredJwsValidator({}, clock=lambda: NOW))
    with pytest.raises(AuthenticationFailed, match=r"authorization id \(bob\) that is different from the token's principal name \(alice\)"):
        server.evaluate(client_first(unsecured(sub="alice", exp=NOW + 60), authzid="bob"))


def test_authorization_id_is_compared_with_its_escapes_as_kafka_does() -> None:
    """Kafka 4.4 compares the saslname as sent (OAuthBearerClientInitialResponse never decodes
    =2C or =3D), so an escaped authzid differs from the principal it spells."""
    server = OAuthBearerServer(UnsecuredJwsValidator({}, clock=lambda: NOW))
    with pytest.raises(AuthenticationFailed, match=r"authorization id \(a=3Db\)"):
        server.evaluate(client_first(unsecured(sub="a=b", exp=NOW + 60), authzid="a=3Db"))
    server = OAuthBearerServer(UnsecuredJwsValidator({}, clock=lambda: NOW))
    assert server.evaluate(client_first(unsecured(sub="a=3Db", exp=NOW + 60), authzid="a=3Db")) == b""


# --- the JWKS validator ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_jwks_signed_tokens(keys: Keys, alg: str) -> None:
    validator = JwksValidator(keys.url, expected_audience=("kafka",), expected_issuer="https://idp.test", clock=lambda: NOW)
    claims = {"sub": "svc-orders", "iat": NOW, "exp": NOW + 300, "aud": ["kafka", "other"], "iss": "https://idp.test", "scope": "a"}
    token = validator.validate(keys.sign(claims, alg))
    assert (token.principal, token.scope, token.expires_at_ms) == ("svc-orders", frozenset({"a"}), int((NOW + 300) * 1000))
    other = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TokenRejected, match="signature"):
        validator.validate(keys.sign(claims, alg, key=other))
    tampered = keys.sign(claims, alg).split(".")
    tampered[1] = _part({**claims, "sub": "admin"})
    with pytest.raises(TokenRejected, match="signature"):
        validator.validate(".".join(tampered))


@pytest.mark.parametrize(
    "change, why",
    [
        ({"exp": NOW - 31}, "expired beyond the 30 s skew"),
        ({"iat": None}, "iat is required"),
        ({"nbf": NOW + 31}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.test"}, "issuer"),
        ({"sub": " "}, "blank subject"),
    ],
)
def test_jwks_claims(keys: Keys, change: dict[str, Any], why: str) -> None:
    validator = JwksValidator(keys.url, expected_audience=("kafka",), expected_issuer="https://idp.test", clock=lambda: NOW)
    claims = {"sub": "svc", "iat": NOW, "exp": NOW + 300, "aud": "kafka", "iss": "https://idp.test"}
    assert validator.validate(keys.sign({**claims, "exp": NOW - 29})).principal == "svc"  # within the skew
    claims.update(change)
    with pytest.raises(TokenRejected):
        validator.validate(keys.sign({key: value for key, value in claims.items() if value is not None}))


def test_jwks_refuses_unsigned_tokens_and_reads_a_rotated_key(keys: Keys) -> None:
    now = [NOW]
    validator = JwksValidator(keys.url, subject_claim="client_id", clock=lambda: now[0])
    with pytest.raises(TokenRejected):
        validator.validate(unsecured(client_id="svc", iat=NOW, exp=NOW + 60))
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys.publish(rotated, "rsa-2", keys.ec, "ec-1")
    token = keys.sign({"client_id": "svc", "iat": NOW, "exp": NOW + 60}, kid="rsa-2", key=rotated)
    with pytest.raises(TokenRejected):
        validator.validate(token)  # read a moment ago: an unknown key id waits a second
    now[0] += 2
    assert validator.validate(token).principal == "svc"


# --- settings and sessions ------------------------------------------------------------------


def _settings(**extra: str) -> SaslSettings:
    config = BrokerConfig.from_settings(
        {
            "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "sasl.enabled.mechanisms": "OAUTHBEARER",
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": JAAS,
            **extra,
        }
    )
    return listener_sasl_settings(lambda name: config.listener_value("SASL_PLAINTEXT", name), "SASL_PLAINTEXT")


def test_listener_settings_choose_the_validator(keys: Keys) -> None:
    assert isinstance(_settings().oauthbearer, UnsecuredJwsValidator)
    handler = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
    jwks = _settings(**{"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": handler, "sasl.oauthbearer.jwks.endpoint.url": keys.url,
                        "sasl.oauthbearer.expected.audience": "kafka,kafka-dev", "sasl.oauthbearer.clock.skew.seconds": "5"}).oauthbearer
    assert isinstance(jwks, JwksValidator) and jwks.expected_audience == ("kafka", "kafka-dev") and jwks.skew == 5
    with pytest.raises(SaslConfigError, match="jwks.endpoint.url"):
        _settings(**{"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": handler})
    with pytest.raises(SaslConfigError, match="cannot read its JWKS"):
        _settings(**{"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": handler, "sasl.oauthbearer.jwks.endpoint.url": "file:///nonexistent/jwks.json"})
    with pytest.raises(SaslConfigError, match="com.example.Handler"):
        _settings(**{"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": "com.example.Handler"})


def test_the_token_bounds_the_session() -> None:
    """KIP-368: the session lifetime is the token's remaining life, or connections.max.reauth.ms
    when that is shorter."""
    exp = time.time() + 120
    for max_reauth_ms, longest in ((0, 120_000), (30_000, 30_000)):
        settings = _settings(**{"connections.max.reauth.ms": str(max_reauth_ms)})
        sasl = SaslAuthenticator(settings, ScramCredentialStore(None, {}))
        assert sasl.handshake("OAUTHBEARER", 1) is ErrorCode.NONE
        error, _, _, lifetime_ms = sasl.authenticate(client_first(unsecured(sub="alice", exp=exp)), 2, 0.0)
        assert error is ErrorCode.NONE and sasl.principal == "User:alice"
        assert longest - 5_000 < lifetime_ms <= longest
        assert sasl.session_expires_at is not None and sasl.session_expires_at <= lifetime_ms / 1000


# --- stock clients over a real listener -----------------------------------------------------


@pytest.fixture(scope="module")
def unsecured_broker() -> Iterator[ThreadedBroker]:
    settings = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "data.dir": None,
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": JAAS[:-1] + ' unsecuredValidatorRequiredScope="test";',
    }
    with running_broker(config=BrokerConfig.from_settings(settings)) as handle:
        yield handle


def test_confluent_kafka_without_the_required_scope_gets_an_authentication_error(unsecured_broker: ThreadedBroker) -> None:
    from confluent_kafka import KafkaError, Producer

    errors = []
    producer = Producer(
        {
            "bootstrap.servers": unsecured_broker.bootstrap_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER",
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=alice scope=other",
            "error_cb": errors.append,
        }
    )
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION
    assert '{"status":"insufficient_scope", "scope":"[test]"}' in errors[0].str()


def test_confluent_kafka_unsecured_jwt(unsecured_broker: ThreadedBroker) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": unsecured_broker.bootstrap_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER",
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=alice scope=test extension_traceId=abc",
        }
    )
    delivered = []
    producer.produce("oauth-confluent", b"hello", on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(15) == 0
    assert delivered == [None]


def test_kafka_python_with_a_jwks_signed_token(keys: Keys) -> None:
    from kafka import KafkaProducer
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def __init__(self, token: str) -> None:
            self._token = token

        def token(self) -> str:
            return self._token

    settings = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "data.dir": None,
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": JAAS,
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        "sasl.oauthbearer.jwks.endpoint.url": keys.url,
        "sasl.oauthbearer.expected.audience": "kafka",
    }
    claims = {"sub": "svc-orders", "iat": time.time(), "exp": time.time() + 300, "aud": "kafka"}
    with running_broker(config=BrokerConfig.from_settings(settings)) as broker:
        for alg in ("RS256", "ES256"):
            producer = KafkaProducer(
                bootstrap_servers=broker.bootstrap_servers,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="OAUTHBEARER",
                sasl_oauth_token_provider=Provider(keys.sign(claims, alg)),
            )
            try:
                assert producer.send("oauth-kafka-python", b"hello").get(timeout=10).offset >= 0
            finally:
                producer.close()
