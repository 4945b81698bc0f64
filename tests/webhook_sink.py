"""A local receiver for provider callbacks in tests (a stdlib HTTP server on a free port)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookSink:
    """A local HTTP endpoint that records what is POSTed to it (a provider's callback target):
    ``url`` ends ``/hooks/<slug>/gen_1/token``; every POST is answered with ``status``."""

    def __init__(self, slug: str, status: int = 200) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.arrived:
                    sink.deliveries.append((dict(self.headers.items()), body))
                    sink.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{slug}/gen_1/token"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout=timeout)
            assert len(self.deliveries) >= count, f"{len(self.deliveries)} of {count} webhooks arrived"
            return list(self.deliveries)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
