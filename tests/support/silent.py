"""A registry that never answers: a TCP port that accepts connections and sends nothing, so a check sent there
stays in flight (for tests and the benchmark of stopping)."""

import socket
import threading


class SilentRegistry:
    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._sock.close()
        for connection in self.connections:
            connection.close()
