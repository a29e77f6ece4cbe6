"""A stand-in for an Istio gateway: routes by Host header, like Knative's routes and the backend's
VirtualService do. Only for scripts/container-test.sh and tests/k8s, which run
scripts/smoke-test.sh against real servers (a Kubernetes cluster cannot run here).

    python -m tests.k8s.fake_cluster.host_router PORT [HOST=UPSTREAM...] DEFAULT_UPSTREAM

DEFAULT_UPSTREAM `-` answers 404 for unknown hosts, as Knative's local gateway does.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def make_handler(routes: dict[str, str], default: str) -> type[BaseHTTPRequestHandler]:
    client = httpx.Client(timeout=120)

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            host = (self.headers.get("Host") or "").split(":")[0]
            upstream = routes.get(host, default)
            if upstream == "-":
                self.send_error(404, f"no route for host {host}")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                response = client.request(
                    self.command, f"http://{upstream}{self.path}", headers=headers, content=body
                )
            except httpx.HTTPError as exc:
                self.send_error(502, f"upstream {upstream}: {exc}")
                return
            self.send_response(response.status_code)
            for key, value in response.headers.items():
                if key.lower() not in HOP_BY_HOP | {"content-encoding"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    return Handler


def main(argv: list[str]) -> None:
    port, *rules, default = argv
    routes = dict(rule.split("=", 1) for rule in rules)
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), make_handler(routes, default))
    print(f"Forwarding from 127.0.0.1:{port} -> 80", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
