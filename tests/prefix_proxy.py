"""A reverse proxy that serves an upstream HTTP server under a path prefix and strips the prefix,
as JupyterHub's jupyter-server-proxy (`https://HUB/user/NAME/proxy/8501/...`), Kubeflow notebook
servers and code-server's /proxy/PORT/ do: the way a page on a remote machine is often reached.

    with prefix_proxy("http://127.0.0.1:8501", "/user/me/proxy/8501") as url: ...

`post_delay` seconds are added to every POST, as a slow link adds them to an upload. The Host
header goes upstream as the client sent it, as jupyter-server-proxy forwards it (a copy of the
request's headers); `host` replaces it, as the hub's name a browser sends.

Requests outside the prefix get a 404, as they would reach some other application there; their
paths are appended to `outside` when it is given. With `traffic`, each request inside is appended
to it twice: ("sent", method, upstream path) as it arrives, ("answered", ...) once answered."""

import contextlib
import http.client
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
              "proxy-authenticate"}


@contextlib.contextmanager
def prefix_proxy(upstream: str, prefix: str, post_delay: float = 0.0, outside: list | None = None, host: str | None = None,
                 traffic: list | None = None):
    """The proxied base URL (ending in `prefix`, without a slash) while the proxy runs."""
    target = urllib.parse.urlsplit(upstream)
    prefix = prefix.rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        def forward(self):
            path = self.path.partition("?")[0]
            if not (path == prefix or path.startswith(prefix + "/")):
                if outside is not None:
                    outside.append(self.path)
                self.send_error(404, f"nothing under {self.path} on this proxy")
                return
            upstream_path = self.path[len(prefix):]
            if not upstream_path.startswith("/"):  # the bare prefix, with or without a query
                upstream_path = "/" + upstream_path
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if traffic is not None:
                traffic.append(("sent", self.command, upstream_path))
            if self.command == "POST":
                time.sleep(post_delay)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            headers["Host"] = host or self.headers.get("Host", "")
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                connection.request(self.command, upstream_path, body=body or None, headers=headers)  # its own Host: http.client adds none
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if traffic is not None:
                traffic.append(("answered", self.command, upstream_path))

        do_GET = do_POST = do_HEAD = forward

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    finally:
        server.shutdown()
        server.server_close()
