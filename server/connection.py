"""One asyncio Protocol per client socket: framing, pipelining, ordered responses.

Requests are decoded as they arrive and handed to their handler at once, so several
can be in flight (a parked Fetch does not stop a Metadata behind it from being
worked on), but responses leave strictly in request order, as Kafka clients expect.
Acks=0 produce requests get no response at all.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol, cast

from ottla.server.context import ANONYMOUS, BrokerServices, ClientIdentity, CloseWhenAnswered, DropConnection, RequestContext
from ottla.server.dispatch import Deferred, Dispatcher, Throttled
from ottla.server.sendfile import SEND_TIMEOUT, ThreadSend, TlsThreadSend, open_region
from ottla.server.security.listeners import SecurityProtocol
from ottla.wire.api import ApiKey
from ottla.wire.errors import MalformedFrame
from ottla.wire.framing import FrameReader, FrameTooLarge, frame as size_prefixed
from ottla.wire.header import peek_api

# SASL is imported by the connections of SASL listeners only: a broker without one never loads it.
if TYPE_CHECKING:
    from ottla.server.security.quotas import Refusal
    from ottla.server.security.sasl import SaslAuthenticator, SaslState

log = logging.getLogger("ottla.connection")

# Stop taking requests from a client that has this many responses waiting to be written,
MAX_IN_FLIGHT = 256
# or finished responses of this many bytes held behind an unfinished one (about one
# largest fetch response: fetch.max.bytes is 55 MiB),
MAX_HELD_BYTES = 64 * 1024 * 1024
# or this many parked Fetch requests, each of which may wake to build a 55 MiB answer at
# once. Stock clients keep one fetch in flight per connection; Kafka takes one request of
# any kind at a time.
MAX_PARKED_FETCHES = 4
# or requests of this many bytes still being handled: produce requests waiting for an
# asynchronous engine's commit (PostgreSQL). librdkafka pipelines without limit, so without it
# a PostgreSQL broker held MAX_IN_FLIGHT 1 MiB produce requests (330 MB RSS); two of its
# group commits' 8 MiB still fit, so a partition's next group gathers while one is stored.
MAX_WORKING_BYTES = 16 * 1024 * 1024
# Requests one connection has handled in a turn of the event loop before the others get
# theirs: a few, of about BYTES_PER_TURN in all (a larger one is a turn of its own), so a
# client that pipelines thousands of small requests in one read does not make everyone wait
# for all of them (an ApiVersions flood held other clients for 1.2 s without this). More than
# one, because each request left buffered costs a turn of the loop of its own, and reading
# stops (an epoll_ctl pair) until they are done: a producer keeping five 16 KiB batches in
# flight cost the broker a fifth more CPU per request when they were taken one per turn.
FRAMES_PER_TURN = 8
BYTES_PER_TURN = 64 * 1024
# Answers written together in one write() up to this size; larger ones go one by one, so
# no 50 MB fetch answer is copied only to be joined. Also how many bytes of finished answers
# a connection holds back while its next pipelined request is still to be handled.
_JOIN_BELOW = 1 << 20
# Read and written at a time when a file region cannot go by sendfile.
COPY_CHUNK_BYTES = 1 << 20
# An answer whose file regions add up to this much is sent whole (its buffers with writev, its
# regions with sendfile; both leave the GIL) by a worker thread, the event loop free meanwhile:
# on 8-partition 1 KiB consume that halved the loop's CPU per MB (compat/SCALING.md), as
# asyncio's loop.sendfile pays a future and an add_writer/remove_writer pair for every socket
# buffer's worth. Below it the hand-off costs about what it saves. The worker sends the answer
# from its first byte to its last, so one hand-off serves all its regions, and the client has
# the answer's last bytes without waiting for the loop to wake up after the last region.
THREAD_SENDFILE_BYTES = 256 * 1024


def _settle(future: asyncio.Future[None], error: Exception | None = None) -> None:
    """Settle `future` once (with `error` if given), however often a level-triggered callback
    calls this; a future already settled, or cancelled by its waiter, is left alone."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


# Per event loop with a turn taken in its current iteration: the connections whose later turns
# (all but the first, which writes its answers at once) wait for the iteration's end to write
# them (`Connection._flush`). One `_end_iteration` callback, queued by the first turn, writes
# them all: a callback per connection cost about as much as the write it deferred.
_later_turns: dict[asyncio.AbstractEventLoop, list[Connection]] = {}


