"""The threads that send large fetch answers whole: buffers with writev, file regions with
sendfile, both leaving the GIL, the event loop free meanwhile (server/connection.py decides
which answers go this way and holds the connection's other writes while one does)."""

from __future__ import annotations

import asyncio
import os
import queue
import ssl
import struct
import threading
import time
from typing import Any, BinaryIO, Callable

# How long a worker waits for the socket to take more before it hands the wait back to the
# loop: a consumer that stops reading holds no worker. The socket is blocking while a worker
# sends (its SO_SNDTIMEO this long), so a whole region is one sendfile that waits in the kernel:
# with a non-blocking socket and poll(), the worker took the GIL back twice per socket buffer,
# and on two cores the loop paid for that contention (8-partition consume on two cores, medians
# of 5-6 runs: 0.360 ms/MB of broker CPU against 0.310 blocking; compat/SCALING.md).
_THREAD_SENDFILE_WAIT_MS = 5
SEND_TIMEOUT = struct.pack("ll", 0, _THREAD_SENDFILE_WAIT_MS * 1000)
_SENDFILE_WORKERS = 2


class ThreadSend:
    """One answer sent whole by the sendfile workers (`_send_parts`), its connection's writes
    held meanwhile. Callbacks on the loop drive it, not a task: the first job is queued as the
    answer is ready and the worker's return is handled in the callback that reports it, which
    spares the loop an iteration at each end of a large fetch (a task's first step and its
    wake-up). The workers use the send's own duplicate of the socket's descriptor, closed only
    when no worker holds it, so a transport closed meanwhile cannot have the number reused
    under them. When the socket stays full for _THREAD_SENDFILE_WAIT_MS the wait goes back to
    the loop, on the duplicate: a loop watches a transport's own descriptor for the transport
    alone. `on_done` is called once, with None or what stopped the send; never after `cancel`."""

    __slots__ = ("loop", "workers", "socket_fd", "parts", "index", "offset", "cancelled", "on_done", "_watching")

    def __init__(self, loop: asyncio.AbstractEventLoop, workers: SendfileWorkers, transport: asyncio.Transport, payload: Any,
                 on_done: Callable[[Exception | None], None]) -> None:
        self.loop = loop
        self.workers = workers
        self.parts = [part for part in payload if (len(part) if isinstance(part, (bytes, bytearray, memoryview)) else part.length)]
        self.socket_fd = os.dup(transport.get_extra_info("socket").fileno())
        self.index = self.offset = 0
        # The client is gone: stop sending.
        self.cancelled = False
        self.on_done = on_done
        self._watching = False
        try:
            workers.submit(self)
        except BaseException:
            os.close(self.socket_fd)
            raise

    def cancel(self) -> None:
        """Stop sending (the client is gone): at once while the loop waits for the socket, else
        at the worker's next step, whose return then only closes the descriptor."""
        self.cancelled = True
        if self._watching:
            self._watching = False
            self.loop.remove_writer(self.socket_fd)
            self._release()
            os.close(self.socket_fd)

    def work(self) -> tuple[int, int, bool]:
        """In a worker thread: the next step (`_send_parts`)."""
        return _send_parts(self.socket_fd, self.parts, self.index, self.offset, self)

    def job_done(self, outcome: tuple[Any, Exception | None]) -> None:
        """On the loop: a worker returned where it stopped, or raised. Not done yet: the next
        step goes to the workers if the last one moved anything, else the loop waits for the
        socket to take more."""
        if self.cancelled:
            # The client is gone: what the worker raised (a broken pipe) is expected, and dropped.
            self._release()
            os.close(self.socket_fd)
            return
        progress, error = outcome
        if error is None:
            moved = self._advance(progress)
            if isinstance(moved, Exception):
                error = moved
            elif moved is not None:
                if moved:
                    self._hand_off()
                else:
                    self._watching = True
                    self.loop.add_writer(self.socket_fd, self._writable)
                return
        self._release()
        os.close(self.socket_fd)
        self.on_done(error)

    def _advance(self, progress: Any) -> bool | Exception | None:
        """Take a step's `work()` result: None when every byte is sent, whether it moved
        anything when not, or why the send failed."""
        stopped_at, stopped_in, file_ended = progress
        if file_ended:
            # The segment shrank under us (retention, recovery): the frame would be corrupt.
            region = self.parts[stopped_at]
            return OSError(f"sent {stopped_in} of {region.length} bytes of {region.path}")
        if stopped_at == len(self.parts):
            return None
        moved = (stopped_at, stopped_in) != (self.index, self.offset)
        self.index, self.offset = stopped_at, stopped_in
        return moved

    def _release(self) -> None:
        """On the loop, no worker on this send any more: give back what it held (TlsThreadSend)."""

    def _writable(self) -> None:
        self._watching = False
        self.loop.remove_writer(self.socket_fd)
        self._hand_off()

    @property
    def stopped(self) -> bool:
        """Read by the worker between its steps: the client or the broker is gone."""
        return self.cancelled or self.workers.stopping

    def _hand_off(self) -> None:
        """The next step to the workers; if they have stopped with the broker, the send ends."""
        try:
            self.workers.submit(self)
        except ConnectionAbortedError as exc:
            self._release()
            os.close(self.socket_fd)
            self.on_done(exc)


