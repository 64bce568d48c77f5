"""Fixtures for the integration suite: the real `sluice` binary on 127.0.0.1, small real
upstream servers written here (raw sockets, so a test can see every byte and connection),
and real clients (requests, curl, raw sockets)."""
import contextlib
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SLUICE_BIN", os.path.join(ROOT, ".build", "debug", "sluice"))


_handed_out = set()


def free_port():
    """A free loopback port never handed out before in this run: the kernel may give the same
    ephemeral port to two back-to-back binds once the first socket is closed, and a config
    with the admin API and a listener on one port is (rightly) refused."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class Recorded:
    def __init__(self, method, target, version, headers, body):
        self.method, self.target, self.version, self.headers, self.body = method, target, version, headers, body

    def header(self, name):
        values = [v for (n, v) in self.headers if n.lower() == name.lower()]
        return values[0] if values else None

    def header_names(self):
        return [n.lower() for (n, _) in self.headers]


def read_request(rfile):
    line = rfile.readline(65537)
    if not line:
        return None
    method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers = []
    while True:
        h = rfile.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lower = {n.lower(): v for n, v in headers}
    body = b""
    if lower.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += rfile.read(size)
            rfile.readline()
    elif "content-length" in lower:
        body = rfile.read(int(lower["content-length"]))
    return Recorded(method, target, version, headers, body)


class Upstream:
    """A recording HTTP/1.1 upstream. `handler(req) -> (status, headers, body)` or
    `handler(req, wfile)` returning None when it writes the answer itself."""

    def __init__(self, handler=None):
        self.requests = []
        self.connections = 0
        self.handler = handler or (lambda req: (200, [("content-type", "text/plain")], b"upstream ok"))
        # a handler taking (req, wfile) writes its answer itself
        code = self.handler.__code__
        self.raw = code.co_argcount - len(self.handler.__defaults__ or ()) == 2
        outer = self

        class H(socketserver.StreamRequestHandler):
            def handle(self):
                outer.connections += 1
                while True:
                    try:
                        req = read_request(self.rfile)
                    except Exception:
                        return
                    if req is None:
                        return
                    outer.requests.append(req)
                    result = outer.handler(req, self.wfile) if outer.raw else outer.handler(req)
                    if result is None:
                        return
                    status, headers, body = result
                    names = [n.lower() for n, _ in headers]
                    out = f"HTTP/1.1 {status} X\r\n".encode()
                    for n, v in headers:
                        out += f"{n}: {v}\r\n".encode()
                    if "content-length" not in names and "transfer-encoding" not in names:
                        out += f"content-length: {len(body)}\r\n".encode()
                    out += b"\r\n"
                    if isinstance(body, (bytes, bytearray)):
                        self.wfile.write(out + body)
                    else:  # an iterator of chunks, written as they come
                        self.wfile.write(out)
                        for piece in body:
                            self.wfile.write(piece)
                    self.wfile.flush()

        class S(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            request_queue_size = 128

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def last(self):
        return self.requests[-1]


@pytest.fixture
def upstream():
    servers = []

    def make(handler=None):
        u = Upstream(handler)
        servers.append(u)
        return u

    yield make
    for s in servers:
        s.close()


class Gateway:
    def __init__(self, tmp_path, config, env=None, extra_args=None):
        self.port = free_port()
        self.admin_port = free_port()
        self.dir = tmp_path
        self.config_path = os.path.join(str(tmp_path), "sluice.yaml")
        self.write_config(config)
        self.log_path = os.path.join(str(tmp_path), "stdout.log")
        self.err_path = os.path.join(str(tmp_path), "stderr.log")
        self.env = dict(os.environ, **(env or {}))
        self.extra_args = extra_args or []
        self.proc = None

    def render(self, config):
        return (config.replace("{{PORT}}", str(self.port)).replace("{{ADMIN_PORT}}", str(self.admin_port))
                .replace("{{DIR}}", str(self.dir)))

    def write_config(self, config):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.render(config))
        os.replace(tmp, self.config_path)

    def start(self, wait=True):
        self.stdout = open(self.log_path, "wb")
        self.stderr = open(self.err_path, "wb")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config_path] + self.extra_args,
                                     stdout=self.stdout, stderr=self.stderr, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice exited with {self.proc.returncode}: {self.stderr_text()}")
            try:
                if requests.get(self.admin("/readyz"), timeout=0.5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise RuntimeError("sluice did not become ready: " + self.stderr_text())

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def admin(self, path):
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def stderr_text(self):
        self.stderr.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stdout_text(self):
        self.stdout.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (getattr(self, "stdout", None), getattr(self, "stderr", None)):
            if f:
                f.close()


@pytest.fixture
def gateway(tmp_path):
    started = []

    def make(config, env=None, start=True, extra_args=None):
        g = Gateway(tmp_path, config, env, extra_args)
        started.append(g)
        if start:
            g.start()
        return g

    yield make
    for g in started:
        g.stop()


def raw(port, data, timeout=3.0, read_all=True):
    """Sends raw bytes and returns everything the gateway answers until it closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                piece = s.recv(65536)
                if not piece:
                    break
                chunks.append(piece)
                if not read_all:
                    break
        except socket.timeout:
            pass
        return b"".join(chunks)


def status_of(response_bytes):
    line = response_bytes.split(b"\r\n", 1)[0]
    return int(line.split(b" ")[1]) if line.startswith(b"HTTP/") else None


def simple_config(backend_address, routes_extra="", listener_extra="", top_extra="", route_extra=""):
    return f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
observability:
  access_log: {{ format: json, output: stdout }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
{listener_extra}
    routes:
{routes_extra}
      - name: main
        match: {{ path_prefix: / }}
{route_extra}
        backend: svc
backends:
  svc:
    endpoints: [{backend_address}]
{top_extra}
"""
