"""Free TCP ports on loopback, chosen by the kernel."""

from __future__ import annotations

import socket

from ops.errors import SandboxError

# Ports already handed out by this process. A sandbox asks for its ports one after another and
# nothing holds a port between the ask and its component's start, so the kernel may offer the
# same port twice (a fresh-clone CI run saw 15 ports with one repeated).
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never one this process was given before."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise SandboxError("no free loopback port that this process has not handed out already")


def port_is_free(port: int) -> bool:
    """True when a server could listen on `port` now (connections in TIME-WAIT don't hold it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as every server we run does
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, timeout: float) -> bool:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
