#!/usr/bin/env python3
"""A tiny TCP "who am I" service for proving NAT.

    whoami.py serve PORT [CONNECTIONS]   answer each connection with the peer's ip:port
    whoami.py ask HOST PORT              connect and print what the server saw

The server tells the client the address it saw the connection come from, so a client
behind masquerade learns its translated address, and a port forward shows it reached
the right server.
"""
import socket
import sys


def serve(port: int, connections: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(16)
    print(f"listening on {port}", flush=True)
    for _ in range(connections):
        conn, (host, peer_port) = server.accept()
        with conn:
            conn.sendall(f"server saw {host}:{peer_port}\n".encode())


def ask(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=5) as conn:
        print(conn.makefile().readline().strip())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000)
    else:
        ask(sys.argv[2], int(sys.argv[3]))
