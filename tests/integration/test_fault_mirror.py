"""Fault injection (delay on the loop without holding it, abort before the upstream is touched),
mirroring (a copy with its body, its answer dropped, its failures and slowness never felt by
the client, counted), and stream_idle_timeout for server-sent events."""
import concurrent.futures
import json
import threading
import time

import requests

from conftest import free_port, raw
from test_rate_limit import metric, wait_until


def config(up, route_extra, extra_routes="", backends_extra="", loops=1):
    return f"""
version: 1
runtime: {{ event_loops: {loops} }}
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
observability:
  access_log: {{ format: json, output: stdout }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
{extra_routes}
      - name: api
        match: {{ path_prefix: / }}
{route_extra}
        backend: svc
backends:
  svc:
    endpoints: [{up.address}]
{backends_extra}
"""


def test_fault_abort_answers_without_touching_the_upstream(gateway, upstream):
    up = upstream()
    gw = gateway(config(up, "        fault: { abort: { percent: 100, status: 503 } }"))
    r = requests.get(gw.url("/"))
    assert r.status_code == 503 and r.json()["error"] == "fault_injected"
    assert up.requests == []
    time.sleep(0.2)
    line = [json.loads(l) for l in gw.stdout_text().splitlines() if l.startswith("{")][-1]
    assert line["status"] == 503 and line["error"] == "fault_injected"


def test_fault_abort_share_is_about_its_percent(gateway, upstream):
    up = upstream()
    gw = gateway(config(up, "        fault: { abort: { percent: 30, status: 500 } }"))
    s = requests.Session()
    codes = [s.get(gw.url("/")).status_code for _ in range(300)]
    aborted = codes.count(500)
    assert 50 <= aborted <= 130, aborted
    assert len(up.requests) == 300 - aborted


def test_fault_delay_suspends_without_holding_the_loop(gateway, upstream):
    up = upstream()
    extra = """      - name: fast
        match: { path_prefix: /fast }
        backend: svc
"""
    gw = gateway(config(up, "        fault: { delay: { percent: 100, duration: 600ms } }", extra_routes=extra))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        started = time.time()
        slow = [pool.submit(requests.get, gw.url("/slow")) for _ in range(6)]
        time.sleep(0.1)
        t = time.time()
        assert requests.get(gw.url("/fast")).status_code == 200
        fast_took = time.time() - t
        results = [f.result() for f in slow]
        took = time.time() - started
    assert all(r.status_code == 200 for r in results)
    assert fast_took < 0.3, fast_took  # one event loop, six delayed requests: it still answers
    assert 0.6 <= took < 1.5, took  # the six delays overlap


def test_mirror_sends_a_copy_with_its_body_and_drops_the_answer(gateway, upstream):
    main = upstream(lambda req: (200, [], b"main"))
    shadow = upstream(lambda req: (500, [], b"shadow"))
    backends = f"  shadow:\n    endpoints: [{shadow.address}]"
    gw = gateway(config(main, "        mirror: { backend: shadow, percent: 100 }", backends_extra=backends))
    r = requests.post(gw.url("/orders"), data=b"order-body")
    assert r.status_code == 200 and r.text == "main"
    assert wait_until(lambda: len(shadow.requests) == 1, 3)
    copy = shadow.requests[0]
    assert copy.method == "POST" and copy.target == "/orders" and copy.body == b"order-body"
    assert copy.header("x-request-id") == r.headers["x-request-id"]
    assert metric(gw, "sluice_mirror_requests_total", route="api", backend="shadow", result="sent") == 1
    # A chunked body is mirrored too.
    r = requests.post(gw.url("/c"), data=iter([b"ab", b"cd"]))
    assert r.status_code == 200
    assert wait_until(lambda: len(shadow.requests) == 2, 3)
    assert shadow.requests[1].body == b"abcd"
    # Only the client's request is logged.
    time.sleep(0.2)
    assert len([l for l in gw.stdout_text().splitlines() if l.startswith("{")]) == 2


