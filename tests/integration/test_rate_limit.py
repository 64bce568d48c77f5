"""Rate limits against the running binary: local limits (exact per process, refunds, fallback
keys, trusted proxies, reload, bounded memory) and limits shared through a real redis-server
(atomic across processes, TTLs, Redis down, paused, garbage, AUTH, SELECT, NOSCRIPT)."""
import concurrent.futures
import re
import time

import pytest
import requests

from authkit import WebhookReceiver
from rediskit import GarbageServer, RedisServer


def config(up, limits, route_limits, stores="", extra_top="", listener_extra="", event_loops=1, route_extra=""):
    return f"""
version: 1
runtime: {{ event_loops: {event_loops} }}
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
observability:
  access_log: {{ format: json, output: stdout }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
{listener_extra}
    routes:
      - name: open
        match: {{ path_prefix: /open }}
        backend: svc
      - name: api
        match: {{ path_prefix: / }}
        rate_limit: {route_limits}
{route_extra}
        backend: svc
backends:
  svc:
    endpoints: [{up.address}]
rate_limits:
{limits}
{stores}
{extra_top}
"""


def metric(gw, name, **labels):
    text = requests.get(gw.admin("/metrics")).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{" + want + "}") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def redis_server():
    servers = []

    def make(**kw):
        s = RedisServer(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def wait_until(check, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(step)
    return False


# ---- local limits ----

def test_local_limit_refuses_with_429_and_headers_and_never_reaches_upstream(gateway, upstream):
    up = upstream()
    hook = WebhookReceiver()
    try:
        gw = gateway(config(up, "  per-client: { key: client_ip, limit: 5, per: 1m }", "[per-client]",
                            extra_top=f"audit:\n  sinks:\n    - {{ type: webhook, url: '{hook.url}', events: [rate_limited] }}"))
        codes = [requests.get(gw.url("/x")).status_code for _ in range(5)]
        assert codes == [200] * 5
        r = requests.get(gw.url("/x"))
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == "rate_limited"
        assert r.headers["retry-after"] == "12"  # one request every 60/5 = 12 s
        assert r.headers["ratelimit-limit"] == "5"
        assert r.headers["ratelimit-remaining"] == "0"
        assert 1 <= int(r.headers["ratelimit-reset"]) <= 60
        assert len(up.requests) == 5, "a refused request never touches the upstream"
        # Another route without the limit is not affected.
        assert requests.get(gw.url("/open")).status_code == 200
        assert metric(gw, "sluice_rate_limited_total", route="api", limit="per-client") == 1
        event = hook.wait_for("rate_limited")[0]
        assert event["route"] == "api" and event["detail"] == {"limit": "per-client"}
        assert event["client_ip"] == "127.0.0.1"
        assert wait_until(lambda: '"status":429' in gw.stdout_text())
        line = [l for l in gw.stdout_text().splitlines() if '"status":429' in l][-1]
        assert '"error":"rate_limited"' in line
    finally:
        hook.close()


def test_limit_is_per_process_whatever_the_event_loops(gateway, upstream):
    # Two loops, 32 connections at once: a limit of 40 admits exactly 40, not 80.
    up = upstream()
    gw = gateway(config(up, "  l: { key: route, limit: 40, per: 1h }", "[l]", event_loops=2))

    def burst(_):
        s = requests.Session()
        return [s.get(gw.url("/")).status_code for _ in range(5)]

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        codes = [c for batch in pool.map(burst, range(32)) for c in batch]
    assert codes.count(200) == 40
    assert codes.count(429) == 160 - 40


def test_a_refusal_by_one_limit_does_not_use_up_the_others(gateway, upstream):
    up = upstream()
    gw = gateway(config(up, "  per-ip: { key: client_ip, limit: 3, per: 1h }\n"
                            "  per-user: { key: 'header:x-user', limit: 1, per: 1h }", "[per-ip, per-user]"))
    get = lambda user: requests.get(gw.url("/"), headers={"x-user": user}).status_code
    assert get("u1") == 200
    assert get("u1") == 429  # per-user refuses; per-ip gets its request back
    assert get("u1") == 429
    assert get("u2") == 200
    assert get("u3") == 200  # per-ip's third: only possible if the refusals were refunded
    assert get("u4") == 429  # now per-ip is used up
    assert len(up.requests) == 3


def test_missing_header_counts_by_client_ip_and_trusted_proxies_give_the_client(gateway, upstream):
    up = upstream()
    gw = gateway(config(up, "  per-key: { key: 'header:x-api-key', limit: 2, per: 1h }", "[per-key]",
                        listener_extra="    trusted_proxies: [127.0.0.0/8]"))
    # Without the header: counted by client IP (from X-Forwarded-For, the peer being trusted).
    h = {"x-forwarded-for": "203.0.113.7"}
    assert [requests.get(gw.url("/"), headers=h).status_code for _ in range(3)] == [200, 200, 429]
    # Another client behind the same proxy has its own allowance.
    h2 = {"x-forwarded-for": "203.0.113.8"}
    assert requests.get(gw.url("/"), headers=h2).status_code == 200
    # The rightmost untrusted address is the client: a spoofed leftmost entry does not help.
    spoof = {"x-forwarded-for": "1.2.3.4, 203.0.113.7"}
    assert requests.get(gw.url("/"), headers=spoof).status_code == 429
    # A header value is its own key, apart from the IP fallback.
    assert requests.get(gw.url("/"), headers={"x-api-key": "203.0.113.7", **h}).status_code == 200


def test_limit_state_survives_a_reload_unless_the_limit_changes(gateway, upstream):
    up = upstream()
    base = config(up, "  l: { key: client_ip, limit: 2, per: 1h }", "[l]")
    gw = gateway(base)
    assert [requests.get(gw.url("/")).status_code for _ in range(3)] == [200, 200, 429]
    gw.write_config(base.replace("name: open", "name: open2"))
    assert requests.post(gw.admin("/reload")).status_code == 200
    assert requests.get(gw.url("/")).status_code == 429, "an unchanged limit keeps its counts"
    gw.write_config(base.replace("limit: 2", "limit: 3"))
    assert requests.post(gw.admin("/reload")).status_code == 200
    assert requests.get(gw.url("/")).status_code == 200, "a changed limit starts afresh"


def test_many_distinct_clients_keep_memory_bounded_and_the_hot_key_limited(gateway, upstream):
    # 20,000 distinct client IPs through a trusted proxy with max_keys 1,000 (the bench floods
    # 1,000,000 against the default cap): RSS stays flat, and the client over its limit stays
    # limited throughout.
    up = upstream(lambda req: (200, [], b""))
    gw = gateway(config(up, "  per-ip: { key: client_ip, limit: 3, per: 1h, max_keys: 1000 }", "[per-ip]",
                        listener_extra="    trusted_proxies: [127.0.0.0/8]"))
    hot = {"x-forwarded-for": "198.51.100.1"}
    for _ in range(3):
        requests.get(gw.url("/"), headers=hot)
    assert requests.get(gw.url("/"), headers=hot).status_code == 429
    before = gw.rss_kib()

    def flood(start):
        s = requests.Session()
        for i in range(start, start + 2500):
            s.get(gw.url("/"), headers={"x-forwarded-for": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"})
        return s.get(gw.url("/"), headers=hot).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        hot_codes = list(pool.map(flood, range(0, 20000, 2500)))
    assert hot_codes == [429] * 8
    assert gw.rss_kib() - before < 4096, (before, gw.rss_kib())


# ---- Redis ----

def redis_limits(store_url, limit=10, per="1h", on_error="allow", timeout="50ms", key="client_ip", name="shared"):
    limits = f"  {name}: {{ key: {key}, limit: {limit}, per: {per}, store: main, on_store_error: {on_error} }}"
    stores = f"stores:\n  main: {{ type: redis, url: '{store_url}', timeout: {timeout} }}"
    return limits, stores


def wait_store_ready(gw, store="main"):
    assert wait_until(lambda: metric(gw, "sluice_store_connections", store=store) >= 1), gw.stderr_text()


def test_shared_limit_is_exact_across_three_processes(gateway, upstream, redis_server):
    rs = redis_server()
    up = upstream(lambda req: (200, [], b""))
    limits, stores = redis_limits(rs.url, limit=50, key="route")
    gws = [gateway(config(up, limits, "[shared]", stores=stores, event_loops=2)) for _ in range(3)]
    for gw in gws:
        wait_store_ready(gw)

    def hammer(i):
        s = requests.Session()
        gw = gws[i % 3]
        return [s.get(gw.url("/")).status_code for _ in range(20)]

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        codes = [c for batch in pool.map(hammer, range(24)) for c in batch]
    assert codes.count(200) == 50, codes.count(200)
    assert codes.count(429) == 24 * 20 - 50
    assert len(up.requests) == 50
    # Every key Sluice wrote expires on its own.
    keys = rs.client().keys("sluice:rl:*")
    assert keys == ["sluice:rl:shared:1:api"]
    ttl = rs.client().pttl(keys[0])
    assert 0 < ttl <= 3600 * 1000
    total_ok = sum(metric(gw, "sluice_store_commands_total", store="main", result="ok") for gw in gws)
    assert total_ok >= 24 * 20


def test_redis_down_allow_and_deny_answer_within_the_timeout_and_recover(gateway, upstream, redis_server):
    rs = redis_server()
    up = upstream()
    allow_limits, stores = redis_limits(rs.url, limit=3, on_error="allow")
    deny_limits, _ = redis_limits(rs.url, limit=3, on_error="deny", name="strict")
    gw = gateway(config(up, allow_limits + "\n" + deny_limits, "[shared]", stores=stores,
                        route_extra="", extra_top=""))
    wait_store_ready(gw)
    assert [requests.get(gw.url("/")).status_code for _ in range(4)] == [200, 200, 200, 429]
    rs.stop()
    assert wait_until(lambda: metric(gw, "sluice_store_connections", store="main") == 0)
    t0 = time.time()
    codes = [requests.get(gw.url("/")).status_code for _ in range(20)]
    assert codes == [200] * 20, "on_store_error: allow admits while Redis is down"
    assert time.time() - t0 < 2.0
    assert metric(gw, "sluice_store_fallbacks_total", store="main", error="disconnected", decision="allow") >= 20
    rs.start()
    wait_store_ready(gw)
    assert wait_until(lambda: requests.get(gw.url("/")).status_code == 429, timeout=5), "the limit works again"


def test_redis_down_with_deny_is_503(gateway, upstream, redis_server):
    rs = redis_server()
    up = upstream()
    limits, stores = redis_limits(rs.url, limit=3, on_error="deny")
    gw = gateway(config(up, limits, "[shared]", stores=stores))
    wait_store_ready(gw)
    rs.stop()
    assert wait_until(lambda: metric(gw, "sluice_store_connections", store="main") == 0)
    r = requests.get(gw.url("/"))
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert "retry-after" in r.headers
    assert len(up.requests) == 0


def test_a_paused_redis_costs_at_most_the_timeout(gateway, upstream, redis_server):
    rs = redis_server()
    up = upstream()
    limits, stores = redis_limits(rs.url, limit=1000, on_error="deny", timeout="100ms")
    gw = gateway(config(up, limits, "[shared]", stores=stores))
    wait_store_ready(gw)
    assert requests.get(gw.url("/")).status_code == 200
    rs.client().execute_command("CLIENT", "PAUSE", "1500", "ALL")
    t0 = time.time()
    r = requests.get(gw.url("/"))
    took = time.time() - t0
    assert r.status_code == 503
    assert took < 0.6, took
    assert metric(gw, "sluice_store_commands_total", store="main", result="timeout") >= 1
    time.sleep(1.6)
    assert wait_until(lambda: requests.get(gw.url("/")).status_code == 200, timeout=10)


def test_garbage_from_the_store_is_a_store_error_not_a_crash(gateway, upstream):
    garbage = GarbageServer()
    try:
        up = upstream()
        limits, stores = redis_limits(f"redis://127.0.0.1:{garbage.port}/0", on_error="deny")
        gw = gateway(config(up, limits, "[shared]", stores=stores))
        assert wait_until(lambda: garbage.accepted >= 2, timeout=5), "it reconnects after garbage"
        assert requests.get(gw.url("/")).status_code == 503
        assert gw.alive()
        assert "store connection failed" in gw.stderr_text()
    finally:
        garbage.close()


def test_auth_select_and_noscript(gateway, upstream, redis_server):
    rs = redis_server(password="p@ss:w0rd")
    up = upstream()
    url = f"redis://default:p%40ss@127.0.0.1:{rs.port}/3"  # wrong password (not URL-decoded)
    limits, stores = redis_limits(f"redis://:${{env:REDIS_PASSWORD}}@127.0.0.1:{rs.port}/3", limit=2)
    gw = gateway(config(up, limits, "[shared]", stores=stores), env={"REDIS_PASSWORD": "p@ss:w0rd"})
    wait_store_ready(gw)
    assert [requests.get(gw.url("/")).status_code for _ in range(3)] == [200, 200, 429]
    assert rs.client(db=3).keys("sluice:rl:*") == ["sluice:rl:shared:0:127.0.0.1"]
    assert rs.client(db=0).keys("*") == []
    # The script cache flushed (as after a Redis restart with a kept connection): EVAL reloads it.
    rs.client().script_flush()
    assert requests.get(gw.url("/")).status_code == 429
    rs.client(db=3).flushdb()
    assert requests.get(gw.url("/")).status_code == 200
    # A wrong password: the store never gets ready, the error is logged without the password.
    limits2, stores2 = redis_limits(url, limit=2)
    gw2 = gateway(config(up, limits2, "[shared]", stores=stores2))
    assert wait_until(lambda: "store connection failed" in gw2.stderr_text(), timeout=5)
    assert "p%40ss" not in gw2.stderr_text() and "p@ss" not in gw2.stderr_text()
    assert requests.get(gw2.url("/")).status_code == 200  # on_store_error: allow
    assert "p@ss" not in requests.get(gw.admin("/config")).text


def test_mixed_local_and_shared_limits_refund_the_local_one(gateway, upstream, redis_server):
    rs = redis_server()
    up = upstream()
    limits, stores = redis_limits(rs.url, limit=1, key="'header:x-user'")
    limits += "\n  per-ip: { key: client_ip, limit: 2, per: 1h }"
    gw = gateway(config(up, limits, "[per-ip, shared]", stores=stores))
    wait_store_ready(gw)
    get = lambda user: requests.get(gw.url("/"), headers={"x-user": user}).status_code
    assert get("a") == 200
    assert get("a") == 429  # refused by Redis; the local per-ip request is given back
    assert get("b") == 200
    assert get("c") == 429  # per-ip used up by a and b