def _end_iteration(loop: asyncio.AbstractEventLoop) -> None:
    for connection in _later_turns.pop(loop, ()):
        try:
            connection._write_at_turn_end()
        except Exception:
            # As the loop would report a callback's failure; the other connections still write.
            log.exception("writing the answers of %s failed", connection.peer)


class ConnectionRegistry(Protocol):
    """Counts sockets against the broker's limits from their accept on (the broker is one): a
    TLS listener's acceptor admits them before their handshake, as Kafka's Acceptor counts
    them before their channel exists."""

    def admit(self, ip: str, listener: str) -> Refusal | None:
        """Count a new socket from `ip` in, or say which limit refuses it."""

    def enrol(self, connection: Connection) -> None:
        """Serve an admitted socket's `connection` (idle sweep, reconfiguration)."""

    def release(self, ip: str, listener: str, connection: Connection | None) -> None:
        """Count a closed socket from `ip` to `listener` out, and its connection if it had one."""


class _Slot:
    """A response position in the connection's ordered queue."""

    __slots__ = ("payload", "done")

    def __init__(self) -> None:
        self.payload: Any = None
        self.done = False


def _held_size(payload: Any) -> int:
    """Bytes of memory a finished response holds: its buffers, not its file regions."""
    if payload is None:
        return 0
    if isinstance(payload, bytes):
        return len(payload)
    return sum(len(part) for part in payload if isinstance(part, (bytes, bytearray, memoryview)))


