"""SCRAM client-final messages, well-formed and odd, sent over raw sockets to Ottla and to the
reference Kafka 4.4 (both with a SASL_PLAINTEXT listener and the same user): each must get the
same answer from both (SaslAuthenticate's error code and message, and whether the connection
then closes), or be closed unanswered by both.

The odd ones are what real clients send: librdkafka before 2.6.1 (kcat 1.7.1's 2.0.2) repeats
its own nonce before the combined one, which Kafka 4.x refuses (ScramSaslServer compares the
nonce for equality); a channel binding other than the GS2 header, and extensions in either
message, which Kafka does not check but leaves out of the AuthMessage it verifies the proof
over; and a proof of the wrong length, on which Kafka's ScramFormatter.xor throws an unexpected
exception and the connection closes without an answer."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse

from compat import kafka as reference
from kafka_wire import RawClient
from ottla.server.config import BrokerConfig
from ottla.server.security.sasl.scram import ScramMechanism
from ottla.testing import running_broker
from unavailable import unavailable

pytestmark = [pytest.mark.external, pytest.mark.slow]

USER, PASSWORD = "scram-diff", "scram-diff-secret"
CLIENT_NONCE = "fyko+d2lbbFgONRv9qkxdawL"
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


def _settings(plaintext_port: int, sasl_port: int) -> dict[str, str]:
    """The same SASL_PLAINTEXT listener on both brokers (port 0: Ottla picks its own)."""
    listeners = f"PLAINTEXT://127.0.0.1:{plaintext_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
    return {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        **{f"listener.name.sasl_plaintext.{m.lower()}.sasl.jaas.config": SCRAM_JAAS for m in MECHANISMS},
    }


@dataclass(frozen=True)
class Case:
    """A client-first message (`{user}`, `{cnonce}`: the user and the client's nonce) and the
    client-final one without its proof (`{nonce}`: the server-first's combined nonce). The
    proof is computed, as RFC 5802 says, over the client-first message after its GS2 header,
    the server-first and the client-final without its proof, unless `signed_first` or
    `signed_final` replace those parts; or it is the fixed `proof`."""

    mechanism: str
    first: str = "n,,n={user},r={cnonce}"
    final: str = "c=biws,r={nonce}"
    signed_first: str | None = None
    signed_final: str | None = None
    proof: str | None = None


CASES = {
    "well-formed SHA-256": Case("SCRAM-SHA-256"),
    "well-formed SHA-512": Case("SCRAM-SHA-512"),
    # librdkafka < 2.6.1 (kcat 1.7.1): its nonce, then the server-first's (which starts with it).
    "client nonce repeated SHA-256": Case("SCRAM-SHA-256", final="c=biws,r={cnonce}{nonce}"),
    "client nonce repeated SHA-512": Case("SCRAM-SHA-512", final="c=biws,r={cnonce}{nonce}"),
    "client nonce only": Case("SCRAM-SHA-256", final="c=biws,r={cnonce}"),
    "nonce with a suffix": Case("SCRAM-SHA-256", final="c=biws,r={nonce}x"),
    "channel binding of another header": Case("SCRAM-SHA-256", final="c=eSws,r={nonce}"),
    "authorization id of the user": Case("SCRAM-SHA-256", first="n,a={user},n={user},r={cnonce}", final="c=bixhPXNjcmFtLWRpZmYs,r={nonce}"),
    "authorization id, binding without it": Case("SCRAM-SHA-256", first="n,a={user},n={user},r={cnonce}"),
    "final extension, proof without it": Case("SCRAM-SHA-256", final="c=biws,r={nonce},ext=1", signed_final="c=biws,r={nonce}"),
    "final extension, proof with it": Case("SCRAM-SHA-256", final="c=biws,r={nonce},ext=1"),
    "reserved extension, proof with it": Case("SCRAM-SHA-256", first="n,,m=ext,n={user},r={cnonce}"),
    "reserved extension, proof without it": Case("SCRAM-SHA-256", first="n,,m=ext,n={user},r={cnonce}", signed_first="n={user},r={cnonce}"),
    "first extension": Case("SCRAM-SHA-256", first="n,,n={user},r={cnonce},ext=1"),
    "short proof": Case("SCRAM-SHA-256", proof="AAAA"),
    "empty proof": Case("SCRAM-SHA-256", proof=""),
    "unpadded proof": Case("SCRAM-SHA-256", proof="AAAAAA"),
}

# What one exchange came to: ("ok",), the server's signature verified; or (error code, error
# message, whether the connection closed after the answer); or ("unanswered",): closed.
Outcome = tuple[object, ...]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _exchange(bootstrap: str, case: Case) -> Outcome:
    mechanism = ScramMechanism.by_name(case.mechanism)
    assert mechanism is not None
    values = {"user": USER, "cnonce": CLIENT_NONCE}
    first = case.first.format(**values)
    bare = first.split(",", 2)[2] if case.signed_first is None else case.signed_first.format(**values)
    with RawClient(bootstrap) as client:
        assert client.call(SaslHandshakeRequest(mechanism=case.mechanism), 1, SaslHandshakeResponse).error_code == 0
        answer = client.call(SaslAuthenticateRequest(auth_bytes=first.encode()), 2, SaslAuthenticateResponse)
        assert answer.error_code == 0, answer
        server_first = answer.auth_bytes.decode()
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        values["nonce"] = fields["r"]
        final = case.final.format(**values)
        signed_final = final if case.signed_final is None else case.signed_final.format(**values)
        auth_message = f"{bare},{server_first},{signed_final}".encode()
        salted = mechanism.salted_password(PASSWORD, base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = mechanism.hmac(salted, b"Client Key")
        signature = mechanism.hmac(mechanism.hash(client_key), auth_message)
        proof = case.proof if case.proof is not None else base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
        client.send(SaslAuthenticateRequest(auth_bytes=f"{final},p={proof}".encode()), 2)
        try:
            frame = client.receive_frame()
        except (ConnectionError, OSError):
            return ("unanswered",)
        answer = SaslAuthenticateResponse.decode(frame, version=2, header=True)
        if answer.error_code == 0:
            server_signature = mechanism.hmac(mechanism.hmac(salted, b"Server Key"), auth_message)
            assert answer.auth_bytes == b"v=" + base64.b64encode(server_signature), answer
            return ("ok",)
        return (answer.error_code, answer.error_message, _closed(client.sock))


@pytest.fixture(scope="module")
def ottla_sasl() -> Iterator[str]:
    config = BrokerConfig.from_settings({**_settings(0, 0), "data.dir": None})
    add_scram = [f"{m}=[name={USER},password={PASSWORD}]" for m in MECHANISMS]
    with running_broker(config=config, add_scram=add_scram) as broker:
        assert broker.broker is not None
        yield f"127.0.0.1:{broker.broker.bound_ports['SASL_PLAINTEXT']}"


def _logs_in(bootstrap: str) -> bool:
    try:
        return all(_exchange(bootstrap, CASES[f"well-formed {m[-7:]}"]) == ("ok",) for m in MECHANISMS)
    except (AssertionError, OSError):
        return False


@pytest.fixture(scope="module")
def kafka_sasl() -> Iterator[str]:
    """The reference Kafka 4.4 with the same listener and user (its credentials reach the
    authenticator through the metadata log: ready once a well-formed login succeeds)."""
    if not reference.is_fetched():
        unavailable(f"reference Kafka {reference.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`")
    from kafka.admin import KafkaAdminClient, ScramMechanism as Mechanism, UserScramCredentialUpsertion

    kafka = reference.ReferenceKafka()
    try:
        sasl_port = _free_port()
        kafka.reconfigure(_settings(kafka.port, sasl_port))  # its first start
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, request_timeout_ms=15000)
        try:
            for m in MECHANISMS:  # Kafka refuses two alterations of one user in one request
                failed = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(USER, Mechanism[m.replace("-", "_")], PASSWORD)])
                assert not any(failed.values()), failed
        finally:
            admin.close()
        bootstrap = f"127.0.0.1:{sasl_port}"
        deadline = time.monotonic() + 30
        while not _logs_in(bootstrap):
            assert time.monotonic() < deadline, "the reference Kafka never accepted the new SCRAM credentials"
            time.sleep(0.2)
        yield bootstrap
    finally:
        kafka.close()


def test_scram_final_messages_are_answered_as_kafka_answers_them(ottla_sasl: str, kafka_sasl: str) -> None:
    answers = {name: (_exchange(ottla_sasl, case), _exchange(kafka_sasl, case)) for name, case in CASES.items()}
    differences = [f"{name}: Ottla {ours}, Kafka {theirs}" for name, (ours, theirs) in answers.items() if ours != theirs]
    assert not differences, "\n".join(differences)
    # The comparison means something only if Kafka both accepts and refuses among these.
    assert {kafkas[0] for _, kafkas in answers.values()} >= {"ok", 58, "unanswered"}, answers
