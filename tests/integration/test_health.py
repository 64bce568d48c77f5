"""Active health checks and passive outlier detection against real upstreams: a failing
endpoint leaves the rotation and comes back; one prober per backend for the process; 503 when no
endpoint is left; state survives a reload; /backends and sluice_backend_healthy_endpoints."""
import json
import threading
import time

import requests

from conftest import free_port
from test_rate_limit import metric, wait_until


def health_config(endpoints, backend_extra, loops=2, route_extra=""):
    eps = ", ".join(endpoints)
    return f"""
version: 1
runtime: {{ event_loops: {loops} }}
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
observability:
  access_log: {{ format: json, output: none }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - name: api
{route_extra}
        backend: svc
backends:
  svc:
    endpoints: [{eps}]
{backend_extra}
"""


class Switchable:
    """An upstream whose /healthz and traffic answers can be switched."""

    def __init__(self, upstream):
        self.health = 200
        self.status = 200
        self.probes = []
        self.traffic = []

        def handler(req):
            if req.target.startswith("/healthz"):
                self.probes.append((time.time(), req.header("host")))
                return (self.health, [], b"hc")
            self.traffic.append(req)
            return (self.status, [], b"ok")

        self.up = upstream(handler)
        self.address = self.up.address


def endpoints_state(gw):
    backend = requests.get(gw.admin("/backends")).json()["backends"][0]
    return {e["address"]: (e["healthy"], e["ejected"]) for e in backend["endpoints"]}, backend


HC = "    health_check: { path: /healthz, interval: 200ms, timeout: 150ms, healthy_threshold: 2, unhealthy_threshold: 2, jitter: 20ms }"


def test_unhealthy_endpoint_leaves_the_rotation_and_comes_back(gateway, upstream):
    a, b = Switchable(upstream), Switchable(upstream)
    gw = gateway(health_config([a.address, b.address], HC))
    assert wait_until(lambda: len(a.probes) >= 2 and len(b.probes) >= 2, 5)
    assert metric(gw, "sluice_backend_healthy_endpoints", backend="svc") == 2
    a.health = 503
    assert wait_until(lambda: endpoints_state(gw)[0][a.address] == (False, False), 5)
    assert metric(gw, "sluice_backend_healthy_endpoints", backend="svc") == 1
    assert endpoints_state(gw)[1]["healthy_endpoints"] == 1
    before = len(a.traffic)
    assert [requests.get(gw.url("/")).status_code for _ in range(10)] == [200] * 10
    assert len(a.traffic) == before, "an unhealthy endpoint gets no traffic"
    # It recovers after healthy_threshold good probes.
    a.health = 200
    assert wait_until(lambda: endpoints_state(gw)[0][a.address] == (True, False), 5)
    assert metric(gw, "sluice_backend_healthy_endpoints", backend="svc") == 2
    for _ in range(10):
        requests.get(gw.url("/"))
    assert len(a.traffic) >= before + 4
    assert "endpoint unhealthy" in gw.stderr_text() and "endpoint healthy" in gw.stderr_text()


def test_no_healthy_endpoint_is_503_with_retry_after(gateway, upstream):
    a = Switchable(upstream)
    a.health = 500
    gw = gateway(health_config([a.address], HC))
    assert wait_until(lambda: endpoints_state(gw)[0][a.address][0] is False, 5)
    r = requests.get(gw.url("/"))
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert "no healthy endpoint" in r.json()["message"] and r.headers["retry-after"] == "1"
    assert a.traffic == []


def test_one_prober_per_backend_for_the_process_and_probe_host(gateway, upstream):
    a = Switchable(upstream)
    hc = "    health_check: { path: /healthz, interval: 200ms, timeout: 150ms, jitter: 0ms, host: health.internal }"
    gateway(health_config([a.address], hc, loops=4))
    time.sleep(1.1)
    # 4 event loops, one prober: about 5 probes in 1.1 s, not 20.
    assert 3 <= len(a.probes) <= 7, len(a.probes)
    assert all(host == "health.internal" for _, host in a.probes)


