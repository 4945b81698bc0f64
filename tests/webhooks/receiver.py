"""A real webhook receiver for tests: a stdlib HTTP server thread on 127.0.0.1 that records every
POST and answers as the test says (a status, a slow answer, a closed connection, a redirect)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """``behave(n)`` (n: the 1-based number of this request) returns what to do: an int status,
    ``("status", code, headers)``, ``("sleep", seconds)`` (answer 200 after that long),
    ``("close",)`` (drop the connection unanswered) or ``("hang", event)`` (wait for ``event``)."""

    def __init__(self, behave: Callable[[int], object] | None = None, path: str = "/hooks/mediarouter") -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        self.behave = behave or (lambda n: 200)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.requests.append((self.path, dict(self.headers.items()), body))
                    number = len(receiver.requests)
                    receiver.arrived.notify_all()
                action = receiver.behave(number)
                if isinstance(action, int):
                    action = ("status", action, {})
                kind = action[0]
                if kind == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if kind == "hang":
                    action[1].wait(30)
                    self.close_connection = True
                    return
                if kind == "sleep":
                    time.sleep(action[1])
                    action = ("status", 200, {})
                _, status, headers = action
                payload = b'{"ok": true}' if status < 300 else b"receiver says no " * 100
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout: float = 30.0) -> list[tuple[str, dict[str, str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
            assert len(self.requests) >= count, f"{len(self.requests)} of {count} webhooks arrived"
            return list(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