def test_a_slow_or_dead_mirror_is_never_felt(gateway, upstream):
    main = upstream()
    release = threading.Event()

    def stall(req, wfile):
        release.wait(5)
        return None

    slow = upstream(stall)
    dead = f"127.0.0.1:{free_port()}"
    backends = f"  shadow:\n    endpoints: [{slow.address}]\n  gone:\n    endpoints: [{dead}]"
    extra = """      - name: gone
        match: { path_prefix: /gone }
        mirror: { backend: gone }
        backend: svc
"""
    gw = gateway(config(main, "        timeout: 1s\n        mirror: { backend: shadow, percent: 100 }",
                        extra_routes=extra, backends_extra=backends))
    try:
        s = requests.Session()
        started = time.time()
        for _ in range(10):
            assert s.get(gw.url("/")).status_code == 200
            assert s.get(gw.url("/gone")).status_code == 200
        assert time.time() - started < 2
        assert wait_until(lambda: metric(gw, "sluice_mirror_requests_total", route="gone", backend="gone", result="failed") == 10, 3)
        # The stalled copies time out after the route's timeout and count as failed.
        assert wait_until(lambda: metric(gw, "sluice_mirror_requests_total", route="api", backend="shadow", result="failed") == 10, 4)
    finally:
        release.set()


def test_mirror_percent_and_bodies_beyond_the_replay_buffer(gateway, upstream):
    main = upstream()
    shadow = upstream()
    backends = f"  shadow:\n    endpoints: [{shadow.address}]"
    gw = gateway(config(main, "        mirror: { backend: shadow, percent: 25 }", backends_extra=backends))
    s = requests.Session()
    for _ in range(200):
        assert s.get(gw.url("/")).status_code == 200
    assert wait_until(lambda: metric(gw, "sluice_mirror_requests_total", route="api", backend="shadow", result="sent") > 0, 2)
    sent = metric(gw, "sluice_mirror_requests_total", route="api", backend="shadow", result="sent")
    assert 25 <= sent <= 80, sent
    gw2 = gateway(config(main, "        mirror: { backend: shadow }", backends_extra=backends))
    assert requests.post(gw2.url("/"), data=b"z" * (100 * 1024)).status_code == 200
    assert wait_until(
        lambda: metric(gw2, "sluice_mirror_requests_total", route="api", backend="shadow", result="dropped") == 1, 2)


def sse_upstream(upstream, events, gap, stall_after=None):
    release = threading.Event()

    def handler(req, wfile):
        wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        wfile.flush()
        for i in range(events):
            if stall_after is not None and i == stall_after:
                release.wait(5)
                return None
            data = f"data: event {i}\n\n".encode()
            wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            wfile.flush()
            time.sleep(gap)
        wfile.write(b"0\r\n\r\n")
        wfile.flush()
        return None

    return upstream(handler), release


def test_sse_stream_outlives_the_route_timeout_while_it_is_not_idle(gateway, upstream):
    up, _ = sse_upstream(upstream, events=8, gap=0.2)
    gw = gateway(config(up, "        timeout: 500ms\n        stream_idle_timeout: 1s"))
    started = time.time()
    r = requests.get(gw.url("/events"), stream=True)
    body = b"".join(r.iter_content(None))
    assert time.time() - started > 1.4
    assert body.count(b"data: event") == 8


def test_sse_stream_idle_longer_than_stream_idle_timeout_is_closed(gateway, upstream):
    up, release = sse_upstream(upstream, events=5, gap=0.05, stall_after=2)
    gw = gateway(config(up, "        timeout: 10s\n        stream_idle_timeout: 400ms"))
    try:
        started = time.time()
        out = raw(gw.port, b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n", timeout=5)
        took = time.time() - started
        assert out.count(b"data: event") == 2
        assert not out.endswith(b"0\r\n\r\n")  # cut, not ended
        assert 0.4 <= took < 2, took
    finally:
        release.set()
