"""The circuit breaker against a real upstream that fails and recovers: it opens on the error
rate (503 with Retry-After, upstream untouched), half-opens after open_for, closes on its
probes' success with a fresh window, opens again on a failed probe; gauge, /backends, audit."""
import time

import requests

from authkit import WebhookReceiver
from test_rate_limit import metric, wait_until


def breaker_config(up, hook_url, open_for="1s"):
    return f"""
version: 1
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
    circuit_breaker: {{ error_rate: 50%, window: 10s, min_requests: 6, open_for: {open_for}, half_open_requests: 2 }}
audit:
  sinks:
    - {{ type: webhook, url: '{hook_url}', events: [circuit_opened] }}
"""


def backend_state(gw):
    return requests.get(gw.admin("/backends")).json()["backends"][0]["circuit"]


def test_breaker_opens_half_opens_and_closes(gateway, upstream):
    state = {"status": 500}
    up = upstream(lambda req: (state["status"], [], b"x"))
    hook = WebhookReceiver()
    try:
        gw = gateway(breaker_config(up, hook.url))
        # 3 successes, then failures: opens when failures / total > 50 % with >= 6 requests.
        state["status"] = 200
        assert [requests.get(gw.url("/")).status_code for _ in range(3)] == [200] * 3
        state["status"] = 503
        assert [requests.get(gw.url("/")).status_code for _ in range(4)] == [503] * 4  # the upstream's
        seen = len(up.requests)
        r = requests.get(gw.url("/"))
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert "circuit breaker" in r.json()["message"]
        assert r.headers["retry-after"] == "1"
        assert len(up.requests) == seen, "an open breaker never touches the upstream"
        assert backend_state(gw) == "open"
        assert metric(gw, "sluice_circuit_breaker_state", backend="svc") == 1
        event = hook.wait_for("circuit_opened")[0]
        assert event["detail"] == {"backend": "svc"}
        # After open_for: probes; a failed probe opens it again.
        time.sleep(1.1)
        assert requests.get(gw.url("/")).status_code == 503
        assert len(up.requests) == seen + 1
        assert backend_state(gw) == "open"
        # The upstream recovers: two successful probes close it, with a fresh window.
        state["status"] = 200
        time.sleep(1.1)
        assert requests.get(gw.url("/")).status_code == 200
        assert backend_state(gw) == "half_open"
        assert requests.get(gw.url("/")).status_code == 200
        assert backend_state(gw) == "closed"
        assert metric(gw, "sluice_circuit_breaker_state", backend="svc") == 0
        # A fresh window: the failures that opened it do not count; 2 new failures of 2 are
        # under min_requests.
        state["status"] = 500
        assert [requests.get(gw.url("/")).status_code for _ in range(2)] == [500, 500]
        assert backend_state(gw) == "closed"
    finally:
        hook.close()


def test_dead_upstream_opens_the_breaker_and_reload_keeps_it(gateway, upstream):
    up = upstream()
    up.close()  # connection refused: 502 from the gateway counts as a failure
    hook = WebhookReceiver()
    try:
        gw = gateway(breaker_config(up, hook.url, open_for="30s"))
        codes = [requests.get(gw.url("/")).status_code for _ in range(8)]
        assert codes[:6] == [502] * 6 and codes[6:] == [503, 503]
        assert int(requests.get(gw.url("/")).headers["retry-after"]) > 20
        # A reload that keeps the breaker's settings keeps its state.
        gw.write_config(breaker_config(up, hook.url, open_for="30s").replace("name: api", "name: api2"))
        assert requests.post(gw.admin("/reload")).status_code == 200
        assert requests.get(gw.url("/")).status_code == 503
        assert '"circuit_breaker"' in requests.get(gw.admin("/config")).text
    finally:
        hook.close()
