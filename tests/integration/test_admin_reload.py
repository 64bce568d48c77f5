"""Admin API, reload (SIGHUP, POST /reload, file change) and drain on SIGTERM."""
import json
import os
import signal
import threading
import time

import requests

from conftest import simple_config


def test_admin_endpoints(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address))
    assert requests.get(gw.admin("/healthz")).text == "ok\n"
    assert requests.get(gw.admin("/readyz")).status_code == 200
    requests.get(gw.url("/x"))
    metrics = requests.get(gw.admin("/metrics"))
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    for name in ["sluice_http_requests_total", "sluice_http_request_duration_seconds_bucket",
                 "sluice_upstream_request_duration_seconds_bucket", "sluice_active_connections",
                 "sluice_upstream_connections", "sluice_upstream_connect_failures_total",
                 "sluice_config_reloads_total", "sluice_build_info", "process_resident_memory_bytes",
                 "sluice_backend_healthy_endpoints", "sluice_access_log_dropped_lines_total",
                 "process_cpu_seconds_total", "process_open_fds"]:
        assert name in text, name
    assert 'sluice_http_requests_total{listener="public",route="main",backend="svc",code="200"} 1' in text
    assert 'sluice_upstream_connections{backend="svc",state="idle"} 1' in text
    assert 'sluice_upstream_connections{backend="svc",state="active"} 0' in text
    assert 'sluice_active_connections{listener="public"}' in text
    assert 'le="0.001"' in text and 'le="2.048"' in text and 'le="+Inf"' in text
    config = requests.get(gw.admin("/config")).json()
    limits = config["listeners"][0]["limits"]
    assert limits["max_request_header_bytes"] == "32KiB" and limits["request_header_timeout"] == "10s"
    assert config["backends"]["svc"]["connect_timeout"] == "2s"
    backends = requests.get(gw.admin("/backends")).json()
    b = backends["backends"][0]
    assert b["name"] == "svc" and b["circuit"] == "closed" and b["endpoints"][0]["address"] == up.address
    assert b["endpoints"][0]["healthy"] is True
    assert requests.get(gw.admin("/nope")).status_code == 404
    assert requests.delete(gw.admin("/config")).status_code == 405


def test_admin_token_and_redaction(gateway, upstream):
    up = upstream()
    cfg = simple_config(up.address).replace(
        "admin: { listen: 127.0.0.1:{{ADMIN_PORT}} }",
        "admin: { listen: 127.0.0.1:{{ADMIN_PORT}}, token: '${env:TEST_ADMIN_TOKEN}' }")
    gw = gateway(cfg, env={"TEST_ADMIN_TOKEN": "s3cr3t-t0ken"})
    assert requests.get(gw.admin("/healthz")).status_code == 200
    assert requests.get(gw.admin("/readyz")).status_code == 200
    r = requests.get(gw.admin("/metrics"))
    assert r.status_code == 401 and "bearer" in r.headers["www-authenticate"].lower()
    assert requests.get(gw.admin("/config"), headers={"authorization": "Bearer wrong"}).status_code == 401
    r = requests.get(gw.admin("/config"), headers={"authorization": "Bearer s3cr3t-t0ken"})
    assert r.status_code == 200 and r.json()["admin"]["token"] == "<redacted>"
    assert "s3cr3t" not in r.text
    assert "s3cr3t" not in gw.stderr_text() + gw.stdout_text()


ROUTE_A = "      - { name: extra, match: { path: /v }, direct_response: { status: 200, body: 'version-a' } }\n"
ROUTE_B = "      - { name: extra, match: { path: /v }, direct_response: { status: 200, body: 'version-b' } }\n"


def test_reload_on_sighup_and_post(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, routes_extra=ROUTE_A))
    assert requests.get(gw.url("/v")).text == "version-a"
    gw.write_config(simple_config(up.address, routes_extra=ROUTE_B))
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and requests.get(gw.url("/v")).text != "version-b":
        time.sleep(0.05)
    assert requests.get(gw.url("/v")).text == "version-b"
    gw.write_config(simple_config(up.address, routes_extra=ROUTE_A))
    r = requests.post(gw.admin("/reload"))
    assert r.status_code == 200 and r.json()["result"] == "success"
    assert requests.get(gw.url("/v")).text == "version-a"
    assert 'sluice_config_reloads_total{result="success"}' in requests.get(gw.admin("/metrics")).text


def test_invalid_reload_keeps_old_config(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, routes_extra=ROUTE_A))
    gw.write_config(simple_config(up.address, routes_extra=ROUTE_B).replace("backend: svc", "backend: missing"))
    r = requests.post(gw.admin("/reload"))
    assert r.status_code == 400
    body = r.json()
    assert body["result"] == "failure" and any("missing" in e and ":" in e for e in body["errors"])
    assert requests.get(gw.url("/v")).text == "version-a"
    assert requests.get(gw.url("/x")).status_code == 200
    assert 'sluice_config_reloads_total{result="failure"} 1' in requests.get(gw.admin("/metrics")).text
    assert "config reload rejected" in gw.stderr_text()


def test_reload_on_file_change(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, routes_extra=ROUTE_A))
    time.sleep(0.6)
    gw.write_config(simple_config(up.address, routes_extra=ROUTE_B))
    deadline = time.time() + 5
    while time.time() < deadline and requests.get(gw.url("/v")).text != "version-b":
        time.sleep(0.1)
    assert requests.get(gw.url("/v")).text == "version-b"


