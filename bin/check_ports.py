"""Refuses (exit 1, naming the port and how to pick another) when the web
server's PORT or the local subnet's MINER_PORT range is taken, so that
`make run` stops before it migrates or replaces the demo key."""

import socket
import sys


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_range_from(start: int, count: int, avoid: set[int]) -> int:
    """The first port from `start` on with `count` free ports in a row."""
    port = start
    while any(p in avoid or not is_free(p) for p in range(port, port + count)):
        port += count
    return port


def problems(port: int, miner_port: int, miners: int) -> list[str]:
    found = []
    miner_ports = set(range(miner_port, miner_port + miners)) if miner_port else set()
    if port in miner_ports or not is_free(port):
        why = "is one of the miners' ports" if port in miner_ports else "is in use"
        other = free_range_from(port + 1, 1, miner_ports)
        found.append(f"port {port} (PORT, the web server) {why}; choose another: make run PORT={other}")
    busy = sorted(p for p in miner_ports if not is_free(p))
    if busy:
        other = free_range_from(miner_port + miners, miners, {port})
        found.append(
            f"port {busy[0]} (in MINER_PORT={miner_port}…{miner_port + miners - 1}, the {miners} local miners) "
            f"is in use; choose another range: make run MINER_PORT={other}"
        )
    return found


if __name__ == "__main__":
    port, miner_port, miners = (int(arg) for arg in sys.argv[1:4])
    found = problems(port, miner_port, miners)
    for message in found:
        print(message, file=sys.stderr)
    sys.exit(1 if found else 0)
