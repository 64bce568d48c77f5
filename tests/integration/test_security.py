"""Hostile input against the running binary (SECURITY.md). After each, the process is still
alive with the same PID, and a recording upstream proves what was or was not forwarded."""
import socket
import time

import pytest
import requests

from conftest import raw, simple_config, status_of

LIMITS = """    limits:
      max_request_header_bytes: 4KiB
      max_request_uri_bytes: 1KiB
      max_request_headers: 20
      max_request_body_bytes: 1MiB
      request_header_timeout: 500ms
      request_body_timeout: 500ms
      idle_timeout: 1s"""


@pytest.fixture
def setup(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, listener_extra=LIMITS))
    pid = gw.proc.pid
    yield gw, up
    assert gw.alive() and gw.proc.pid == pid, "the gateway died on hostile input"
    assert requests.get(gw.url("/still-alive")).status_code == 200


def closes_after(port, data, timeout=3.0):
    """The full answer, and whether the gateway closed the connection after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        closed = False
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                piece = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:  # closed with unread input still queued: RST
                closed = True
                break
            if not piece:
                closed = True
                break
            out += piece
        return out, closed


CASES = [
    ("missing host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("te on http/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ("cl and te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("two content-lengths", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
    ("bad content-length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("bare lf", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ("nul in header", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    ("backslash path", b"GET /a\\..\\admin HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("encoded nul", b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad escape", b"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("non-ascii path", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("fragment", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
    ("trace", b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    ("long uri", b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ("many headers", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(40)) + b"\r\n", 431),
    ("big header", b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 6000 + b"\r\n\r\n", 431),
    ("body over limit", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 50, 400),
    ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
]


@pytest.mark.parametrize("name,data,expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_request_gets_clear_answer_and_close(setup, name, data, expected):
    gw, up = setup
    before = len(up.requests)
    answer, closed = closes_after(gw.port, data)
    assert status_of(answer) == expected, answer[:300]
    assert closed, "the connection must be closed after a framing error"
    assert len(up.requests) == before, "nothing of a rejected request may reach the upstream"
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert b'"error"' in body and b'"request_id"' in body


def test_chunked_body_over_limit(setup):
    gw, up = setup
    chunk = b"%x\r\n%s\r\n" % (100000, b"b" * 100000)
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 12 + b"0\r\n\r\n"
    try:
        answer, closed = closes_after(gw.port, data)
    except (BrokenPipeError, ConnectionResetError):
        return  # closed while we were still sending: acceptable
    assert status_of(answer) in (413, None) and (closed or answer == b"")


@pytest.mark.parametrize("stalled", [
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # slow-loris: the head never ends
    b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789",  # the body stalls
], ids=["slow-head", "slow-body"])
def test_stalled_request_gets_408(setup, stalled):
    gw, _ = setup
    start = time.time()
    answer, closed = closes_after(gw.port, stalled, timeout=5)
    assert status_of(answer) == 408 and b"request_timeout" in answer and closed
    assert 0.3 < time.time() - start < 3


def test_idle_keep_alive_connection_closed(setup):
    gw, _ = setup
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        s.recv(65536)
        start = time.time()
        assert s.recv(100) == b""
        assert 0.5 < time.time() - start < 3


def test_upgrade_is_stripped(setup):
    gw, up = setup
    answer = raw(gw.port, b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                          b"HTTP2-Settings: AAA\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 200
    assert "upgrade" not in up.last.header_names() and "http2-settings" not in up.last.header_names()


def test_dot_segments_cannot_escape(setup):
    gw, up = setup
    raw(gw.port, b"GET /a/b/../../../../etc/passwd HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert up.last.target == "/etc/passwd"
    raw(gw.port, b"GET /a/%2e%2e/b%2Fc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert up.last.target == "/b%2Fc"


def test_many_hostile_connections_do_not_disturb_others(setup):
    gw, up = setup
    socks = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"GET / HTTP/1.1\r\nHo")
        socks.append(s)
    with requests.Session() as session:
        for _ in range(20):
            assert session.get(gw.url("/ok")).status_code == 200
    for s in socks:
        s.close()


def test_max_connections(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, listener_extra="    limits: { max_connections: 3 }"))
    held = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", gw.port), timeout=3)
    try:
        extra.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert extra.recv(100) == b""
    except ConnectionResetError:
        pass
    for s in held:
        s.close()
    time.sleep(0.3)
    assert requests.get(gw.url("/")).status_code == 200


def test_upstream_errors(gateway, upstream):
    def handler(req, wfile):
        if req.target == "/garbage":
            wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
        elif req.target == "/reset":
            pass  # close without an answer
        elif req.target == "/slow":
            time.sleep(1.5)
            wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        wfile.flush()
        return None

    up = upstream(handler)
    dead_port = socket.socket()
    dead_port.bind(("127.0.0.1", 0))
    dead = dead_port.getsockname()[1]
    dead_port.close()
    config = f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - {{ name: dead, match: {{ path_prefix: /dead }}, backend: dead }}
      - {{ name: slow, match: {{ path: /slow }}, backend: up, timeout: 300ms }}
      - {{ name: rest, backend: up }}
backends:
  up: {{ endpoints: [{up.address}] }}
  dead: {{ endpoints: ["127.0.0.1:{dead}"], connect_timeout: 500ms }}
"""
    gw = gateway(config)
    r = requests.get(gw.url("/dead"))
    assert r.status_code == 502 and r.json()["error"] == "bad_gateway"
    r = requests.get(gw.url("/garbage"))
    assert r.status_code == 502
    r = requests.get(gw.url("/reset"))
    assert r.status_code == 502
    start = time.time()
    r = requests.get(gw.url("/slow"))
    assert r.status_code == 504 and r.json()["error"] == "gateway_timeout"
    assert time.time() - start < 1.2
    metrics = requests.get(gw.admin("/metrics")).text
    assert 'sluice_upstream_connect_failures_total{backend="dead"} 1' in metrics
    assert 'sluice_http_requests_total{listener="public",route="slow",backend="up",code="504"} 1' in metrics
    assert gw.alive()