def test_reload_under_load_loses_nothing(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, routes_extra=ROUTE_A).replace("output: stdout", "output: none"))
    failures, done = [], threading.Event()
    counts = [0] * 4

    def client(i):
        with requests.Session() as s:
            while not done.is_set():
                try:
                    r = s.get(gw.url("/load"), timeout=5)
                    if r.status_code != 200:
                        failures.append(r.status_code)
                    counts[i] += 1
                except requests.RequestException as e:
                    failures.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for n in range(6):
        time.sleep(0.25)
        gw.write_config(simple_config(up.address, routes_extra=ROUTE_B if n % 2 == 0 else ROUTE_A).replace(
            "output: stdout", "output: none"))
        assert requests.post(gw.admin("/reload")).status_code == 200
    time.sleep(0.25)
    done.set()
    for t in threads:
        t.join()
    assert failures == [] and sum(counts) > 100, (failures[:5], counts)


def test_sigterm_drains_in_flight_request(gateway, upstream):
    def handler(req):
        if req.target == "/slow":
            time.sleep(1.0)
        return 200, [], b"finished"

    up = upstream(handler)
    gw = gateway(simple_config(up.address))
    result = {}

    def slow():
        result["r"] = requests.get(gw.url("/slow"), timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    gw.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert requests.get(gw.admin("/readyz")).status_code == 503
    t.join()
    assert result["r"].status_code == 200 and result["r"].text == "finished"
    assert gw.proc.wait(timeout=10) == 0


def test_drain_timeout_bounds_shutdown(gateway, upstream):
    def handler(req):
        time.sleep(5)
        return 200, [], b"late"

    up = upstream(handler)
    gw = gateway(simple_config(up.address) + "runtime: { drain_timeout: 500ms }\n")
    def slow():
        try:
            requests.get(gw.url("/slow"), timeout=10)
        except requests.RequestException:
            pass  # cut off by the drain timeout, as it should be

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    time.sleep(0.3)
    start = time.time()
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=5) == 0
    assert time.time() - start < 2.5


def test_reload_keeps_upstream_pool(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, routes_extra=ROUTE_A) + "runtime: { event_loops: 1 }\n")
    with requests.Session() as s:
        for _ in range(5):
            assert s.get(gw.url("/p")).status_code == 200
        gw.write_config(simple_config(up.address, routes_extra=ROUTE_B) + "runtime: { event_loops: 1 }\n")
        assert requests.post(gw.admin("/reload")).status_code == 200
        for _ in range(5):
            assert s.get(gw.url("/p")).status_code == 200
    assert up.connections == 1, "the pooled upstream connection must survive a reload"


def test_reload_adds_and_removes_listeners(gateway, upstream):
    from conftest import free_port
    up = upstream()
    gw = gateway(simple_config(up.address))
    extra = free_port()
    # a second listener, added under `listeners:` of the same config
    base = simple_config(up.address)
    head, tail = base.split("backends:")
    gw.write_config(head + f"""  - name: second
    listen: 127.0.0.1:{extra}
    routes: [ {{ name: s, direct_response: {{ status: 200, body: "second" }} }} ]
backends:""" + tail)
    r = requests.post(gw.admin("/reload"))
    assert r.status_code == 200 and r.json()["listeners_added_or_moved"] == ["second"], r.text
    assert requests.get(f"http://127.0.0.1:{extra}/").text == "second"
    gw.write_config(base)
    r = requests.post(gw.admin("/reload"))
    assert r.json()["listeners_removed"] == ["second"]
    time.sleep(0.2)
    try:
        requests.get(f"http://127.0.0.1:{extra}/", timeout=1)
        assert False, "the removed listener still accepts"
    except requests.ConnectionError:
        pass
    assert requests.get(gw.url("/x")).status_code == 200


def test_blocked_stdout_never_stalls_traffic(tmp_path, upstream):
    """The access log goes to a pipe nobody reads: requests must keep flowing."""
    import subprocess
    from conftest import BIN, free_port
    up = upstream()
    port, admin = free_port(), free_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(simple_config(up.address).replace("{{PORT}}", str(port)).replace("{{ADMIN_PORT}}", str(admin)))
    proc = subprocess.Popen([BIN, "serve", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{admin}/readyz", timeout=0.5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        start = time.time()
        with requests.Session() as s:
            for _ in range(1500):  # ~600 KB of log lines: far more than a pipe buffer holds
                assert s.get(f"http://127.0.0.1:{port}/blocked-log", timeout=5).status_code == 200
        assert time.time() - start < 30
    finally:
        proc.kill()
        proc.wait()


def test_admin_requests_during_reloads_never_hang(gateway, upstream):
    """Regression: admin handlers used to read the config with a blocking call onto the control
    queue; a reload there waits for every event loop, so the two could deadlock."""
    up = upstream()
    gw = gateway(simple_config(up.address, routes_extra=ROUTE_A))
    errors, done = [], threading.Event()

    def poll():
        with requests.Session() as s:
            while not done.is_set():
                try:
                    for path in ("/config", "/metrics", "/backends"):
                        s.get(gw.admin(path), timeout=5).raise_for_status()
                except requests.RequestException as e:
                    errors.append(repr(e))
                    return

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for t in threads:
        t.start()
    for n in range(15):
        gw.write_config(simple_config(up.address, routes_extra=ROUTE_B if n % 2 == 0 else ROUTE_A))
        r = requests.post(gw.admin("/reload"), timeout=5)
        assert r.status_code == 200
    done.set()
    for t in threads:
        t.join()
    assert errors == []
