"""The front's parts that need no server: whom it names as the client, and its spool."""

from __future__ import annotations

import asyncio
import socket

import h11

from kyso.cli.front import ClientConnection, FrontSettings, no_delay
from kyso.cli.spool import Spool
from kyso.config import ServerConfig


class _Writer:
    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer

    def get_extra_info(self, name: str) -> tuple[str, int]:
        return self.peer


def proxy_line(peer: str, forwarded: str | None, trusted: tuple[str, ...]) -> bytes:
    settings = FrontSettings(ServerConfig(trusted_proxies=trusted), 1024, "/nowhere")
    conn = ClientConnection(None, _Writer((peer, 5555)), settings)  # type: ignore[arg-type]
    headers = [("Host", "x")] + ([("X-Forwarded-For", forwarded)] if forwarded else [])
    return conn._proxy_line(h11.Request(method="GET", target="/", headers=headers))


def test_x_forwarded_for_is_believed_from_trusted_proxies_only() -> None:
    assert proxy_line("203.0.113.9", "10.1.1.1", ()) == b"PROXY TCP4 203.0.113.9 127.0.0.1 0 0\r\n"
    assert (
        proxy_line("10.0.0.5", "198.51.100.7", ("10.0.0.0/8",))
        == b"PROXY TCP4 198.51.100.7 127.0.0.1 0 0\r\n"
    )
    # the right-most address that is not a proxy: a client cannot forge the ones after it
    assert (
        proxy_line("10.0.0.5", "1.2.3.4, 198.51.100.7, 10.0.0.6", ("10.0.0.0/8",)).split()[2]
        == b"198.51.100.7"
    )
    assert proxy_line("10.0.0.5", "not an address", ("10.0.0.0/8",)).split()[2] == b"10.0.0.5"
    assert proxy_line("::1", None, ()) == b"PROXY TCP6 ::1 ::1 0 0\r\n"


def test_the_spool_keeps_order_across_memory_and_file() -> None:
    async def run() -> bytes:
        spool = Spool()
        pieces = [bytes([n]) * 300_000 for n in range(8)]  # 2.4 MB: past the memory part
        for piece in pieces:
            spool.write(piece)
        spool.finish()
        out = b""
        while chunk := await spool.read(70_000):
            out += chunk
        spool.close()
        assert out == b"".join(pieces)
        return out

    assert len(asyncio.run(run())) == 2_400_000


def test_the_front_sends_answers_without_waiting_for_the_clients_ack() -> None:
    class Accepted:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> socket.socket:
            return self.sock

    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname()) as _client:
            accepted, _ = listener.accept()
            with accepted:
                no_delay(Accepted(accepted))  # type: ignore[arg-type]
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
