"""Retries against real upstreams that refuse, reset, stall and answer 503: to another endpoint,
only when safe (idempotent method, body kept, nothing sent to the client yet), within the
retry budget; per-try and route timeouts; sluice_retries_total and the access log's retries."""
import concurrent.futures
import json
import socket
import threading
import time

import requests

from conftest import free_port, raw, status_of
from test_rate_limit import metric, wait_until


def retry_config(endpoints, retries, route_extra="", backend_extra=""):
    eps = ", ".join(endpoints)
    return f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
observability:
  access_log: {{ format: json, output: stdout }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - name: api
        retries: {retries}
{route_extra}
        backend: svc
backends:
  svc:
    endpoints: [{eps}]
{backend_extra}
"""


def dead_address():
    return f"127.0.0.1:{free_port()}"


def log_lines(gw, n, timeout=3):
    wait_until(lambda: len([l for l in gw.stdout_text().splitlines() if l.startswith("{")]) >= n, timeout)
    return [json.loads(l) for l in gw.stdout_text().splitlines() if l.startswith("{")]


def test_connect_failure_is_retried_on_another_endpoint(gateway, upstream):
    up = upstream()
    gw = gateway(retry_config([dead_address(), up.address], "{ attempts: 2 }"))
    statuses = [requests.get(gw.url(f"/r{i}")).status_code for i in range(10)]
    assert statuses == [200] * 10
    assert len(up.requests) == 10
    retried = metric(gw, "sluice_retries_total", route="api", backend="svc")
    assert 3 <= retried <= 7, retried  # round robin sends about half to the dead endpoint first
    lines = log_lines(gw, 10)
    assert sum(l["retries"] for l in lines) == retried
    assert {l["retries"] for l in lines} == {0, 1}


def test_without_retries_the_dead_endpoint_fails_requests(gateway, upstream):
    up = upstream()
    config = retry_config([dead_address(), up.address], "{ attempts: 1 }")
    gw = gateway(config)
    statuses = [requests.get(gw.url("/")).status_code for _ in range(6)]
    assert statuses.count(502) == 3 and statuses.count(200) == 3


def test_listed_status_is_retried_and_the_last_answer_passes_through(gateway, upstream):
    bad = upstream(lambda req: (503, [], b"busy"))
    good = upstream()
    gw = gateway(retry_config([bad.address, good.address], '{ attempts: 2, on: ["503"] }'))
    assert [requests.get(gw.url("/")).status_code for _ in range(8)] == [200] * 8
    assert len(good.requests) == 8 and len(bad.requests) == 4
    # Both endpoints answer 503: after the last try the client sees the upstream's own 503.
    gw2 = gateway(retry_config([bad.address, bad.address], '{ attempts: 3, on: ["5xx"] }'))
    before = len(bad.requests)
    r = requests.get(gw2.url("/"))
    assert r.status_code == 503 and r.text == "busy"
    assert len(bad.requests) - before == 3


def resetting(counter):
    """A raw upstream that closes the connection without answering."""
    def handler(req, wfile):
        counter.append(req)
        return None
    return handler


def test_reset_is_retried_for_idempotent_methods_only(gateway, upstream):
    resets = []
    dead = upstream(resetting(resets))
    good = upstream(lambda req: (200, [], req.body or b"ok"))
    gw = gateway(retry_config([dead.address, good.address], "{ attempts: 2, on: [reset] }"))
    # GET and PUT are idempotent: retried.
    for _ in range(4):
        assert requests.get(gw.url("/")).status_code == 200
        assert requests.put(gw.url("/"), data=b"put-body").text == "put-body"
    assert len(resets) >= 3
    # POST may have reached the upstream: not retried (as nginx since 1.9.13).
    codes = [requests.post(gw.url("/"), data=b"x").status_code for _ in range(4)]
    assert codes.count(502) == 2 and codes.count(200) == 2


def test_post_is_retried_with_its_body_when_the_route_allows(gateway, upstream):
    resets = []
    dead = upstream(resetting(resets))
    good = upstream(lambda req: (200, [], req.body))
    gw = gateway(retry_config([dead.address, good.address], "{ attempts: 2, on: [reset], retry_non_idempotent: true }"))
    body = b"0123456789" * 3000  # 30 KB, within the 64 KiB replay buffer
    for _ in range(4):
        r = requests.post(gw.url("/"), data=body)
        assert r.status_code == 200 and r.content == body
    assert len(resets) == 2 and all(len(r.body) == len(body) for r in resets)
    # A chunked body is replayed too.
    def gen():
        for _ in range(3):
            yield b"abc" * 100
    for _ in range(2):
        r = requests.post(gw.url("/"), data=gen())
        assert r.status_code == 200 and r.content == b"abc" * 300


def test_body_larger_than_the_replay_buffer_is_not_retried(gateway, upstream):
    resets = []
    dead = upstream(resetting(resets))
    good = upstream(lambda req: (200, [], b"ok"))
    gw = gateway(retry_config(
        [dead.address, good.address], "{ attempts: 2, on: [reset], retry_non_idempotent: true, replay_buffer: 1KiB }"))
    codes = [requests.post(gw.url("/"), data=b"y" * 4096).status_code for _ in range(4)]
    assert codes.count(502) == 2 and codes.count(200) == 2
    # A small body still is.
    assert [requests.post(gw.url("/"), data=b"y" * 100).status_code for _ in range(4)] == [200] * 4


def test_nothing_is_retried_after_the_response_started(gateway, upstream):
    hits = []

    def half(req, wfile):
        hits.append(1)
        wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        wfile.flush()
        return None

    bad = upstream(half)
    gw = gateway(retry_config([bad.address, bad.address], "{ attempts: 3, on: [reset, connect-failure] }"))
    port = gw.port
    out = raw(port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"partial")  # cut short, not retried
    assert len(hits) == 1


def test_per_try_timeout_moves_on_and_the_stalled_connection_is_closed(gateway, upstream):
    release = threading.Event()
    stalled = []

    def stall(req, wfile):
        stalled.append(req)
        release.wait(5)
        return None

    slow = upstream(stall)
    fast = upstream()
    gw = gateway(retry_config(
        [slow.address, fast.address], "{ attempts: 2, on: [timeout], per_try_timeout: 200ms }", route_extra="        timeout: 3s"))
    try:
        for _ in range(4):
            started = time.time()
            assert requests.get(gw.url("/")).status_code == 200
            assert time.time() - started < 1.5
        assert len(stalled) == 2
        lines = log_lines(gw, 4)
        assert sorted(l["retries"] for l in lines) == [0, 0, 1, 1]
        # The route's timeout bounds all tries together: 504 when every endpoint stalls.
        gw2 = gateway(retry_config(
            [slow.address, slow.address], "{ attempts: 5, on: [timeout], per_try_timeout: 300ms }",
            route_extra="        timeout: 700ms"))
        started = time.time()
        r = requests.get(gw2.url("/"))
        took = time.time() - started
        assert r.status_code == 504 and r.json()["error"] == "gateway_timeout"
        assert 0.6 < took < 1.5, took
    finally:
        release.set()


def test_timeout_is_not_retried_unless_listed(gateway, upstream):
    release = threading.Event()

    def stall(req, wfile):
        release.wait(5)
        return None

    slow = upstream(stall)
    fast = upstream()
    gw = gateway(retry_config(
        [slow.address, fast.address], "{ attempts: 2, per_try_timeout: 200ms }", route_extra="        timeout: 3s"))
    try:
        codes = sorted(requests.get(gw.url("/")).status_code for _ in range(2))
        assert codes == [200, 504]
    finally:
        release.set()


def test_the_retry_budget_caps_the_retry_storm(gateway, upstream):
    def busy(req):
        time.sleep(0.2)
        return (503, [], b"busy")

    def run(budget):
        up = upstream(busy)
        gw = gateway(retry_config(
            [up.address], f'{{ attempts: 3, on: ["503"], budget: {budget}, backoff: {{ base: 1ms, max: 2ms }} }}'))
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(lambda i: requests.get(gw.url(f"/{i}")).status_code, range(40)))
        assert codes == [503] * 40
        return len(up.requests)

    unbounded = run("100%")
    budgeted = run("20%")
    assert unbounded >= 110, unbounded  # attempts: 3 triples the load on a failing upstream
    assert 40 < budgeted <= 60, budgeted  # a 20 % budget: retries at most ~20 % of the load


def test_retries_config_errors(tmp_path):
    import subprocess
    from conftest import BIN
    path = tmp_path / "bad.yaml"
    path.write_text("""
version: 1
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - name: api
        retries: { attempts: 0, on: [connect-failure, "99", sometimes], budget: 20 }
        backend: svc
backends:
  svc: { endpoints: [127.0.0.1:9000] }
""")
    out = subprocess.run([BIN, "validate", "--config", str(path)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "retries.attempts" in out.stderr
    assert "'99' is not connect-failure" in out.stderr and "'sometimes'" in out.stderr
    assert "retries.budget must be a percentage" in out.stderr


def test_connect_timeout_is_retried_and_a_late_connection_is_not_misdelivered(gateway, upstream):
    # A loopback listener whose accept queue is full: connects to it hang (SYNs dropped) until
    # it starts accepting.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(hole.getsockname())
        fillers.append(c)
    time.sleep(0.1)
    good = upstream()
    address = f"127.0.0.1:{hole.getsockname()[1]}"
    gw = gateway(retry_config([address, good.address], "{ attempts: 2 }", backend_extra="    connect_timeout: 200ms"))
    try:
        s = requests.Session()
        for i in range(4):
            assert s.get(gw.url(f"/{i}")).status_code == 200
        # The hole starts accepting: the connects that timed out now complete; their queue
        # entries belong to requests that moved on, so nothing is sent on them.
        hole.setblocking(False)
        end = time.time() + 1
        accepted = []
        while time.time() < end:
            try:
                conn, _ = hole.accept()
                accepted.append(conn)
            except BlockingIOError:
                time.sleep(0.02)
        # Nothing was written on them (the requests are done), then the endpoint goes away:
        # the pooled ones are found closed and the next requests still get their 200.
        for conn in accepted:
            conn.setblocking(False)
            try:
                assert conn.recv(100) == b"", "a late connection carried a request"
            except BlockingIOError:
                pass
            conn.close()
        hole.close()
        for i in range(4):
            assert s.get(gw.url(f"/after{i}"), timeout=5).status_code == 200
        assert len(good.requests) >= 8
        assert gw.alive()
    finally:
        hole.close()
        for c in fillers:
            c.close()
