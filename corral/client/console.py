"""``corral --server URL vm console PROJECT.HOST``: this terminal on the server's websocket.

The server bridges its websocket (``/api/v1/vms/{target}/console``) to the
domain's serial console; here standard input goes to it and what it sends
comes out on standard output, with the terminal in raw mode (keys as typed,
no local echo) when standard input is one. Ctrl-] leaves, as with the local
``virsh console``; so does the end of standard input. A refused handshake
(401, 403, 404) is the server's error, printed and exited like any other.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from corral.client.transport import API, Transport, unreachable
from corral.errors import CorralError

ESCAPE = b"\x1d"  # Ctrl-], virsh console's escape
POLL_S = 0.2


def console_url(base: str, target: str) -> str:
    """The websocket URL of ``target``'s console on the server at ``base``."""
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{API}/vms/{quote(target, safe='')}" \
        "/console"


def attach(transport: Transport, target: str, stdin: BinaryIO | None = None,
           stdout: BinaryIO | None = None) -> None:
    """Connect this terminal (or ``stdin``/``stdout``) to ``target``'s console until
    Ctrl-], the end of the input, or the server closing it."""
    url = console_url(transport.remote.url, target)
    with _connected(transport, url) as socket:
        source = stdin if stdin is not None else sys.stdin.buffer
        sink = stdout if stdout is not None else sys.stdout.buffer
        print(f"Connected to {target} through {transport.remote.url}; escape character is ^]",
              file=sys.stderr, flush=True)
        with _raw(source):
            relay(socket, source.fileno(), sink)
    print("", file=sys.stderr)


@contextmanager
def _connected(transport: Transport, url: str) -> Iterator[ClientConnection]:
    headers = {k: v for k, v in transport.headers.items() if k == "Authorization"}
    ssl = transport.verify if url.startswith("wss://") else None
    if ssl is True:
        import ssl as ssl_module

        ssl = ssl_module.create_default_context()
    try:
        socket = connect(url, additional_headers=headers, ssl=ssl or None, open_timeout=30,
                         max_size=None)
    except InvalidStatus as refused:
        raise _refusal(transport, refused) from None
    except (OSError, InvalidHandshake, TimeoutError) as error:
        raise unreachable(transport.remote.url, error) from None
    with socket:
        yield socket


def _refusal(transport: Transport, refused: InvalidStatus) -> CorralError:
    """The server's error answer to the handshake, as every other answer's."""
    return transport.error_of_body(refused.response.status_code,
                                   bytes(refused.response.body or b""))


def relay(socket: ClientConnection, source: int, sink: BinaryIO) -> None:
    """Bytes from ``source`` (a file descriptor) to the console and from the console
    to ``sink``, until Ctrl-] or the end of ``source`` or of the console."""
    ended = threading.Event()

    def output() -> None:
        try:
            for message in socket:
                sink.write(message if isinstance(message, bytes) else message.encode())
                sink.flush()
        except ConnectionClosed:
            pass
        finally:
            ended.set()

    reader = threading.Thread(target=output, name="console-output", daemon=True)
    reader.start()
    try:
        while not ended.is_set():
            ready, _, _ = select.select([source], [], [], POLL_S)
            if not ready:
                continue
            data = os.read(source, 4096)
            typed, escape, _ = data.partition(ESCAPE)
            if typed:
                socket.send(typed)
            if escape or not data:
                break
    except ConnectionClosed:
        pass
    finally:
        socket.close()
        reader.join(timeout=5)


@contextmanager
def _raw(stream: BinaryIO) -> Iterator[None]:
    """The terminal in raw mode while the console is attached; anything else as it is."""
    fd = stream.fileno()
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