def test_upstream_with_both_content_length_and_chunked_cannot_desync_the_client(gateway, upstream):
    """An upstream that sends Content-Length beside chunked coding: the chunked body wins, the
    client never sees the stale Content-Length, and the next request on the same client
    connection still gets its own answer."""
    def handler(req, wfile):
        if req.target == "/both":
            wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"
                        b"a\r\n0123456789\r\n0\r\n\r\n")
        else:
            wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext")
        wfile.flush()
        return None

    up = upstream(handler)
    gw = gateway(simple_config(up.address))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(b"GET /both HTTP/1.1\r\nHost: a\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n")
        out = b""
        deadline = time.time() + 5
        while out.count(b"HTTP/1.1 200") < 2 or not out.endswith(b"next"):
            if time.time() > deadline:
                break
            piece = s.recv(65536)
            if not piece:
                break
            out += piece
    first, _, second = out.partition(b"HTTP/1.1 200 OK\r\n")[2].partition(b"HTTP/1.1 200")
    assert b"content-length: 3" not in first.lower(), out
    assert b"transfer-encoding: chunked" in first.lower(), out
    assert b"0123456789" in first, out
    assert out.endswith(b"next"), out


def test_garbage_after_a_pipelined_request_does_not_cut_its_response(gateway, upstream):
    def handler(req):
        time.sleep(0.2)  # the garbage arrives while this response is still owed
        return 200, [], b"complete-body"

    up = upstream(handler)
    gw = gateway(simple_config(up.address))
    answer, closed = closes_after(gw.port, b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n")
    text = answer.decode("latin-1")
    assert text.startswith("HTTP/1.1 200") and "complete-body" in text
    assert "HTTP/1.1 400" in text.split("complete-body", 1)[1]
    assert closed and len(up.requests) == 1
