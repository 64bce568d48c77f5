"""WebSocket through routes with `websocket: true`: a real `websockets` client and upstream,
over plain HTTP and over TLS; every other route keeps stripping Upgrade."""
import json
import os
import signal
import socket
import ssl
import threading
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import serve

from conftest import raw
from test_rate_limit import wait_until
from tlskit import Certs


class WSUpstream:
    """A real WebSocket server: echoes text and binary messages; `/hold` keeps quiet."""

    def __init__(self):
        self.headers = []

        def handler(ws):
            self.headers.append(dict(ws.request.headers))
            try:
                for message in ws:
                    ws.send(message)
            except ConnectionClosed:
                pass

        self.server = serve(handler, "127.0.0.1", 0, max_size=8 * 1024 * 1024)
        self.port = self.server.socket.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def ws_upstream():
    servers = []

    def make():
        s = WSUpstream()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def config(ws_address, http_address, extra_route="", listener_extra=""):
    return f"""version: 1
runtime: {{ drain_timeout: 2s }}
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: web
    listen: 127.0.0.1:{{{{PORT}}}}
{listener_extra}
    routes:
      - {{ name: ws, match: {{ path_prefix: /ws }}, backend: ws, websocket: true, stream_idle_timeout: 2s }}
      - {{ name: plain, match: {{ path_prefix: /plain }}, backend: plain }}
      - {{ name: ws-to-plain, match: {{ path_prefix: /fake }}, backend: plain, websocket: true }}
{extra_route}
backends:
  ws: {{ endpoints: [{ws_address}] }}
  plain: {{ endpoints: [{http_address}] }}
"""


def test_websocket_text_binary_ping_close_and_a_large_message(gateway, upstream, ws_upstream):
    ws = ws_upstream()
    http = upstream()
    gw = gateway(config(ws.address, http.address))
    with connect(f"ws://127.0.0.1:{gw.port}/ws/chat", max_size=8 * 1024 * 1024, additional_headers={"x-user": "u1"}) as c:
        c.send("hello")
        assert c.recv(timeout=5) == "hello"
        c.send(b"\x00\x01binary\xff")
        assert c.recv(timeout=5) == b"\x00\x01binary\xff"
        pong = c.ping(b"are you there")
        assert pong.wait(5)
        big = os.urandom(1024 * 1024)
        c.send(big)
        assert c.recv(timeout=10) == big
        # the close handshake passes through: the upstream answers our close frame with its own
        c.close(code=4000, reason="bye")
        assert c.close_code == 4000 and c.close_reason == "bye"
    # the upstream saw the upgrade with its Sec-WebSocket-* headers and the gateway's own
    seen = {k.lower(): v for k, v in ws.headers[-1].items()}
    assert seen["upgrade"].lower() == "websocket" and "upgrade" in seen["connection"].lower()
    assert "sec-websocket-key" in seen and seen["sec-websocket-version"] == "13"
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-user"] == "u1"
    # one access log line, when the tunnel closed, with the bytes both ways
    assert wait_until(lambda: '"route":"ws"' in gw.stdout_text(), timeout=3)
    line = [l for l in gw.stdout_text().splitlines() if '"route":"ws"' in l][-1]
    assert '"status":101' in line and '"upstream_status":101' in line
    record = json.loads(line)
    assert record["bytes_in"] > 1024 * 1024 and record["bytes_out"] > 1024 * 1024
    assert gw.alive()


def test_other_routes_strip_upgrade_and_an_unasked_101_is_a_502(gateway, upstream, ws_upstream):
    ws = ws_upstream()

    def http(req, wfile=None):
        if req.target.startswith("/fake"):
            # a 101 although the request did not reach it as an upgrade it asked for
            return (101, [("upgrade", "websocket"), ("connection", "upgrade")], b"")
        return (200, [], b"plain")

    plain = upstream(lambda req: http(req))
    gw = gateway(config(ws.address, plain.address))
    head = (b"GET /plain HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    answer = raw(gw.port, head, timeout=2)
    assert b" 200 " in answer.split(b"\r\n")[0]
    assert "upgrade" not in plain.last.header_names() and plain.last.header("connection") is None
    # /fake allows websocket but a plain GET (no Upgrade) gets a 101: not asked, 502
    r = requests.get(gw.url("/fake/x"), timeout=5)
    assert r.status_code == 502
    # an h2c upgrade is never forwarded, not even on a websocket route (SECURITY.md rule 7)
    answer = raw(gw.port, b"GET /fake/h2c HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                          b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", timeout=2)
    assert b" 502 " in answer.split(b"\r\n")[0]
    assert plain.last.target == "/fake/h2c"
    assert "upgrade" not in plain.last.header_names() and "http2-settings" not in plain.last.header_names()
    # a client upgrade on a plain route: never a tunnel
    with pytest.raises(Exception):
        connect(f"ws://127.0.0.1:{gw.port}/plain", open_timeout=3)
    assert gw.alive()


def test_websocket_idle_timeout_closes_the_tunnel(gateway, upstream, ws_upstream):
    ws = ws_upstream()
    gw = gateway(config(ws.address, upstream().address))
    with connect(f"ws://127.0.0.1:{gw.port}/ws", ping_interval=None) as c:
        c.send("x")
        assert c.recv(timeout=5) == "x"
        started = time.time()
        with pytest.raises(ConnectionClosed):
            c.recv(timeout=10)
        assert 1.5 < time.time() - started < 5  # stream_idle_timeout: 2s


def test_websocket_survives_a_reload_and_sigterm_drains_it(gateway, upstream, ws_upstream):
    ws = ws_upstream()
    plain = upstream()
    gw = gateway(config(ws.address, plain.address))
    with connect(f"ws://127.0.0.1:{gw.port}/ws", ping_interval=None) as c:
        c.send("before")
        assert c.recv(timeout=5) == "before"
        gw.write_config(gw.render(config(ws.address, plain.address, extra_route="      - { name: new, direct_response: { status: 200 } }")))
        assert requests.post(gw.admin("/reload"), timeout=5).status_code == 200
        c.send("after reload")
        assert c.recv(timeout=5) == "after reload"
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        c.send("while draining")
        assert c.recv(timeout=5) == "while draining"
        # drain_timeout (2s) ends it, and the process exits
        started = time.time()
        with pytest.raises(ConnectionClosed):
            c.recv(timeout=6)
        assert time.time() - started < 4
    assert gw.proc.wait(timeout=10) == 0
    assert '"route":"ws"' in gw.stdout_text()


def test_websocket_over_tls(gateway, upstream, ws_upstream, tmp_path):
    certs = Certs(tmp_path)
    certs.write("api", "api.example.com")
    ws = ws_upstream()
    listener_extra = """    protocol: https
    tls:
      certificates:
        - { cert: api.pem, key: api.key }"""
    gw = gateway(config(ws.address, upstream().address, listener_extra=listener_extra))
    ctx = certs.client_context()
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    with connect(f"wss://api.example.com:{gw.port}/ws", sock=sock, ssl=ctx, server_hostname="api.example.com") as c:
        c.send("secure")
        assert c.recv(timeout=5) == "secure"
        big = os.urandom(512 * 1024)
        c.send(big)
        assert c.recv(timeout=10) == big
    seen = {k.lower(): v for k, v in ws.headers[-1].items()}
    assert seen["x-forwarded-proto"] == "https"