class Connection(asyncio.BufferedProtocol):
    def __init__(
        self,
        dispatcher: Dispatcher,
        services: BrokerServices,
        registry: ConnectionRegistry,
        listener: str,
        security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT,
        principal: str = ANONYMOUS,
        sasl: SaslAuthenticator | None = None,
    ) -> None:
        """`principal` is who the transport says the peer is (a TLS client certificate's);
        `sasl`, on a SASL listener, authenticates the client before anything else is served."""
        self.dispatcher = dispatcher
        self.services = services
        self.registry = registry
        self.listener = listener
        self.security_protocol = security_protocol
        self.principal = principal
        self.sasl = sasl
        self.context = RequestContext(services, ClientIdentity(principal, listener, "?", security_protocol), sasl)
        self.reader = FrameReader(services.config.socket_request_max_bytes)
        # What closes this connection unanswered, and the state of a finished SASL exchange.
        self._dropped_by: tuple[type[Exception], ...] = (DropConnection,)
        self._sasl_complete: SaslState | None = None
        self._sasl_handshake: SaslState | None = None
        self._sasl_reauthenticate: SaslState | None = None
        # A re-authentication runs: its frames are bounded as a login's.
        self._reauthenticating = False
        if sasl is not None:
            from ottla.server.security.sasl import IllegalSaslState, SaslServerError, SaslState

            self._dropped_by = (DropConnection, IllegalSaslState, SaslServerError)
            self._sasl_complete = SaslState.COMPLETE
            self._sasl_handshake = SaslState.HANDSHAKE
            self._sasl_reauthenticate = SaslState.REAUTHENTICATE
            # Kafka's sasl.server.max.receive.size: the largest frame before authentication
            # (and while re-authenticating, `_after_sasl_step`).
            self.reader.max_size = min(self.reader.max_size, services.config.value("sasl.server.max.receive.size"))
        self._authentication_deadline: asyncio.TimerHandle | None = None
        # A close once what is in flight is answered (`_close_when_answered`): read nothing
        # more, answer that, then after `_close_delay_ms` send `_failure_answer` (if any) and
        # close, logging `_close_reason`. The timer is that delay's, pending.
        self._closing = False
        self._failure_answer: bytes | None = None
        self._close_delay_ms = 0
        self._close_reason = ""
        self._delayed_close: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self.peer = "?"
        self.pending: collections.deque[_Slot] = collections.deque()
        # Finished responses not yet handed to the transport (only while a sendfile runs).
        self.outbox: collections.deque[Any] = collections.deque()
        # What writes the outbox while a file region is sent (the connection's other writes wait).
        self._sender: asyncio.Task[None] | ThreadSend | None = None
        # A TLS answer's worker, which holds the transport's SSL object until it ends: reading is
        # left alone meanwhile (TlsThreadSend).
        self._tls_send: TlsThreadSend | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        # Counted against the connection limits: by `connection_made`, or before the TLS
        # handshake by a TLS listener's acceptor, which sets it.
        self.admitted = False
        # time.monotonic() when bytes last came (the idle sweep reads the same clock, and counts
        # written bytes the client took, `idle_for`): a C call per read, where the loop's time()
        # is a Python method around it.
        self.last_active = 0.0
        # The transport's unsent bytes when the idle sweep last looked.
        self._unsent = 0
        self._reading_paused = False
        self._writing_paused = False
        self._writable: asyncio.Future[None] | None = None  # awaited by _copy_region while writing is paused
        self._held_bytes = 0
        # Bytes of the requests whose handlers are still running (Deferred work).
        self._working_bytes = 0
        self._parked_fetches = 0
        # Reading stops while a quota throttles this client (KIP-219's muted channel).
        self._throttled = False
        self._throttle_timer: asyncio.TimerHandle | None = None
        self._taking_frames = False
        # A whole frame waits in the reader (a turn ended, or the client was backlogged).
        self._frames_waiting = False
        self._turn_scheduled = False
        # A later turn of this iteration of the loop ran: its answers are written at the iteration's end.
        self._write_due = False

    def reconfigure(self, services: BrokerServices) -> None:
        """Serve the next requests with changed services (dynamic broker configs): the same client."""
        self.services = services
        self.context = RequestContext(services, self.context.client, self.sasl)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.ip = peer[0] if peer else "?"
        self.context = RequestContext(self.services, ClientIdentity(self.principal, self.listener, self.peer, self.security_protocol), self.sasl)
        self.last_active = time.monotonic()
        if not self.admitted:
            refusal = self.registry.admit(self.ip, self.listener)
            if refusal is not None:
                log.info("refusing connection from %s: %s", self.peer, refusal.reason)
                self.closed = True
                refusal.close(transport)
                return
            self.admitted = True
        self.registry.enrol(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Read only while a sendfile worker holds the socket blocking (_sendfile_worker).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, SEND_TIMEOUT)
        if self.sasl is not None:
            # Kafka bounds an unfinished SASL exchange only by connections.max.idle.ms between
            # frames; Ottla bounds the whole exchange by it, so trickled bytes cannot hold one open.
            timeout = max(self.services.config.connections_max_idle_ms, 0) / 1000
            self._authentication_deadline = asyncio.get_running_loop().call_later(timeout, self._authentication_timed_out)
        log.info("connection opened from %s on listener %s as %s", self.peer, self.listener, self.principal)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.admitted:
            return
        self.registry.release(self.ip, self.listener, self)
        if self._authentication_deadline is not None:
            self._authentication_deadline.cancel()
        if self._delayed_close is not None:
            self._delayed_close.cancel()
        for task in self.tasks:
            task.cancel()
        if self._sender is not None:
            self._sender.cancel()
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
        log.info("connection closed from %s", self.peer)

    def idle_for(self, now: float) -> float:
        """Seconds without activity, for the idle sweep: bytes read, or written bytes the client
        took (the transport's buffer changed since the sweep last looked; asyncio calls
        resume_writing only once a large answer is nearly all sent), as Kafka's Selector counts
        any ready key. An answer with file regions being sent is activity: its sender writes
        past the transport's buffer."""
        if self._sender is not None:
            return 0.0
        unsent = self.transport.get_write_buffer_size() if self.transport is not None else 0
        if unsent != self._unsent:
            self._unsent = unsent
            self.last_active = now
        return now - self.last_active

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()
        self._resume()

    def _wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _backlogged(self) -> bool:
        """Whether this client is not reading its responses fast enough to be given more."""
        return (
            self._writing_paused
            or self._throttled
            or len(self.pending) + len(self.outbox) >= MAX_IN_FLIGHT
            or self._held_bytes >= MAX_HELD_BYTES
            or self._parked_fetches >= MAX_PARKED_FETCHES
            or self._working_bytes >= MAX_WORKING_BYTES
        )

    def _update_reading(self) -> None:
        if self.transport is None or self.closed or (self._tls_send is not None and self._tls_send.held):
            return
        # Not while a turn is due either: the frames already buffered come first.
        should_pause = self._turn_scheduled or self._closing or self._backlogged()
        if should_pause and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self.transport.resume_reading()
            self._reading_paused = False

    def get_buffer(self, sizehint: int) -> memoryview:
        # The socket is read straight into the frame buffer: no per-chunk copy.
        return self.reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if self.closed:
            return
        self.last_active = time.monotonic()
        self.reader.buffer_updated(nbytes)
        self._take_frames()

    def _take_frames(self) -> None:
        """One turn: handle up to FRAMES_PER_TURN of the frames received (no more once they
        add up to BYTES_PER_TURN), until the client is backlogged, then write their answers
        (see `_flush`). The rest wait in the frame buffer, with reading stopped, for the next
        turn or for the backlog to shrink: a client that pipelines requests without reading the
        answers holds a bounded amount of memory (backpressure, as Kafka's muted channel), and a
        flood of them does not hold the loop."""
        if self._taking_frames or self.closed:
            return
        self._taking_frames = True
        loop = self._loop
        later = _later_turns.get(loop)
        if later is None:
            _later_turns[loop] = []
            # Queued before the requests are handled, so ahead of whatever handling them
            # schedules (a parked fetch woken by an append runs after this turn's answers leave).
            loop.call_soon(_end_iteration, loop)
        elif not self._write_due:
            self._write_due = True
            later.append(self)
        # Whether a whole frame waits is asked before the backlog is, so that the turn's last
        # frame costs no backlog check, and the answer after it is the turn's `_frames_waiting`.
        reader = self.reader
        waiting = reader.has_frame()
        taken = 0
        try:
            for _ in range(FRAMES_PER_TURN):
                if not waiting or taken >= BYTES_PER_TURN or self.closed or self._closing or self._backlogged():
                    break
                frame = reader.next_frame()
                if frame is None:
                    break
                taken += len(frame)
                self._handle_frame(frame)
                waiting = reader.has_frame()
        except FrameTooLarge as exc:
            if self.sasl is not None and not self.sasl.authenticated:
                # Over sasl.server.max.receive.size: Kafka's SaslServerAuthenticator fails the
                # login or the re-authentication, a delayed close either way (KafkaChannel.prepare).
                self._fail_login(None, str(exc))
            else:
                self.abort(f"malformed request: {exc}")
        except MalformedFrame as exc:
            self.abort(f"malformed request: {exc}")
        except CloseWhenAnswered as exc:
            self._close_when_answered(None, 0, str(exc))
        except self._dropped_by as exc:
            self.abort(str(exc), logging.INFO)
        except Exception:
            # A bug of ours, not the client's: log it in full, drop only this connection.
            log.exception("request handling failed for %s", self.peer)
            self.abort("internal error")
        finally:
            self._taking_frames = False
        # A failed frame aborted the connection (it is closed) after `waiting` was last asked.
        self._frames_waiting = reader.has_frame() if self.closed else waiting
        self._flush()

    def _resume(self) -> None:
        """The backlog may have shrunk: frames left waiting get a turn (on the next
        iteration of the loop, never recursively), and reading resumes once they are done."""
        if self._frames_waiting and not self._turn_scheduled and not self.closed and not self._backlogged():
            self._turn_scheduled = True
            self._loop.call_soon(self._next_turn)
        self._update_reading()

    def _next_turn(self) -> None:
        self._turn_scheduled = False
        self._take_frames()

    def abort(self, reason: str, level: int = logging.WARNING) -> None:
        """Close this connection (a protocol violation, or idleness); other clients are untouched."""
        if self.closed:
            return
        log.log(level, "closing connection from %s: %s", self.peer, reason)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _authentication_timed_out(self) -> None:
        self._authentication_deadline = None
        if self.sasl is not None and self.sasl.principal is None:
            self.abort("SASL authentication not completed within connections.max.idle.ms", logging.INFO)

    def _handle_frame(self, frame: bytearray) -> None:
        sasl = self.sasl
        if sasl is not None and (sasl.state is not self._sasl_complete or sasl.session_expires_at is not None):
            if self._sasl_gate(sasl, frame):
                return
        outcome = self.dispatcher.dispatch(self.context, frame)
        if sasl is not None and self._after_sasl_step(sasl, outcome):
            return
        delayed = False
        if type(outcome) is Throttled:
            delayed = self._throttle(outcome)
            outcome = outcome.payload
        if outcome is None:  # acks=0 produce: no response, nothing to order
            return
        if not self.pending and type(outcome) is bytes and not delayed:
            # Answered at once with nothing unfinished before it: straight to the outbox.
            self.outbox.append(outcome)
            self._held_bytes += len(outcome)
            return
        slot = _Slot()
        self.pending.append(slot)
        if isinstance(outcome, Deferred):
            task = self._loop.create_task(outcome.work)
            self.tasks.add(task)
            fetch = int.from_bytes(frame[:2], "big") == ApiKey.FETCH
            self._parked_fetches += fetch
            size = len(frame)
            self._working_bytes += size
            task.add_done_callback(lambda t: self._finished(t, slot, fetch, size, outcome.finish))
        elif delayed:
            self._complete_later(slot, outcome)
        else:
            self._complete(slot, outcome)

    def _throttle(self, throttled: Throttled) -> bool:
        """Stop reading this client's requests for the throttle time (Kafka mutes the channel);
        True when its response must be held back that long too (a pre-KIP-219 version)."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + throttled.throttle_ms / 1000
        if self._throttle_timer is None or self._throttle_timer.when() < ends:
            if self._throttle_timer is not None:
                self._throttle_timer.cancel()
            self._throttle_timer = loop.call_at(ends, self._unthrottle)
        self._throttled = True
        self._update_reading()
        return throttled.delay

    def _unthrottle(self) -> None:
        self._throttle_timer = None
        self._throttled = False
        self._resume()

    def _complete_later(self, slot: _Slot, payload: Any) -> None:
        """Complete `slot` when the throttle ends: what an old client waits for instead of throttle_time_ms."""
        assert self._throttle_timer is not None
        delay = max(self._throttle_timer.when() - asyncio.get_running_loop().time(), 0)
        asyncio.get_running_loop().call_later(delay, lambda: None if self.closed else self._complete(slot, payload))

    def _sasl_gate(self, sasl: SaslAuthenticator, frame: bytearray) -> bool:
        """Before (or when renewing) authentication: answer a raw token after a v0 handshake
        here (True), or let through only what the exchange expects now. IllegalSaslState
        closes the connection as Kafka's SaslServerAuthenticator does: unanswered before the
        handshake, as a failed login with an ILLEGAL_SASL_STATE answer (True) where a
        SaslAuthenticate was due."""
        from ottla.server.security.sasl import AuthenticationFailed, IllegalSaslState
        from ottla.server.security.sasl.authenticator import illegal_state_answer

        now = time.monotonic()
        if not sasl.raw_tokens:
            try:
                sasl.check(peek_api(frame)[0], now)
            except IllegalSaslState as exc:
                if not exc.answered:
                    raise
                self._fail_login(illegal_state_answer(frame, str(exc)), str(exc))
                return True
            return False
        try:
            token = sasl.evaluate_raw(bytes(frame), now)
        except AuthenticationFailed as exc:
            # No Kafka header to answer with: the delayed close alone.
            self._fail_login(None, str(exc))
            return True
        slot = _Slot()
        self.pending.append(slot)
        self._complete(slot, size_prefixed(token))
        self._after_sasl_step(sasl, None)
        return True

    def _after_sasl_step(self, sasl: SaslAuthenticator, answer: Any) -> bool:
        """After a request of a SASL connection: a failed exchange holds back its `answer` for
        the delayed close (True); a completed one makes its principal the connection's; a
        re-authentication's frames are bounded as a login's until it completes; a
        valid ApiVersions answered before the handshake is the only one served (Kafka's
        HANDSHAKE_REQUEST state). The answer's error code follows its size and correlation id."""
        if sasl.failed:
            self._fail_login(answer if type(answer) is bytes else None, "SASL authentication failed")
            return True
        if sasl.state is self._sasl_handshake:
            if type(answer) is bytes and answer[8:10] == b"\0\0":
                sasl.versions_answered = True
        elif sasl.state is self._sasl_reauthenticate:
            # Kafka's SaslServerAuthenticator reads a re-authentication's tokens itself, bounded
            # by sasl.server.max.receive.size as a login's; only its SaslHandshake was read as a request.
            self._reauthenticating = True
            self.reader.max_size = min(self.services.config.socket_request_max_bytes, self.services.config.value("sasl.server.max.receive.size"))
        elif self._reauthenticating and sasl.authenticated:
            self._reauthenticating = False
            self.reader.max_size = self.services.config.socket_request_max_bytes
        elif sasl.principal is not None and sasl.principal != self.context.client.principal:
            self.context = RequestContext(self.services, dataclasses.replace(self.context.client, principal=sasl.principal), sasl)
            self.reader.max_size = self.services.config.socket_request_max_bytes
            log.info("%s authenticated as %s with %s", self.peer, sasl.principal, sasl.mechanism)
        return False

    def _fail_login(self, answer: bytes | None, reason: str) -> None:
        """A failed SASL authentication, closed as Kafka's Selector closes one: nothing more is
        read, what came before is answered, and once connection.failed.authentication.delay.ms
        has passed `answer` (none for a raw token or an oversized frame) is sent just before
        the close (`_close_when_answered`): a password guesser learns nothing sooner."""
        log.info("SASL authentication of %s failed: %s", self.peer, reason)
        self._close_when_answered(answer, self.services.config.value("connection.failed.authentication.delay.ms"), "after its SASL authentication failed")

    def _close_when_answered(self, answer: bytes | None, delay_ms: int, reason: str) -> None:
        """Read nothing more; once every request taken is answered, wait `delay_ms`, send
        `answer` (if any) and close (`_flush`, `_close_answered`)."""
        self._closing = True
        self._failure_answer = answer
        self._close_delay_ms = delay_ms
        self._close_reason = reason
        self._update_reading()

    def _finished(self, task: asyncio.Task[Any], slot: _Slot, fetch: bool, size: int, finish: Callable[[Any], Any]) -> None:
        self.tasks.discard(task)
        self._parked_fetches -= fetch
        self._working_bytes -= size
        if task.cancelled():
            return
        try:
            payload = finish(task.result())
        except MalformedFrame as exc:
            self.abort(f"malformed request: {exc}")
        except CloseWhenAnswered as exc:
            self._close_when_answered(None, 0, str(exc))
            self._complete(slot, None)
        except DropConnection as exc:
            self.abort(str(exc), logging.INFO)
        except Exception as exc:
            log.error("handler failed for %s", self.peer, exc_info=exc)
            self.abort("internal error in a handler")
        else:
            if type(payload) is Throttled:
                if self._throttle(payload):
                    self._complete_later(slot, payload.payload)
                    return
                payload = payload.payload
            self._complete(slot, payload)

    def _complete(self, slot: _Slot, payload: Any) -> None:
        slot.payload = payload
        slot.done = True
        self._held_bytes += _held_size(payload)
        self._flush()

    def _flush(self) -> None:
        """Move finished responses, in order, to the outbox, and the outbox to the socket;
        then take more requests if that ended a backlog.

        Answers that are ready together leave together, in one write: during a turn they only
        gather (the turn writes them at its end), and while a pipelined request waits for the
        next turn (which comes without a timer, on the loop's next iteration) small answers
        wait for it, so a client pipelining requests gets one send per batch of answers rather
        than one each. The answers of a turn that is not the first of its iteration of the event
        loop are written at the iteration's end (`_write_at_turn_end`), once every connection
        has handled the requests it read in it: a send on loopback wakes its client at once,
        which then preempts the other connections' handling, and takes one answer per wake-up.
        Writing after them took the 8-connection single-record produce benchmark from 0.84 to
        about 0.5 involuntary context switches per request and the client's CPU per answer down
        by a third. A lone turn's answers (a producer and a consumer at 1,000 records/s) and all
        others (a parked fetch's, a handler task's) are written at once: deferring those too
        raised end-to-end p50 latency there. Nothing is answered before its handler returns, so
        an append is written before its ack."""
        pending = self.pending
        outbox = self.outbox
        while pending and pending[0].done:
            payload = pending.popleft().payload
            if payload is not None:
                outbox.append(payload)
        if self._taking_frames:
            return
        if outbox and self._sender is None and not self.closed and self.transport is not None:
            if self._frames_waiting and self._held_bytes < _JOIN_BELOW and not self._closing and not self._backlogged():
                pass  # the next turn, already due, writes these with its own answers
            elif (len(outbox) == 1 and type(outbox[0]) is bytes) or all(isinstance(payload, bytes) for payload in outbox):
                if not self._write_due:
                    self._write_buffers(outbox)
            elif (
                len(outbox) == 1 and self._sent_by_worker(self.transport, outbox[0])
                and not self.transport.get_write_buffer_size() and not self.transport.is_closing() and self._can_hand_off(self.transport)
            ):
                # One large answer, nothing before it unsent: to a worker now, not on a task's turn.
                payload = outbox.popleft()
                self._held_bytes -= _held_size(payload)
                try:
                    self._sender = self._thread_send(self.transport, payload, self._sent_by_thread)
                except Exception as exc:  # no descriptor, or no thread, to send it with
                    self._send_failed(self.transport, exc)
            else:
                self._sender = self._loop.create_task(self._send_outbox())
        if self._closing and not pending and not outbox and self._sender is None and not self.closed and self.transport is not None:
            if self._delayed_close is None:
                self._delayed_close = asyncio.get_running_loop().call_later(self._close_delay_ms / 1000, self._close_answered)
            return
        self._resume()

    def _close_answered(self) -> None:
        """Send the last answer, if any, and close: a failed login's (Kafka's
        handleCloseOnAuthenticationFailure), so the client reads why, then the close."""
        if not self.closed and self.transport is not None:
            log.info("closing connection from %s %s", self.peer, self._close_reason)
            if self._failure_answer is not None:
                self.transport.write(self._failure_answer)
            self.closed = True
            self.transport.close()

    def _write_at_turn_end(self) -> None:
        """Write what the turns of the last iteration of the event loop answered (`_flush`):
        called from `_end_iteration`, which runs from the loop's ready queue, so after every
        I/O callback of the iteration that queued it (asyncio and uvloop alike)."""
        self._write_due = False
        self._flush()

    def _write_buffers(self, outbox: collections.deque[bytes]) -> None:
        assert self.transport is not None
        if len(outbox) == 1:
            payload = outbox.popleft()
            self._held_bytes -= len(payload)
            self.transport.write(payload)
            return
        total = sum(map(len, outbox))
        if total >= _JOIN_BELOW:
            for payload in outbox:
                self.transport.write(payload)
        else:
            self.transport.write(b"".join(outbox))
        outbox.clear()
        self._held_bytes -= total

    async def _send_outbox(self) -> None:
        """Write responses that hold file regions: buffers with write(), regions with
        sendfile (zero copies through Python). Nothing else may write meanwhile, since
        asyncio refuses a write() while a sendfile is in progress."""
        transport = self.transport
        assert transport is not None
        try:
            # A closing transport is a client that hung up: nothing more can reach it.
            while self.outbox and not self.closed and not transport.is_closing():
                payload = self.outbox.popleft()
                self._held_bytes -= _held_size(payload)
                if isinstance(payload, bytes):
                    transport.write(payload)
                    continue
                if self._sent_by_worker(transport, payload) and await self._send_in_thread(transport, payload):
                    continue
                for part in payload:
                    if isinstance(part, (bytes, bytearray, memoryview)):
                        transport.write(part)
                    else:
                        await self._send_region(transport, part)
        except Exception as exc:
            self._send_failed(transport, exc)
        finally:
            self._sender = None
        self._flush()

    def _sent_by_thread(self, error: Exception | None) -> None:
        """A `ThreadSend` started by `_flush` has ended."""
        self._sender = None
        if error is not None and self.transport is not None:
            self._send_failed(self.transport, error)
        self._flush()

    def _send_failed(self, transport: asyncio.Transport, exc: Exception) -> None:
        """An answer could not be sent whole: the connection closes, as its client expects
        nothing after half an answer."""
        if isinstance(exc, (OSError, RuntimeError)):
            if transport.is_closing() or isinstance(exc, ConnectionError):
                # The client hung up mid-answer (a consumer closed, a tool timed out): normal,
                # and asyncio says so as "Transport is closing" or a reset, not as a fault of ours.
                self.abort(f"client gone while its answer was sent: {exc}", logging.INFO)
            else:
                self.abort(f"could not send log data: {exc}")
        else:
            # A fault of ours: this client's connection closes with the traceback logged,
            # rather than hanging half-answered with the error left in an unawaited task.
            log.error("answer to %s could not be sent", self.peer, exc_info=exc)
            self.abort("its answer could not be sent", logging.ERROR)

    async def _send_region(self, transport: asyncio.Transport, region: Any) -> None:
        with await open_region(region) as file:
            if transport.get_extra_info("sslcontext") is not None:
                # A TLS transport's bytes must pass through OpenSSL: asyncio cannot sendfile
                # them (loop.sendfile with fallback=False raises RuntimeError there), so fetches
                # over SSL and SASL_SSL listeners are copied, a chunk at a time.
                sent = await self._copy_region(transport, file, region)
            elif type(loop := asyncio.get_running_loop()).sendfile is asyncio.AbstractEventLoop.sendfile:
                # A loop without sendfile of its own (uvloop): asyncio would fall back to copying.
                sent = await self._sendfile_on_socket(loop, transport, file, region)
            else:
                try:
                    sent = await loop.sendfile(transport, file, region.position, region.length, fallback=False)
                except asyncio.SendfileNotAvailableError:
                    # What asyncio raises when the first os.sendfile fails because the client
                    # has gone. Its own fallback swaps in a protocol that raises on the client's
                    # EOF; ours lets the transport notice the close and end the connection.
                    sent = await self._copy_region(transport, file, region)
        if sent != region.length:
            # The segment shrank under us (retention, recovery): the frame would be corrupt.
            raise OSError(f"sent {sent} of {region.length} bytes of {region.path}")

    async def _sendfile_on_socket(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, file: Any, region: Any) -> int:
        """The region by os.sendfile straight onto the transport's socket, zero-copy as asyncio's
        own loop.sendfile is. Ordered as that is too: it starts once the transport has handed
        the kernel every byte written before, and nothing is written meanwhile (_send_outbox
        holds the connection's writes). The socket is the transport's, so waiting until it
        takes more goes through a duplicate descriptor: a loop watches a transport's own
        descriptor for the transport alone."""
        await self._drained(transport)
        socket_fd = transport.get_extra_info("socket").fileno()
        position, end = region.position, region.position + region.length
        waiting_fd = -1
        try:
            while position < end and not self.closed and not transport.is_closing():
                try:
                    sent = os.sendfile(socket_fd, file.fileno(), position, end - position)
                except BlockingIOError:
                    if waiting_fd < 0:
                        waiting_fd = os.dup(socket_fd)
                    writable = loop.create_future()
                    loop.add_writer(waiting_fd, _settle, writable)
                    try:
                        await writable
                    finally:
                        loop.remove_writer(waiting_fd)
                    continue
                if not sent:
                    break  # the file ends before the region does
                position += sent
        finally:
            if waiting_fd >= 0:
                os.close(waiting_fd)
        return position - region.position

    def _sent_by_worker(self, transport: asyncio.Transport, payload: Any) -> bool:
        """Whether a worker thread sends this answer: one whose regions add up to
        THREAD_SENDFILE_BYTES, on a transport that can sendfile, or asyncio's TLS transport (the
        worker encrypts: TlsThreadSend), and a loop with a sendfile of its own (not uvloop, whose
        transports keep theirs)."""
        if transport.get_extra_info("sslcontext") is not None and not hasattr(transport, "_ssl_protocol"):
            return False
        if type(self._loop).sendfile is asyncio.AbstractEventLoop.sendfile:
            return False
        return sum(part.length for part in payload if not isinstance(part, (bytes, bytearray, memoryview))) >= THREAD_SENDFILE_BYTES

    async def _send_in_thread(self, transport: asyncio.Transport, payload: Any) -> bool:
        """The whole answer from worker threads (`ThreadSend`), ordered as `_sendfile_on_socket`:
        it starts once the transport has handed the kernel every byte written before, and nothing
        is written meanwhile (_send_outbox holds the connection's writes). False, nothing sent,
        when a TLS transport still holds encrypted bytes (its socket's own buffer, which the TLS
        transport's size does not count): the loop sends that answer."""
        await self._drained(transport)
        if not self._can_hand_off(transport):
            return False
        ended: asyncio.Future[None] = self._loop.create_future()
        send = self._thread_send(transport, payload, lambda error: _settle(ended, error))
        try:
            await ended
        except asyncio.CancelledError:
            send.cancel()
            raise
        return True

    @staticmethod
    def _can_hand_off(transport: asyncio.Transport) -> bool:
        return transport.get_extra_info("sslcontext") is None or TlsThreadSend.can_send(transport)

    def _thread_send(self, transport: asyncio.Transport, payload: Any, on_done: Callable[[Exception | None], None]) -> ThreadSend:
        if transport.get_extra_info("sslcontext") is None:
            return ThreadSend(self._loop, self.services.sendfile_workers, transport, payload, on_done)

        def ended(error: Exception | None) -> None:
            self._tls_send = None
            on_done(error)

        self._tls_send = TlsThreadSend(self._loop, self.services.sendfile_workers, transport, payload, ended)
        return self._tls_send

    async def _drained(self, transport: asyncio.Transport) -> None:
        """Until the transport holds no bytes it has not handed to the kernel: with its buffer
        limits at zero, resume_writing says exactly when (the limits are put back after)."""
        if not transport.get_write_buffer_size():
            return
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0, low=0)
        try:
            while transport.get_write_buffer_size() and not self.closed and not transport.is_closing():
                self._writable = asyncio.get_running_loop().create_future()
                await self._writable
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=high, low=low)

    async def _copy_region(self, transport: asyncio.Transport, file: Any, region: Any) -> int:
        """The region through write(), a chunk at a time as the client takes them."""
        file.seek(region.position)
        sent = 0
        while sent < region.length and not self.closed and not transport.is_closing():
            chunk = file.read(min(COPY_CHUNK_BYTES, region.length - sent))
            if not chunk:
                break
            transport.write(chunk)
            sent += len(chunk)
            if self._writing_paused:
                self._writable = asyncio.get_running_loop().create_future()
                await self._writable
        return sent
