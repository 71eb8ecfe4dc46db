"""``kyso serve``'s front: reads each request whole, then hands it to a worker.

A gunicorn worker thread that reads a request from a client holds that thread for as long
as the client takes: five clients sending a header byte every two seconds stopped
``/healthz`` for 27 s. So the workers never face a client. This front, one asyncio
process, accepts every connection and reads each request itself, with deadlines (the head
within ``header_timeout_seconds`` of its first byte, no pause in a body longer than
``read_timeout_seconds``, no idle connection longer than ``keepalive_seconds``), keeps the
body (in memory, then in a temporary file past 1 MiB), and only then passes the complete
request to the workers over a Unix socket, the client's address in a PROXY protocol line.
Answers come back the same way: spooled from the worker as fast as it writes, sent to the
client as fast as it reads. This is what nginx does in front of an application server; no
signing or verification runs on this event loop.

A body over ``max_body_bytes`` is not read: the request goes to the workers without its
body, announced as one byte over the limit, so that the app refuses it (413, audited) as
it refuses any other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass

import h11

from kyso.api.logs import new_request_id, sane_request_id
from kyso.cli.spool import Spool
from kyso.config import ServerConfig

log = logging.getLogger("kyso.front")

_HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
    b"upgrade", b"trailer", b"content-length", b"expect",
}  # fmt: skip


@dataclass(frozen=True)
class FrontSettings:
    server: ServerConfig
    max_body_bytes: int
    upstream: str  # the workers' Unix socket


class Closed(Exception):
    """The client went away, was too slow, or spoke no HTTP: the connection ends."""


def _problem(status: int, code: str, detail: str) -> tuple[h11.Response, bytes]:
    titles = {
        400: "Invalid request",
        408: "Request timeout",
        503: "Service unavailable",
        504: "Gateway timeout",
    }
    body = json.dumps({"type": f"https://kyso.invalid/problems/{code}", "title": titles[status],
                       "status": status, "detail": detail, "code": code}).encode()  # fmt: skip
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
               (b"x-content-type-options", b"nosniff"), (b"connection", b"close"),
               (b"x-request-id", new_request_id().encode())]  # fmt: skip
    return h11.Response(status_code=status, headers=headers), body


class ClientConnection:
    """One client connection: requests read whole, answered in order."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, settings: FrontSettings
    ):
        self.reader, self.writer, self.settings = reader, writer, settings
        self.conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=settings.server.max_header_bytes
        )
        self.peer = writer.get_extra_info("peername")

    async def run(self) -> None:
        try:
            first = True
            while True:
                idle = (
                    self.settings.server.header_timeout_seconds
                    if first
                    else self.settings.server.keepalive_seconds
                )
                request = await self._read_head(idle)
                if request is None:
                    return
                await self._serve(request)
                if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
                    return await self._linger()
                self.conn.start_next_cycle()
                first = False
        except Closed:
            pass
        except h11.RemoteProtocolError as exc:
            await self._refuse(400, "invalid_request", f"not a valid HTTP/1.1 request: {exc}")
        finally:
            self.writer.close()

    async def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):  # cheaper than wait_for: no task of its own
            data = await self.reader.read(65536)
        self.conn.receive_data(data)

    async def _read_head(self, idle: float) -> h11.Request | None:
        """The next request's head, or None when the client closed or stayed idle."""
        deadline = time.monotonic() + idle
        started = False
        while True:
            event = self.conn.next_event()
            if isinstance(event, h11.Request):
                return event
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
            if not started and self.conn.trailing_data[0]:
                started = True  # a byte of the head arrived: it has header_timeout from now
                deadline = time.monotonic() + self.settings.server.header_timeout_seconds
            try:
                await self._receive(deadline)
            except TimeoutError:
                if started or self.conn.trailing_data[0]:
                    await self._refuse(
                        408, "request_timeout", "the request head took too long to arrive"
                    )
                return None
            except OSError:
                return None

    async def _read_body(self, request: h11.Request) -> tuple[Spool | None, int]:
        """The body, or (None, declared length) when it is over the limit (left unread)."""
        limit = self.settings.max_body_bytes
        declared = next((int(v) for k, v in request.headers if k == b"content-length"), None)
        if declared is not None and declared > limit:
            return None, declared
        if self.conn.they_are_waiting_for_100_continue:
            self.writer.write(
                self.conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
            )
        body = Spool()
        while True:
            event = self.conn.next_event()
            if isinstance(event, h11.Data):
                body.write(bytes(event.data))
                if body.size > limit:
                    body.close()
                    return None, limit + 1
            elif isinstance(event, h11.EndOfMessage):
                body.finish()
                return body, body.size
            elif isinstance(event, h11.ConnectionClosed):
                raise Closed
            else:
                try:
                    await self._receive(
                        time.monotonic() + self.settings.server.read_timeout_seconds
                    )
                except TimeoutError:
                    await self._refuse(408, "request_timeout", "the request body stopped arriving")
                    raise Closed from None

    async def _serve(self, request: h11.Request) -> None:
        body, length = await self._read_body(request)
        try:
            async with asyncio.timeout(10):
                upstream = await asyncio.open_unix_connection(self.settings.upstream, limit=1 << 20)
        except (OSError, TimeoutError):
            if body is not None:
                body.close()
            await self._refuse(
                503, "service_unavailable", "kyso's workers are not answering; retry shortly"
            )
            raise Closed from None
        up_reader, up_writer = upstream
        answer = Spool()
        head: asyncio.Future[h11.Response] = asyncio.get_running_loop().create_future()
        pump = asyncio.create_task(
            self._pump(request, body, length, up_reader, up_writer, head, answer)
        )
        try:
            await self._relay(pump, head, answer, close=body is None)
        finally:
            if not pump.done():
                pump.add_done_callback(lambda _task: answer.close())  # the worker finishes unheard
            else:
                answer.close()
            if body is not None:
                body.close()

    async def _pump(
        self, request: h11.Request, body: Spool | None, length: int,
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        head: asyncio.Future[h11.Response], answer: Spool,
    ) -> None:  # fmt: skip
        """Send the request to a worker, and spool its answer (the head into ``head``)."""
        up = h11.Connection(h11.CLIENT)
        headers = [(k, v) for k, v in request.headers.raw_items()
                   if k.lower() not in _HOP_BY_HOP and (k.lower() != b"x-request-id" or _sane_id(v))]  # fmt: skip
        if not any(k.lower() == b"host" for k, _ in headers):
            headers.append((b"host", b"kyso"))
        headers += [(b"content-length", str(length).encode()), (b"connection", b"close")]
        try:
            writer.write(self._proxy_line(request))
            writer.write(
                up.send(h11.Request(method=request.method, target=request.target, headers=headers))
                or b""
            )
            try:
                if body is not None:
                    while chunk := await body.read():
                        writer.write(up.send(h11.Data(data=chunk)) or b"")
                        await writer.drain()
                    writer.write(up.send(h11.EndOfMessage()) or b"")
                await writer.drain()
            except (ConnectionError, OSError):
                # The worker answered without reading the whole body (a refusal of what it
                # saw first) and closed: its answer is still to be read and relayed.
                pass
            deadline = time.monotonic() + self.settings.server.upstream_timeout_seconds
            while True:
                event = up.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                        data = await reader.read(1 << 20)
                    up.receive_data(data)
                elif isinstance(event, h11.Response):
                    head.set_result(event)
                elif isinstance(event, h11.Data):
                    answer.write(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("the worker closed the connection before it answered")
        finally:
            answer.finish()
            writer.close()

    async def _relay(
        self,
        pump: asyncio.Task,
        answer_head: asyncio.Future[h11.Response],
        answer: Spool,
        close: bool,
    ) -> None:
        """Send the worker's answer to the client as the client takes it."""
        await asyncio.wait({pump, answer_head}, return_when=asyncio.FIRST_COMPLETED)
        if not answer_head.done():
            try:
                pump.result()
            except TimeoutError:
                await self._refuse(504, "gateway_timeout", "kyso's workers took too long to answer")
            except (OSError, h11.ProtocolError):
                await self._refuse(
                    503, "service_unavailable", "kyso's worker failed to answer; retry shortly"
                )
            raise Closed
        head = answer_head.result()
        headers = [  # names as the app wrote them (h11 matches them in lower case)
            (k, v) for k, v in head.headers.raw_items()
            if k.lower() not in _HOP_BY_HOP or k.lower() == b"content-length"
        ]  # fmt: skip
        if close:
            headers.append((b"Connection", b"close"))
        await self._send(
            h11.Response(status_code=head.status_code, headers=headers, reason=head.reason)
        )
        while chunk := await answer.read():
            await self._send(h11.Data(data=chunk))
        try:
            await pump
        except Exception:  # the answer was cut short: so must the client's be
            raise Closed from None
        await self._send(h11.EndOfMessage())

    async def _send(self, event: h11.Response | h11.Data | h11.EndOfMessage) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
        try:
            async with asyncio.timeout(self.settings.server.read_timeout_seconds):
                await self.writer.drain()
        except (OSError, TimeoutError):
            raise Closed from None

    async def _refuse(self, status: int, code: str, detail: str) -> None:
        """Answer from the front itself (nothing reached the app), then close."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        head, body = _problem(status, code, detail)
        try:
            await self._send(head)
            await self._send(h11.Data(data=body))
            await self._send(h11.EndOfMessage())
        except (Closed, h11.LocalProtocolError):
            return
        await self._linger()

    async def _linger(self) -> None:
        """Close gently: stop writing, and discard what the client still sends for a moment, so
        that the answer is not lost to a reset (what nginx calls lingering close)."""
        try:
            self.writer.write_eof()
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                async with asyncio.timeout(deadline - time.monotonic()):
                    if not await self.reader.read(65536):
                        return
        except (OSError, TimeoutError, RuntimeError):
            return

    def _proxy_line(self, request: h11.Request) -> bytes:
        """PROXY protocol v1: who the client is, for the workers' REMOTE_ADDR."""
        address = self.peer[0] if isinstance(self.peer, tuple) else "127.0.0.1"
        trusted = self.settings.server.trusted_proxies
        if trusted and _within(address, trusted):
            forwarded = [h.strip() for k, v in request.headers if k == b"x-forwarded-for"
                         for h in v.decode("latin-1").split(",")]  # fmt: skip
            while forwarded and _within(forwarded[-1], trusted):
                forwarded.pop()
            if forwarded and _parse(forwarded[-1]) is not None:
                address = forwarded[-1]
        ip = _parse(address) or ipaddress.ip_address("127.0.0.1")
        family = "TCP4" if ip.version == 4 else "TCP6"
        local = "127.0.0.1" if ip.version == 4 else "::1"
        return f"PROXY {family} {ip} {local} 0 0\r\n".encode()


def _sane_id(value: bytes) -> bool:
    """An X-Request-Id the app may keep; any other is not passed on (the app makes a new one)."""
    return value.isascii() and sane_request_id(value.decode("ascii"))


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _within(text: str, networks: tuple[str, ...]) -> bool:
    ip = _parse(text)
    return ip is not None and any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def no_delay(writer: asyncio.StreamWriter) -> None:
    """Send each answer's segments at once (TCP_NODELAY). asyncio sets it only on sockets made
    with ``proto=IPPROTO_TCP``, which those accepted from ``socket.create_server`` are not
    (their ``proto`` is 0): an answer written as a head, then a body, then waited 40 ms for
    the client's delayed ACK of the head (Nagle's algorithm) on every reused connection."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client is already gone: its first read says so
            pass


async def serve(listener, settings: FrontSettings, stop: asyncio.Event) -> None:  # noqa: ANN001
    """Serve ``listener`` (a bound socket) until ``stop`` is set."""
    open_connections: set[asyncio.Task] = set()
    limit = asyncio.Semaphore(settings.server.max_connections)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        no_delay(writer)
        async with limit:
            task = asyncio.current_task()
            assert task is not None
            open_connections.add(task)
            try:
                await ClientConnection(reader, writer, settings).run()
            except Exception:  # one connection's failure never stops the front
                log.exception("front: connection failed")
            finally:
                open_connections.discard(task)

    server = await asyncio.start_server(handle, sock=listener, limit=1 << 20, backlog=1024)
    async with server:
        await stop.wait()
        server.close()
        if open_connections:
            await asyncio.wait(open_connections, timeout=10)