# What a TLS send reads from a region, encrypts and sends at a time: its plaintext and records
# stay in the worker's cache.
_TLS_CHUNK_BYTES = 256 * 1024


class _Held:
    """Stands, on the loop, for a connection's SSL object while a worker encrypts with it: OpenSSL
    forbids using one SSL object from two threads at once, so a loop-side call into it raises
    rather than racing the worker; an SSLError, which asyncio's SSL protocol handles everywhere
    (a close meanwhile aborts the connection instead of sending close_notify)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        raise ssl.SSLError(f"the connection's SSL object is in use by a sender thread ({name})")


_HELD = _Held()


class TlsThreadSend(ThreadSend):
    """A large answer on a TLS connection (asyncio's SSL transport) read, encrypted and sent whole
    by the workers: OpenSSL's SSL_write, which CPython runs without the GIL, and the copies and
    sends around it leave the loop. The worker uses the connection's own SSL object (a TLS
    stream's record keys and sequence numbers live there alone), so for the time of the send the
    transport's protocol is given a stand-in for it (`_Held`) and an empty outgoing BIO, and its
    application reading is paused: asyncio then has nothing to decrypt or write with, and the
    connection holds its own writes and leaves reading alone (server/connection.py) until
    `on_done`. The send starts with the transport's buffers empty; encrypted bytes go out on the
    send's duplicate of the socket's descriptor, as a ThreadSend's."""

    __slots__ = ("protocol", "sslobj", "outgoing", "reading_paused", "sealed", "sent", "reported", "held")

    def __init__(self, loop: asyncio.AbstractEventLoop, workers: SendfileWorkers, transport: asyncio.Transport, payload: Any,
                 on_done: Callable[[Exception | None], None]) -> None:
        protocol = transport._ssl_protocol  # type: ignore[attr-defined]
        self.protocol = protocol
        self.sslobj, self.outgoing, self.reading_paused = protocol._sslobj, protocol._outgoing, protocol._app_reading_paused
        self.sealed = memoryview(b"")  # encrypted, not yet sent
        self.sent = self.reported = 0
        protocol._sslobj, protocol._outgoing, protocol._app_reading_paused = _HELD, ssl.MemoryBIO(), True
        self.held = True
        try:
            super().__init__(loop, workers, transport, payload, on_done)
        except BaseException:
            self._release()
            raise

    @staticmethod
    def can_send(transport: asyncio.Transport) -> bool:
        """Whether `transport` is asyncio's SSL transport (CPython 3.11's sslproto, whose
        attributes the send uses), wrapped, with nothing unsent: neither plaintext waiting nor
        encrypted bytes in its outgoing BIO or its socket transport's buffer."""
        protocol = getattr(transport, "_ssl_protocol", None)
        if type(protocol).__module__ != "asyncio.sslproto" or not all(
            hasattr(protocol, name) for name in ("_sslobj", "_outgoing", "_app_reading_paused", "_app_transport", "_write_backlog", "_state", "_transport")
        ):
            return False
        raw = protocol._transport  # type: ignore[union-attr]
        return (
            raw is not None and protocol._state.name == "WRAPPED" and not protocol._write_backlog  # type: ignore[union-attr]
            and not protocol._outgoing.pending and not raw.get_write_buffer_size()  # type: ignore[union-attr]
        )

    def _release(self) -> None:
        if not self.held:
            return
        self.held = False
        protocol = self.protocol
        protocol._sslobj, protocol._outgoing = self.sslobj, self.outgoing
        if not self.reading_paused and protocol._app_transport is not None:
            # What arrived meanwhile waits in the incoming BIO, and an end of stream in the
            # protocol's state: asyncio's own resume reads them.
            protocol._app_transport.resume_reading()

    def work(self) -> tuple[bool, int, bool]:
        """In a worker thread: encrypt and send from where the last step stopped (the cursor
        `index`, `offset` is the send's own). Returns (every byte sent, bytes sent so far, a
        region's file ended early)."""
        parts, sslobj, outgoing, fd = self.parts, self.sslobj, self.outgoing, self.socket_fd
        count = len(parts)
        file_fd = -1
        try:
            while not self.stopped:
                if self.sealed:
                    try:
                        written = os.write(fd, self.sealed)
                    except BlockingIOError:
                        break
                    self.sealed = self.sealed[written:]
                    self.sent += written
                    continue
                if self.index == count:
                    break
                part = parts[self.index]
                if isinstance(part, (bytes, bytearray, memoryview)):
                    sslobj.write(part)
                    self.index += 1
                else:
                    if file_fd < 0:
                        file_fd = _open_region(part)
                    chunk = os.pread(file_fd, min(_TLS_CHUNK_BYTES, part.length - self.offset), part.position + self.offset)
                    if not chunk:
                        return False, self.sent, True
                    sslobj.write(chunk)
                    self.offset += len(chunk)
                    if self.offset == part.length:
                        os.close(file_fd)
                        file_fd = -1
                        self.index, self.offset = self.index + 1, 0
                self.sealed = memoryview(outgoing.read())
        finally:
            if file_fd >= 0:
                os.close(file_fd)
        return self.index == count and not self.sealed, self.sent, False

    def _advance(self, progress: Any) -> bool | Exception | None:
        """As ThreadSend's, progress being bytes sent (`work` keeps the cursor itself)."""
        done, sent, file_ended = progress
        if file_ended:
            region = self.parts[self.index]
            return OSError(f"sent {self.offset} of {region.length} bytes of {region.path}")
        if done:
            return None
        moved = sent != self.reported
        self.reported = sent
        return moved


class SendfileWorkers:
    """A broker's threads that send large answers (`ThreadSend`): started at its first large
    answer, so a broker that sends none runs no thread for them, and ended by `stop` with the
    broker, so none outlives it. Used from the broker's loop thread alone."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[ThreadSend | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self.stopping = False

    def submit(self, send: ThreadSend) -> None:
        """Queue `send`'s next step; after `stop`, raise (no thread will take it)."""
        if self.stopping:
            raise ConnectionAbortedError("the broker has stopped")
        if not self._threads:
            for number in range(_SENDFILE_WORKERS):
                worker = threading.Thread(target=_sendfile_worker, args=(self._jobs,), name=f"ottla-sendfile_{number}", daemon=True)
                worker.start()
                self._threads.append(worker)
        self._jobs.put(send)

    def stop(self) -> None:
        """End the workers, each after the step it is on (which stops before its next region or
        socket buffer's worth: its send is `stopped`), and close the descriptors of steps still
        queued: the broker's connections are gone, nothing waits for them."""
        self.stopping = True
        for _ in self._threads:
            self._jobs.put(None)
        for worker in self._threads:
            worker.join()
        self._threads = []
        while True:
            try:
                left = self._jobs.get_nowait()
            except queue.Empty:
                return
            if left is not None:
                os.close(left.socket_fd)


def _sendfile_worker(jobs: queue.SimpleQueue[ThreadSend | None]) -> None:
    while (send := jobs.get()) is not None:
        outcome: tuple[Any, Exception | None]
        try:
            # Blocking is a flag of the socket, shared with the transport's descriptor: safe
            # while the connection writes nothing else (the send holds its writes) and reads
            # only what epoll has said is there.
            os.set_blocking(send.socket_fd, True)
            try:
                outcome = (send.work(), None)
            finally:
                os.set_blocking(send.socket_fd, False)
        except Exception as exc:
            outcome = (None, exc)
        try:
            send.loop.call_soon_threadsafe(send.job_done, outcome)
        except RuntimeError:
            pass  # the loop has closed: nothing waits for this send any more
        del send, outcome  # not to hold the answer's buffers until the next job


# Buffers given to one writev (well under any system's IOV_MAX).
_WRITEV_BUFFERS = 64
# How often, a millisecond apart, a worker tries to open a region's file that is not under the
# name it read, before it takes the file for gone.
_OPEN_ATTEMPTS = 100


def _open_region(region: Any) -> int:
    """In a worker thread: a descriptor of the very file `region` was cut from. The loop may be
    renaming that file meanwhile (a compaction swap, DeleteTopics, a log dir move), and another
    file may take its old name: the name read may be stale, so the descriptor is kept only if
    its identity is the one `region.file.location` gives with the name. Otherwise the name is
    read again once the loop has had a moment to finish the rename. Raises FileNotFoundError
    for a file given up for removal (file.delete.delay.ms after its deletion) or that stays gone."""
    for _ in range(_OPEN_ATTEMPTS):
        location = region.file.location
        if location is None:
            break
        path, device, inode = location
        try:
            file_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
        else:
            status = os.fstat(file_fd)
            if (status.st_dev, status.st_ino) == (device, inode):
                return file_fd
            os.close(file_fd)
        if region.file.location is location:
            time.sleep(0.001)
    raise FileNotFoundError(f"{region.file.path} is no longer the region's file")


async def open_region(region: Any) -> BinaryIO:
    """On the loop: `region`'s file (FileRegion.open), read again as `_open_region` reads it
    when the name it gave was not the file's: a deleted topic's directory is renamed on another
    thread, which points the file at its new name a moment after the rename, and meanwhile
    the old name is gone. The wait yields to the loop, so that an answer cut from a topic
    deleted since is sent whole rather than its connection closed. Raises FileNotFoundError as
    `_open_region` does."""
    for _ in range(_OPEN_ATTEMPTS - 1):
        try:
            return region.open()
        except FileNotFoundError:
            if region.file.location is None:  # given up for removal: no name will be its
                raise
        await asyncio.sleep(0.001)
    return region.open()


def _send_parts(socket_fd: int, parts: list[Any], index: int, offset: int, send: ThreadSend) -> tuple[int, int, bool]:
    """In a worker thread: send `parts` (buffers, and file regions) from byte `offset` of
    `parts[index]` on, in order: runs of buffers with os.writev, regions with os.sendfile, until
    all are sent, `send.stopped` is set, or a call takes nothing (on the workers' blocking socket,
    nothing for its SO_SNDTIMEO). Returns where it stopped (index, offset) and whether a region's
    file ended before the region did. Each region's file is opened (`_open_region`) as the region is
    reached and closed when it is sent or the worker stops, as the loop opened them one at a
    time: an answer of a thousand partitions holds one descriptor at a time, not a thousand. A
    closed or reset connection, or a file gone, raises, as on the loop."""
    count = len(parts)
    while index < count and not send.stopped:
        part = parts[index]
        if not isinstance(part, (bytes, bytearray, memoryview)):
            file_fd = _open_region(part)
            try:
                while offset < part.length:
                    if send.stopped:
                        return index, offset, False
                    try:
                        sent = os.sendfile(socket_fd, file_fd, part.position + offset, part.length - offset)
                    except BlockingIOError:
                        return index, offset, False
                    if not sent:
                        return index, offset, True
                    offset += sent
            finally:
                os.close(file_fd)
            index, offset = index + 1, 0
            continue
        buffers = [memoryview(part)[offset:]]
        end = index + 1
        while end < count and isinstance(parts[end], (bytes, bytearray, memoryview)) and len(buffers) < _WRITEV_BUFFERS:
            buffers.append(parts[end])
            end += 1
        try:
            sent = os.writev(socket_fd, buffers)
        except BlockingIOError:
            break
        while index < count and isinstance(parts[index], (bytes, bytearray, memoryview)) and len(parts[index]) - offset <= sent:
            sent -= len(parts[index]) - offset
            index, offset = index + 1, 0
        offset += sent
    return index, offset, False

