"""The SASL mechanisms, the JAAS parser, the credential store and one connection's exchange,
without sockets: the RFC 7677 vector pins the SCRAM math, Kafka's messages pin the failures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

import pytest

from ottla.server.security.sasl import SaslAuthenticator, SaslSettings, SaslState, ScramCredentialStore, ScramMechanism, listener_sasl_settings
from ottla.server.security.sasl.errors import AuthenticationFailed, IllegalSaslState, InvalidCredentials, SaslServerError
from ottla.server.security.sasl.jaas import JaasError, parse_jaas_config
from ottla.server.security.sasl.plain import PlainServer
from ottla.server.security.sasl.scram import ScramServer
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

SHA256 = ScramMechanism.SCRAM_SHA_256
SHA512 = ScramMechanism.SCRAM_SHA_512


def test_rfc_7677_test_vector() -> None:
    """RFC 7677 section 3: user "user", password "pencil", the exchange byte for byte."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = SHA256.credential_from_password("pencil", 4096, salt)
    server = ScramServer(SHA256, lambda user, mechanism: credential if user == "user" else None, lambda: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    first = server.evaluate(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert first == b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = server.evaluate(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.complete and server.principal == "user"


def scram_client(mechanism: ScramMechanism, user: str, password: str, server: ScramServer, *, proof_for: str | None = None) -> bytes:
    """A correct client exchange (RFC 5802), returning the server's final message."""
    nonce = secrets.token_urlsafe(18)
    bare = f"n={user},r={nonce}"
    server_first = server.evaluate(f"n,,{bare}".encode()).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salted = mechanism.salted_password(proof_for or password, base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = mechanism.hmac(salted, b"Client Key")
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = mechanism.hmac(mechanism.hash(client_key), auth_message)
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = server.evaluate(f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    expected = mechanism.hmac(mechanism.hmac(salted, b"Server Key"), auth_message)
    assert hmac.compare_digest(final, b"v=" + base64.b64encode(expected))
    return final


@pytest.mark.parametrize("mechanism", [SHA256, SHA512])
def test_scram_round_trip_and_wrong_password(mechanism: ScramMechanism) -> None:
    credential = mechanism.credential_from_password("alice-secret", 4096)
    lookup = lambda user, m: credential if (user, m) == ("alice", mechanism) else None  # noqa: E731
    server = ScramServer(mechanism, lookup)
    scram_client(mechanism, "alice", "alice-secret", server)
    assert server.principal == "alice"
    with pytest.raises(InvalidCredentials, match="Invalid client credentials"):
        scram_client(mechanism, "alice", "alice-secret", ScramServer(mechanism, lookup), proof_for="wrong")
    with pytest.raises(InvalidCredentials, match="Invalid user credentials"):
        scram_client(mechanism, "bob", "x", ScramServer(mechanism, lookup))


@pytest.mark.parametrize(
    "message",
    [b"", b"garbage", b"y,,n=alice,r=abc", b"n,,n=,r=abc", b"n,,n=alice", b"\xff\xfe", b"n,,n=al,ice,r=abc", b"p=tls,,n=alice,r=x"],
)
def test_malformed_client_first_messages_fail(message: bytes) -> None:
    credential = SHA256.credential_from_password("pw", 4096)
    with pytest.raises(InvalidCredentials):
        ScramServer(SHA256, lambda user, m: credential).evaluate(message)


ZERO_PROOF = base64.b64encode(bytes(32))


@pytest.mark.parametrize("final", [
    b"", b"c=biws,r=other,p=" + ZERO_PROOF, b"c=biws,r={nonce},p=!!", b"c=biws,r={nonce},p=AAAAAA", b"c=biws,r={nonce},p=" + ZERO_PROOF,
    b"c=biws,r=abc{nonce},p=" + ZERO_PROOF, b"c=biws,r={nonce}x,p=" + ZERO_PROOF,
])
def test_malformed_client_final_messages_fail(final: bytes) -> None:
    credential = SHA256.credential_from_password("pw", 4096)
    server = ScramServer(SHA256, lambda user, m: credential)
    nonce = server.evaluate(b"n,,n=alice,r=abc").split(b",")[0][2:]
    with pytest.raises(InvalidCredentials):
        server.evaluate(final.replace(b"{nonce}", nonce))
    with pytest.raises(InvalidCredentials):  # a failed exchange takes nothing more
        server.evaluate(b"c=biws,r=" + nonce + b",p=" + ZERO_PROOF)


def _signed_final(server: ScramServer, password: str, first: str, final: str, signed_first: str | None = None, signed_final: str | None = None) -> bytes:
    """The server's answer to `final` (`{nonce}`: the server-first's nonce) with a proof over
    RFC 5802's AuthMessage, or over `signed_first` / `signed_final` in its place."""
    mechanism = server.mechanism
    server_first = server.evaluate(first.encode()).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    final = final.format(nonce=fields["r"])
    bare = first.split(",", 2)[2] if signed_first is None else signed_first
    signed = final if signed_final is None else signed_final.format(nonce=fields["r"])
    salted = mechanism.salted_password(password, base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = mechanism.hmac(salted, b"Client Key")
    signature = mechanism.hmac(mechanism.hash(client_key), f"{bare},{server_first},{signed}".encode())
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    return server.evaluate(f"{final},p={proof}".encode())


def test_scram_final_nonce_must_equal_the_server_firsts() -> None:
    """librdkafka before 2.6.1 (kcat 1.7.1) sends its nonce, then the server-first's, and signs
    that: Kafka 4.4 refuses it before looking at the proof."""
    credential = SHA256.credential_from_password("pw", 4096)
    server = ScramServer(SHA256, lambda user, m: credential)
    with pytest.raises(InvalidCredentials, match="Invalid client nonce in the final client message."):
        _signed_final(server, "pw", "n,,n=alice,r=abc", "c=biws,r=abc{nonce}")
    assert not server.complete and server.principal is None


@pytest.mark.parametrize(("first", "final", "signed_first", "signed_final", "accepted"), [
    # The channel binding is signed, never compared with the GS2 header.
    ("n,,n=alice,r=abc", "c=eSws,r={nonce}", None, None, True),
    ("n,a=alice,n=alice,r=abc", "c=biws,r={nonce}", None, None, True),
    # Kafka's AuthMessage leaves out a client-final's extensions and a client-first's m=.
    ("n,,n=alice,r=abc", "c=biws,r={nonce},ext=1", None, "c=biws,r={nonce}", True),
    ("n,,n=alice,r=abc", "c=biws,r={nonce},ext=1", None, None, False),
    ("n,,m=ext,n=alice,r=abc", "c=biws,r={nonce}", "n=alice,r=abc", None, True),
    ("n,,m=ext,n=alice,r=abc", "c=biws,r={nonce}", None, None, False),
    ("n,,n=alice,r=abc,ext=1", "c=biws,r={nonce}", None, None, True),
    # A repeated extension keeps its place and takes the last value (Kafka's Utils.parseMap).
    ("n,,n=alice,r=abc,ext=1,ext=2", "c=biws,r={nonce}", "n=alice,r=abc,ext=2", None, True),
])
def test_scram_proof_is_verified_over_the_auth_message_kafka_rebuilds(first: str, final: str, signed_first: str | None,
                                                                     signed_final: str | None, accepted: bool) -> None:
    credential = SHA256.credential_from_password("pw", 4096)
    server = ScramServer(SHA256, lambda user, m: credential)
    if accepted:
        assert _signed_final(server, "pw", first, final, signed_first, signed_final).startswith(b"v=")
        assert server.complete and server.principal == "alice"
    else:
        with pytest.raises(InvalidCredentials, match="Invalid client credentials"):
            _signed_final(server, "pw", first, final, signed_first, signed_final)


@pytest.mark.parametrize("proof", [b"", b"AAAA", b"AAAAAA=="])
def test_a_proof_of_the_wrong_length_closes_the_connection_unanswered(proof: bytes) -> None:
    """Kafka's ScramFormatter.xor throws IllegalArgumentException, which its SASL layers do not
    catch: the connection is closed without a SaslAuthenticate answer."""
    credentials = ScramCredentialStore(None, {"alice": {SHA256: SHA256.credential_from_password("pw", 4096)}})
    authenticator = SaslAuthenticator(SaslSettings(("SCRAM-SHA-256",)), credentials)
    assert authenticator.handshake("SCRAM-SHA-256", 1) is ErrorCode.NONE
    error, _, server_first, _ = authenticator.authenticate(b"n,,n=alice,r=abc", 2, 0.0)
    assert error is ErrorCode.NONE
    nonce = server_first.split(b",")[0][2:]
    with pytest.raises(SaslServerError):
        authenticator.authenticate(b"c=biws,r=" + nonce + b",p=" + proof, 2, 0.0)
    assert authenticator.failed


def test_scram_refuses_another_authorization_id_and_token_auth() -> None:
    credential = SHA256.credential_from_password("pw", 4096)
    with pytest.raises(AuthenticationFailed, match="authorization id that is different"):
        ScramServer(SHA256, lambda user, m: credential).evaluate(b"n,a=bob,n=alice,r=abc")
    # Kafka compares the authorization id as sent with the decoded user name.
    with pytest.raises(AuthenticationFailed, match="authorization id that is different"):
        ScramServer(SHA256, lambda user, m: credential).evaluate(b"n,a=a=2Cb,n=a=2Cb,r=abc")
    with pytest.raises(InvalidCredentials, match="Token Authentication failed"):
        ScramServer(SHA256, lambda user, m: credential).evaluate(b"n,,n=tokenid,r=abc,tokenauth=true")


def test_scram_usernames_decode_escapes() -> None:
    credential = SHA256.credential_from_password("pw", 4096)
    seen = []
    ScramServer(SHA256, lambda user, m: seen.append(user) or credential).evaluate(b"n,,n=a=2Cb=3Dc,r=abc")
    assert seen == ["a,b=c"]


def test_plain() -> None:
    users = {"alice": "alice-secret"}
    server = PlainServer(users)
    assert server.evaluate(b"\0alice\0alice-secret") == b""
    assert server.complete and server.principal == "alice"
    assert PlainServer(users).evaluate(b"alice\0alice\0alice-secret") == b""
    cases = {
        b"\0alice\0wrong": "Invalid username or password",
        b"\0bob\0alice-secret": "Invalid username or password",
        b"\0\0pw": "username not specified",
        b"\0alice\0": "password not specified",
        b"alice-secret": "expected 3 tokens, got 1",
        b"a\0b\0c\0d": "expected 3 tokens, got 4",
        b"bob\0alice\0alice-secret": "authorization id that is different",
    }
    for message, complaint in cases.items():
        with pytest.raises(AuthenticationFailed, match=complaint) as failure:
            PlainServer(users).evaluate(message)
        assert "alice-secret" not in str(failure.value)


def test_jaas_config_parsing() -> None:
    module = parse_jaas_config(
        'org.apache.kafka.common.security.plain.PlainLoginModule required\n username="admin" password="admin-secret"'
        ' user_admin="admin-secret" user_alice="a \\"quoted\\" pass;word=x" user_bob=bare;'
    )
    assert module.name == "org.apache.kafka.common.security.plain.PlainLoginModule" and module.flag == "required"
    assert module.plain_users() == {"admin": "admin-secret", "alice": 'a "quoted" pass;word=x', "bob": "bare"}
    assert "admin-secret" not in repr(module)
    for bad in ["", 'Module required user_a="SECRET"', "Module always;", "Module required a=;", "A required; B required;", 'Module required a="SECRET']:
        with pytest.raises(JaasError) as failure:
            parse_jaas_config(bad)
        assert "SECRET" not in str(failure.value)


def test_listener_settings_read_kafka_keys() -> None:
    """Read through BrokerConfig.listener_value, as the broker reads them."""
    from ottla.server.config import BrokerConfig

    config = BrokerConfig.from_settings(
        {
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="pw";',
            "connections.max.reauth.ms": "60000",
            "listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms": "5000",
        }
    )
    sasl = listener_sasl_settings(lambda name: config.listener_value("SASL_PLAINTEXT", name), "SASL_PLAINTEXT")
    assert sasl.enabled_mechanisms == ("PLAIN", "SCRAM-SHA-512")
    assert sasl.plain_users == {"alice": "pw"}
    assert sasl.max_reauth_ms == {"PLAIN": 60000, "SCRAM-SHA-512": 5000}
    with pytest.raises(ValueError, match="GSSAPI"):
        listener_sasl_settings(lambda name: config.listener_value("OTHER", name), "OTHER")
    with pytest.raises(ValueError, match="plain.sasl.jaas.config is not set"):
        listener_sasl_settings({"sasl.enabled.mechanisms": "PLAIN", "sasl.jaas.config": "x"}.get, "SASL_PLAINTEXT")


def test_credential_store_keeps_no_password_and_survives_reopen(tmp_path) -> None:
    store = ScramCredentialStore.open(tmp_path)
    credential = SHA512.credential_from_password("s3cret-password", 8192)
    store.apply([], [("alice", SHA512, credential), ("bob", SHA256, SHA256.credential_from_password("x", 4096))])
    store.apply([("bob", SHA256)], [])
    text = (tmp_path / "scram-credentials.json").read_text()
    assert "s3cret-password" not in text and json.loads(text)["users"].keys() == {"alice"}
    reopened = ScramCredentialStore.open(tmp_path)
    assert reopened.get("alice", SHA512) == credential
    assert list(reopened.users()) == ["alice"]
    assert reopened.get("bob", SHA256) is None


def _plain_authenticator(**settings) -> SaslAuthenticator:
    return SaslAuthenticator(SaslSettings(("PLAIN", "SCRAM-SHA-256"), {"alice": "pw"}, **settings), ScramCredentialStore(None, {}))


def test_authenticator_gates_requests_as_kafka_does() -> None:
    sasl = _plain_authenticator()
    sasl.check(ApiKey.API_VERSIONS, 0)
    sasl.check(ApiKey.SASL_HANDSHAKE, 0)
    with pytest.raises(IllegalSaslState, match="Unexpected Kafka request of type METADATA during SASL handshake."):
        sasl.check(ApiKey.METADATA, 0)
    with pytest.raises(IllegalSaslState) as before_handshake:
        sasl.check(ApiKey.SASL_AUTHENTICATE, 0)
    assert not before_handshake.value.answered and not sasl.failed
    assert sasl.handshake("PLAIN", 1) is ErrorCode.NONE
    sasl.check(ApiKey.SASL_AUTHENTICATE, 0)
    assert sasl.authenticate(b"\0alice\0pw", 2, 0) == (ErrorCode.NONE, None, b"", 0)
    assert sasl.authenticated and sasl.principal == "User:alice"
    sasl.check(ApiKey.METADATA, 0)
    assert sasl.handshake("PLAIN", 1) is ErrorCode.ILLEGAL_SASL_STATE
    assert sasl.authenticate(b"", 2, 0)[0] is ErrorCode.ILLEGAL_SASL_STATE


def test_a_request_where_a_token_was_due_is_answered_and_fails_the_exchange() -> None:
    sasl = _plain_authenticator()
    assert sasl.handshake("PLAIN", 1) is ErrorCode.NONE
    with pytest.raises(IllegalSaslState, match="Unexpected Kafka request of type API_VERSIONS during SASL authentication.") as raised:
        sasl.check(ApiKey.API_VERSIONS, 0)
    assert raised.value.answered and sasl.failed


def test_authenticator_failures() -> None:
    sasl = _plain_authenticator()
    assert sasl.handshake("GSSAPI", 1) is ErrorCode.UNSUPPORTED_SASL_MECHANISM and sasl.failed
    sasl = _plain_authenticator()
    sasl.handshake("PLAIN", 1)
    error, message, _, _ = sasl.authenticate(b"\0alice\0wrong", 2, 0)
    assert (error, message) == (ErrorCode.SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password")
    assert sasl.failed
    sasl = _plain_authenticator()
    sasl.handshake("SCRAM-SHA-256", 1)
    error, message, _, _ = sasl.authenticate(b"n,,n=nobody,r=abc", 2, 0)
    # Kafka does not tell the client whether the user exists.
    assert message == "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"


def test_raw_tokens_after_handshake_v0() -> None:
    sasl = _plain_authenticator()
    sasl.handshake("PLAIN", 0)
    assert sasl.raw_tokens
    assert sasl.evaluate_raw(b"\0alice\0pw", 0) == b""
    assert sasl.authenticated and not sasl.raw_tokens


def test_session_lifetime_and_reauthentication() -> None:
    sasl = _plain_authenticator(max_reauth_ms={"PLAIN": 10_000})
    sasl.handshake("PLAIN", 1)
    assert sasl.authenticate(b"\0alice\0pw", 2, 100.0)[3] == 10_000
    assert sasl.session_expires_at == 110.0
    sasl.check(ApiKey.METADATA, 109.9)
    with pytest.raises(IllegalSaslState, match="expired"):
        sasl.check(ApiKey.METADATA, 110.0)
    sasl.check(ApiKey.SASL_HANDSHAKE, 110.0)
    assert sasl.handshake("PLAIN", 1) is ErrorCode.NONE and sasl.state is SaslState.REAUTHENTICATE
    assert sasl.authenticate(b"\0alice\0pw", 2, 111.0)[0] is ErrorCode.NONE
    assert sasl.session_expires_at == 121.0
    # Another principal on re-authentication is refused.
    sasl = SaslAuthenticator(SaslSettings(("PLAIN",), {"alice": "pw", "bob": "pw"}, {"PLAIN": 1000}), ScramCredentialStore(None, {}))
    sasl.handshake("PLAIN", 1)
    sasl.authenticate(b"\0alice\0pw", 1, 0.0)
    sasl.handshake("PLAIN", 1)
    error, message, _, _ = sasl.authenticate(b"\0bob\0pw", 1, 0.5)
    assert error is ErrorCode.SASL_AUTHENTICATION_FAILED and message == "Cannot change principals during re-authentication from User.alice: User.bob"
    assert sasl.failed


def test_a_v0_client_is_held_to_the_session_lifetime_too() -> None:
    """KIP-368 as Kafka's SaslServerAuthenticator does it: the session ends after its lifetime
    whatever the SaslAuthenticate version (or raw tokens); a client that cannot re-authenticate
    is closed then rather than kept past an expired credential."""
    sasl = _plain_authenticator(max_reauth_ms={"PLAIN": 1000})
    sasl.handshake("PLAIN", 1)
    sasl.authenticate(b"\0alice\0pw", 0, 0.0)
    assert sasl.session_expires_at == 1.0
    raw = _plain_authenticator(max_reauth_ms={"PLAIN": 1000})
    raw.handshake("PLAIN", 0)
    raw.evaluate_raw(b"\0alice\0pw", 5.0)
    assert raw.session_expires_at == 6.0
