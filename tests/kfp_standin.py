"""A stand-in for the Kubeflow Pipelines API server over real HTTP on 127.0.0.1: the
endpoints ``kfp.Client.create_run_from_pipeline_package`` calls (v2beta1 healthz,
experiments, runs), answering as backend/src/apiserver does (healthz: ``commit_sha``,
``tag_name``, ``multi_user``; errors: grpc-gateway's ``{"code", "message", "details"}``),
recording every request. ``mode`` makes it misbehave the ways a real cluster does: an error
status on run creation, a login page (a redirect to an HTML page, as Dex / oauth2-proxy do)."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class StandIn:
    tag: str = "2.16.0"
    mode: str = "ok"
    """ok | login (every /apis/ path redirects to an HTML login page) | down (healthz answers
    500) | error:STATUS:MESSAGE (run creation answers that status)."""
    requests: list[tuple[str, str, dict, bytes]] = field(default_factory=list)
    host: str = ""

    def runs(self) -> list[dict]:
        """The bodies of the run creations received."""
        return [json.loads(b) for m, p, _, b in self.requests if m == "POST" and "/runs" in p]


def _handler(state: StandIn):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: object, ctype: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append((method, self.path, dict(self.headers), body))
            path = self.path.split("?")[0]
            if path.startswith("/dex/auth"):
                page = b"<!DOCTYPE html><html><body>Log in to Your Account</body></html>"
                return self._send(200, page, "text/html")
            if state.mode == "login" and path.startswith("/apis/"):
                self.send_response(302)
                self.send_header("Location", "/dex/auth?client_id=kubeflow-oidc-authservice")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path == "/apis/v2beta1/healthz" and state.mode == "down":
                return self._send(500, {"code": 13, "message": "failed to get healthz: db down"})
            if path == "/apis/v2beta1/healthz":
                return self._send(
                    200, {"commit_sha": "c0ffee", "tag_name": state.tag, "multi_user": False}
                )
            if path == "/apis/v2beta1/experiments" and method == "GET":
                return self._send(200, {})
            if path == "/apis/v2beta1/experiments" and method == "POST":
                exp = json.loads(body)
                return self._send(200, {**exp, "experiment_id": "exp-1"})
            if path == "/apis/v2beta1/runs" and method == "POST":
                if state.mode.startswith("error:"):
                    _, status, message = state.mode.split(":", 2)
                    return self._send(int(status), {"code": 3, "message": message, "details": []})
                run = json.loads(body)
                return self._send(200, {**run, "run_id": "run-42", "state": "PENDING"})
            return self._send(404, {"code": 5, "message": f"no route {path}"})

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def standin(**kwargs: object) -> Iterator[StandIn]:
    state = StandIn(**kwargs)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
