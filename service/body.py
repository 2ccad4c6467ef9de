"""Receiving request bodies of streaming handlers: into one buffer of the declared length, with
large bodies read from the socket straight into that buffer.

Sanic's streaming body hands a large upload over in chunks of its ``REQUEST_BUFFER_SIZE``
(64 KiB): the event loop's read buffer is copied into ``bytes``, appended to the protocol's
buffer, sliced into a new ``bytes`` per chunk and copied once more into the body, and reading is
paused and resumed around every chunk. For a 105 MB upload that was 130-190 ms of the worker's
event loop where the loopback itself delivers it in about 30. So once the headers are parsed
and the first chunk has come through Sanic (which answers ``Expect: 100-continue`` and applies
its limits), the rest of a large body is read by ``sock_recv_into`` on a duplicate of the
connection's socket, with the transport's own reading paused, directly into the buffer; Sanic's
count of bytes left is kept in step after every read, so whatever happens Sanic's own state is
exactly as if it had read those bytes itself. (Sanic's ``http.lifecycle.read_body`` signal is
not dispatched for the bytes read this way; this service listens to no such signal.)
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import socket
from collections.abc import AsyncIterator
from time import monotonic
from typing import cast

from sanic import Request
from sanic.exceptions import SanicException
from sanic.http import Http

from service.errors import BadRequest, PayloadTooLarge, ServiceUnavailable
from service.multipart import Body

MAPPED_BODY_BYTES = 1024 * 1024  # from this size on, the body goes into an anonymous mmap
SOCKET_READ_BYTES = 1024 * 1024  # bodies with more than this left are read from the socket
RECEIVE_YIELD_BYTES = 2 * 1024 * 1024  # about a millisecond of copying between loop turns
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 30.0


class Upload:
    """The body of a streaming upload route, limited to ``limit`` bytes (Sanic lifts its own
    body-size limit for streaming handlers; this puts ours back)."""

    def __init__(self, request: Request, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.received = False

    def refuse_declared_oversize(self) -> None:
        """413 for a body whose Content-Length is already over the limit."""
        declared = self.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise PayloadTooLarge(
                f"The upload is {int(declared)} bytes; the limit is {self.limit} bytes."
            )

    async def receive(self) -> list[Body]:
        """The whole body (see :func:`receive_body`); 413 past the limit."""
        if self.request.stream is not None:
            self.request.stream.request_max_size = self.limit
        self.received = True  # from here on, a failure has read (or given up on) the body
        return await receive_body(self.request)


@contextlib.asynccontextmanager
async def upload_body(request: Request, limit: int) -> AsyncIterator[Upload]:
    """The upload of a streaming route, for a block that checks the caller first: if anything
    in it fails before the body is received (a 401, a 429), the unread body is drained so the
    client, still sending, reads that answer. A cancelled request (a timeout, a client gone) is
    not drained: Sanic closes its connection."""
    upload = Upload(request, limit)
    try:
        yield upload
    except asyncio.CancelledError:
        raise
    except BaseException:
        if not upload.received:
            await discard_unread_body(request)
        raise


async def receive_body(request: Request) -> list[Body]:
    """The request body as pieces: one buffer of the declared length (no second copy of a large
    upload), else, without a Content-Length, the chunks themselves.

    A body of MAPPED_BODY_BYTES or more goes into a private anonymous memory map
    (:func:`anonymous_map`) rather than a bytearray, which zero-fills every page up front
    (60-70 ms of event loop for 105 MB on the development machines). After the first chunk,
    a body with more than SOCKET_READ_BYTES left is read from the socket itself
    (:func:`read_from_socket`); otherwise chunks come through Sanic's stream, which hands over
    buffered chunks without suspending, so the loop is given a turn every RECEIVE_YIELD_BYTES:
    other requests are served meanwhile.
    """
    stream = request.stream
    if stream is None:
        return []
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return [chunk async for chunk in stream]  # type: ignore[attr-defined]
    size = int(declared)
    try:
        body = anonymous_map(size) if size >= MAPPED_BODY_BYTES else bytearray(size)
    except (MemoryError, OSError):
        raise ServiceUnavailable(
            "The server cannot hold an upload of this size in memory right now; retry shortly."
        ) from None
    filled = unyielded = 0
    async for chunk in stream:  # type: ignore[attr-defined]
        if filled + len(chunk) > size:
            raise BadRequest("The request body is longer than its Content-Length.")
        body[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
        unyielded += len(chunk)
        if size - filled > SOCKET_READ_BYTES and socket_readable(request):
            filled = await read_from_socket(request, memoryview(body), filled)
        elif unyielded >= RECEIVE_YIELD_BYTES:
            unyielded = 0
            await asyncio.sleep(0)
    if filled != size:
        raise BadRequest("The request body is shorter or longer than its Content-Length.")
    return [body]


def anonymous_map(size: int) -> mmap.mmap:
    """``size`` bytes of private anonymous memory, in transparent huge pages where the kernel
    has them: touching 105 MB of it for the first time then costs about 10 ms instead of 40
    (private 4 KiB pages) or 65 (``mmap.mmap(-1, size)``'s default, shared memory)."""
    body = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):  # no transparent huge pages on this kernel
            body.madvise(mmap.MADV_HUGEPAGE)
    return body


