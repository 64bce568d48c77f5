"""The upstream pool under bursts: requests that find no idle connection wait in the
endpoint's queue for the first free connection, while a bounded number of connects are in
flight (`ConnectPolicy`). Real binary, real sockets, real upstreams."""
import socket
import threading
import time

import requests

from conftest import simple_config


def burst(url, n, timeout=10):
    """`n` requests at once, each on its own client connection: (statuses, seconds taken)."""
    statuses = [None] * n
    go = threading.Event()

    def one(i):
        go.wait()
        try:
            statuses[i] = requests.get(url, timeout=timeout).status_code
        except requests.RequestException as e:
            statuses[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start = time.time()
    go.set()
    for t in threads:
        t.join(timeout + 5)
    return statuses, time.time() - start


def test_burst_to_a_slow_upstream_gets_a_connection_each_in_parallel(gateway, upstream):
    """The connect cap must not serialize a slow upstream: 40 requests held 400 ms each by the
    upstream all finish together (one after another they would take 16 s, two at a time 8 s),
    never on more connections than requests at once."""
    def handler(req):
        time.sleep(0.4)
        return 200, [], b"slow ok"

    up = upstream(handler)
    gw = gateway(simple_config(up.address, top_extra="runtime: { event_loops: 1 }\n"))
    assert requests.get(gw.url("/warm")).status_code == 200  # one pooled connection to start from
    statuses, took = burst(gw.url("/b"), 40)
    assert statuses == [200] * 40, statuses
    assert took < 2.0, f"the burst took {took:.2f} s"
    first = up.connections
    assert 2 <= first <= 41, first
    # Afterwards they are all pooled: the next burst opens only what it needs beyond them.
    statuses, took = burst(gw.url("/b"), 40)
    assert statuses == [200] * 40 and took < 2.0, (statuses, took)
    assert up.connections <= 41, up.connections


def test_burst_to_an_unreachable_endpoint_fails_at_once(gateway, upstream):
    """Nothing listens: the first refused connect fails every waiting request that no connect
    in flight covers, so a burst gets its 502s at once, not two at a time."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    gw = gateway(simple_config(f"127.0.0.1:{dead}", top_extra="runtime: { event_loops: 1 }\n"))
    statuses, took = burst(gw.url("/d"), 30)
    assert statuses == [502] * 30, statuses
    assert took < 3.0, f"took {took:.2f} s"
    metrics = requests.get(gw.admin("/metrics")).text
    line = [l for l in metrics.splitlines() if l.startswith('sluice_upstream_connect_failures_total{backend="svc"}')]
    assert line and 1 <= int(line[0].split()[-1]) <= 30, line
    assert gw.alive()


def test_wait_for_a_connection_is_bounded_by_connect_timeout(gateway, upstream):
    """An endpoint that accepts no connections (its accept queue is full, so SYNs are dropped
    and connects hang): every request of a burst is answered 502 within about one connect
    timeout, whether its own connect was in flight or it waited in the queue behind the cap."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    port = hole.getsockname()[1]
    fillers = []
    try:
        # Fill the accept queue so later SYNs are dropped.
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        time.sleep(0.2)
        config = simple_config(f"127.0.0.1:{port}", top_extra="runtime: { event_loops: 1 }\n")
        config = config.replace(f"endpoints: [127.0.0.1:{port}]", f"endpoints: [127.0.0.1:{port}]\n    connect_timeout: 400ms")
        assert "connect_timeout: 400ms" in config, config
        gw = gateway(config)
        statuses, took = burst(gw.url("/h"), 40)
        assert statuses == [502] * 40, statuses
        # Two connects at a time, each waiting out its 400 ms, would take 8 s.
        assert took < 2.0, f"took {took:.2f} s"
        r = requests.get(gw.url("/h"))
        assert r.status_code == 502 and "timed out connecting" in r.json()["message"], r.text
        assert gw.alive()
    finally:
        for c in fillers:
            c.close()
        hole.close()


def test_client_leaving_while_its_request_waits(gateway, upstream):
    """Clients that give up while their requests are queued or in flight: connections in use
    close with them, those opened for requests that left are pooled; nothing is lost or
    counted twice, and later requests are served."""
    def handler(req):
        time.sleep(0.3)
        return 200, [], b"ok"

    up = upstream(handler)
    gw = gateway(simple_config(up.address, top_extra="runtime: { event_loops: 1 }\n"))
    socks = []
    for _ in range(12):
        c = socket.create_connection(("127.0.0.1", gw.port))
        c.sendall(b"GET /leave HTTP/1.1\r\nHost: a\r\n\r\n")
        socks.append(c)
    time.sleep(0.05)
    for c in socks:
        c.close()
    time.sleep(0.6)
    statuses, _ = burst(gw.url("/after"), 12)
    assert statuses == [200] * 12, statuses
    assert up.connections <= 24, up.connections
    metrics = requests.get(gw.admin("/metrics")).text
    idle = [l for l in metrics.splitlines() if l.startswith('sluice_upstream_connections{backend="svc",state="idle"}')]
    assert idle and 1 <= float(idle[0].split()[-1]) <= 12, idle
    active = [l for l in metrics.splitlines() if l.startswith('sluice_upstream_connections{backend="svc",state="active"}')]
    assert active and float(active[0].split()[-1]) == 0, active
    assert gw.alive()
