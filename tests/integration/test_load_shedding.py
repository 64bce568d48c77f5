"""max_concurrent_requests and queue against a real slow upstream: at most N in flight, FIFO
waiting up to the timeout, 503 with Retry-After beyond the queue, a client that leaves frees
its place, nothing admitted is lost; metrics and /backends."""
import concurrent.futures
import threading
import time

import requests

from test_rate_limit import metric


class SlowUpstream:
    def __init__(self, upstream, delay):
        self.delay = delay
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.up = upstream(lambda req: self.handle(req))

    def handle(self, req):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        return 200, [], b"ok"


def shed_config(up, limit=2, size=2, timeout="500ms"):
    return f"""
version: 1
runtime: {{ event_loops: 2 }}
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - name: api
        backend: svc
backends:
  svc:
    endpoints: [{up.address}]
    max_concurrent_requests: {limit}
    queue: {{ size: {size}, timeout: {timeout} }}
"""


def fire(gw, n, stagger=0.05, prefix=""):
    def one(i):
        time.sleep(i * stagger)
        t0 = time.time()
        r = requests.get(gw.url(f"{prefix}/{i}"), timeout=10)
        return r.status_code, time.time() - t0, r.headers.get("retry-after")

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_queue_serves_in_order_and_sheds_beyond_it(gateway, upstream):
    slow = SlowUpstream(upstream, 0.3)
    gw = gateway(shed_config(slow.up))
    results = fire(gw, 6)
    codes = [c for c, _, _ in results]
    assert codes[:4] == [200] * 4, results  # 2 in flight, 2 queued and served (0.3 s < 0.5 s)
    assert codes[4:] == [503, 503], results  # beyond the queue: at once
    assert all(took < 0.2 for _, took, _ in results[4:])
    assert all(ra == "1" for _, _, ra in results[4:])
    assert slow.peak <= 2
    assert len(slow.up.requests) == 4
    assert metric(gw, "sluice_overload_rejections_total", backend="svc") == 2


def test_queue_timeout_is_503_and_admitted_requests_are_never_lost(gateway, upstream):
    slow = SlowUpstream(upstream, 1.0)
    gw = gateway(shed_config(slow.up))
    results = fire(gw, 4, stagger=0.02)
    codes = sorted(c for c, _, _ in results)
    assert codes == [200, 200, 503, 503], results
    for code, took, _ in results:
        if code == 503:
            assert 0.4 < took < 0.9, took  # the queue's 500 ms
    assert slow.peak <= 2 and len(slow.up.requests) == 2
    backends = requests.get(gw.admin("/backends")).json()["backends"][0]
    assert backends["queued"] == 0


def test_a_client_that_leaves_frees_its_place(gateway, upstream):
    slow = SlowUpstream(upstream, 1.0)
    gw = gateway(shed_config(slow.up, size=1, timeout="3s"))
    out = {}

    def call(name, delay, timeout):
        time.sleep(delay)
        try:
            out[name] = requests.get(gw.url("/" + name), timeout=timeout).status_code
        except requests.RequestException:
            out[name] = "gone"

    threads = [threading.Thread(target=call, args=a) for a in
               [("a", 0, 5), ("b", 0.02, 5), ("c", 0.1, 0.3), ("d", 0.6, 5)]]
    for t in threads:
        t.start()
    time.sleep(0.45)
    assert requests.get(gw.admin("/backends")).json()["backends"][0]["queued"] == 0, "c left; its place is free"
    for t in threads:
        t.join()
    assert out == {"a": 200, "b": 200, "c": "gone", "d": 200}, out
    assert "/c" not in [r.target for r in slow.up.requests]


def test_resilience_example(gateway, upstream):
    import os
    from conftest import ROOT, free_port
    slow = SlowUpstream(upstream, 0.2)
    shadow = upstream()
    dead = f"127.0.0.1:{free_port()}"
    text = open(os.path.join(ROOT, "examples", "resilience.yaml")).read()
    text = (text.replace("127.0.0.1:8080", "127.0.0.1:{{PORT}}").replace("127.0.0.1:9000", slow.up.address)
            .replace("127.0.0.1:9001", dead).replace("127.0.0.1:9100", shadow.address)
            .replace("version: 1\n", "version: 1\nadmin: { listen: 127.0.0.1:{{ADMIN_PORT}} }\n", 1)
            .replace("max_concurrent_requests: 200", "max_concurrent_requests: 2").replace("size: 50", "size: 1"))
    gw = gateway(text)
    # The dead endpoint's connect failures are retried on the live one (outside the budget).
    codes = sorted(c for c, _, _ in fire(gw, 4, stagger=0.02, prefix="/orders"))
    assert codes == [200, 200, 200, 503]  # 2 in flight, 1 queued (0.2 s < 500 ms), 1 shed
    b = requests.get(gw.admin("/backends")).json()["backends"][0]
    assert b["circuit"] == "closed" and b["queued"] == 0
    # /chaos has no retries: the dead endpoint's 502s reach the client until outlier detection
    # ejects it (5 in a row); the fault aborts are 503s.
    codes = [requests.get(gw.url("/chaos")).status_code for _ in range(30)]
    assert set(codes) <= {200, 502, 503} and codes.count(502) <= 5 and 200 in codes
    endpoints = requests.get(gw.admin("/backends")).json()["backends"][0]["endpoints"]
    assert [e["ejected"] for e in endpoints if e["address"] == dead] == [True]