def socket_readable(request: Request) -> bool:
    """Whether the rest of this request's body can be read from the socket itself: plain
    HTTP/1.1 (not TLS, not chunked) on a socket the event loop exposes."""
    stream = request.stream
    transport = request.transport
    if not isinstance(stream, Http) or stream.request_body is not True:
        return False
    if not isinstance(stream.recv_buffer, bytearray) or not stream.request_bytes_left:
        return False
    if transport.get_extra_info("sslcontext") is not None:
        return False
    raw = transport.get_extra_info("socket")
    return raw is not None and raw.fileno() >= 0


async def read_from_socket(request: Request, buffer: memoryview, filled: int) -> int:
    """Read the rest of the body into ``buffer[filled:]``: first what Sanic has buffered, then
    from a duplicate of the socket. Returns how far ``buffer`` is filled (its length, unless the
    body is longer than the buffer, which the caller reports)."""
    http: Http = request.stream  # type: ignore[assignment]  # checked by socket_readable
    end = min(len(buffer), filled + (http.request_bytes_left or 0))
    buffered = http.recv_buffer
    take = min(len(buffered), end - filled)
    buffer[filled : filled + take] = buffered[:take]
    del buffered[:take]
    filled += take
    http.request_bytes_left = (http.request_bytes_left or 0) - take
    if filled == end:
        return filled
    loop = asyncio.get_running_loop()
    transport = cast(asyncio.Transport, request.transport)
    transport.pause_reading()  # Sanic resumes it when it next waits for data
    raw = transport.get_extra_info("socket")
    try:
        duplicate = os.dup(raw.fileno())
    except OSError:  # out of file descriptors: Sanic's stream reads the rest
        return filled
    with socket.socket(fileno=duplicate) as sock:
        sock.setblocking(False)
        unyielded = 0
        while filled < end:
            try:
                received = await loop.sock_recv_into(sock, buffer[filled:end])
            except OSError:  # e.g. reset by the client
                received = 0
            if not received:  # the client stopped sending: nothing more to read or drain
                http.request_body = None
                http.keep_alive = False
                raise BadRequest("The request body is shorter than its Content-Length.")
            filled += received
            http.request_bytes_left -= received
            http.protocol._time = monotonic()  # Sanic's timeouts count from the last data
            unyielded += received
            if unyielded >= RECEIVE_YIELD_BYTES:
                unyielded = 0
                await asyncio.sleep(0)
    return filled


async def discard_unread_body(request: Request) -> None:
    """Read and drop a body the handler will not use, so that the client, still sending, reads
    the error response instead of a connection reset. Bodies over DRAIN_BYTES, and whatever
    is still unsent after DRAIN_SECONDS, are not waited for: the connection is then closed
    after the response."""
    declared = request.headers.get("content-length", "")
    stream = request.stream
    if stream is None or not declared.isdigit() or int(declared) > DRAIN_BYTES:
        return
    if request.transport.is_closing():
        return
    stream.request_max_size = DRAIN_BYTES
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in stream:  # type: ignore[attr-defined]  # Http, a Stream
                pass
    except TimeoutError:
        if isinstance(stream, Http):  # Sanic must neither wait for the rest nor reuse this
            stream.request_body = None  # connection, whose next bytes are still body
            stream.keep_alive = False
    except SanicException:
        pass