def test_endpoint_state_survives_a_reload(gateway, upstream):
    a, b = Switchable(upstream), Switchable(upstream)
    slow_hc = HC.replace("interval: 200ms", "interval: 300ms")
    gw = gateway(health_config([a.address, b.address], slow_hc))
    a.health = 503
    assert wait_until(lambda: endpoints_state(gw)[0][a.address][0] is False, 5)
    # An unrelated change (a route timeout): the backend keeps its prober and its verdicts.
    gw.write_config(health_config([a.address, b.address], slow_hc, route_extra="        timeout: 5s"))
    r = requests.post(gw.admin("/reload"))
    assert r.status_code == 200, r.text
    assert endpoints_state(gw)[0][a.address][0] is False
    before = len(a.traffic)
    for _ in range(6):
        assert requests.get(gw.url("/")).status_code == 200
    assert len(a.traffic) == before
    # Changing the health check starts a new prober from the verdicts on record.
    gw.write_config(health_config([a.address, b.address], HC.replace("unhealthy_threshold: 2", "unhealthy_threshold: 3")))
    assert requests.post(gw.admin("/reload")).status_code == 200
    assert endpoints_state(gw)[0][a.address][0] is False


OD = "    outlier_detection: { consecutive_failures: 3, eject_for: 1s }"


def test_outlier_detection_ejects_a_failing_endpoint_then_lets_it_back(gateway, upstream):
    bad, good1, good2 = Switchable(upstream), Switchable(upstream), Switchable(upstream)
    bad.status = 500
    gw = gateway(health_config([bad.address, good1.address, good2.address], OD, loops=1))
    codes = [requests.get(gw.url("/")).status_code for _ in range(9)]
    assert codes.count(500) == 3
    state, backend = endpoints_state(gw)
    assert state[bad.address] == (True, True)
    assert backend["healthy_endpoints"] == 2
    assert metric(gw, "sluice_backend_healthy_endpoints", backend="svc") == 2
    assert [requests.get(gw.url("/")).status_code for _ in range(10)] == [200] * 10
    assert len(bad.traffic) == 3
    # Back after eject_for (and the gauge with it).
    bad.status = 200
    time.sleep(1.1)
    assert endpoints_state(gw)[0][bad.address] == (True, False)
    assert wait_until(lambda: metric(gw, "sluice_backend_healthy_endpoints", backend="svc") == 3, 2)
    for _ in range(9):
        assert requests.get(gw.url("/")).status_code == 200
    assert len(bad.traffic) >= 5
    assert "endpoint ejected" in gw.stderr_text()


def test_outlier_detection_never_ejects_more_than_its_share(gateway, upstream):
    # Two endpoints that both fail: 50 % of two is one, so one stays in (as in Envoy, a backend
    # of two can still eject its bad one).
    a, b = Switchable(upstream), Switchable(upstream)
    a.status = b.status = 502
    gw = gateway(health_config([a.address, b.address], OD, loops=1))
    for _ in range(12):
        requests.get(gw.url("/"))
    state, backend = endpoints_state(gw)
    assert sum(1 for h, e in state.values() if e) == 1
    assert backend["healthy_endpoints"] == 1


def test_connect_failures_eject_a_dead_endpoint(gateway, upstream):
    good = Switchable(upstream)
    dead = f"127.0.0.1:{free_port()}"
    gw = gateway(health_config([dead, good.address], OD + "\n    connect_timeout: 200ms", loops=1))
    codes = [requests.get(gw.url("/")).status_code for _ in range(8)]
    assert codes.count(502) == 3
    assert endpoints_state(gw)[0][dead] == (True, True)
    assert [requests.get(gw.url("/")).status_code for _ in range(6)] == [200] * 6
