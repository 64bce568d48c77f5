import Foundation
import SluiceCore
import SluiceFeatures
import XCTest

@testable import SluiceConfig

/// Golden files: every `Fixtures/invalid/*.yaml` must produce exactly its `.diag`, every
/// `Fixtures/valid/*.yaml` and `examples/*.yaml` must load.
final class ConfigGoldenTests: XCTestCase {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  let env = [
    "SLUICE_TEST_TOKEN": "t0k", "SLUICE_ADMIN_TOKEN": "t0k", "PARTNER_A_KEY": "partner-a-0123456789",
    "PARTNER_B_KEY": "partner-b-0123456789", "JWT_SECRET": "an-example-secret-of-at-least-32-bytes",
  ]

  func files(_ folder: String) throws -> [String] {
    let dir = Self.root.appendingPathComponent(folder)
    return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
      .map { dir.appendingPathComponent($0).path }
  }

  func testInvalidFixturesProduceTheirDiagnostics() throws {
    let paths = try files("Fixtures/invalid")
    XCTAssertGreaterThanOrEqual(paths.count, 5)
    for path in paths {
      let result = ConfigLoader.load(file: path, environment: env)
      XCTAssertNil(result.configuration, path)
      let expected = try String(contentsOfFile: String(path.dropLast(5)) + ".diag", encoding: .utf8)
        .replacingOccurrences(of: "FILE", with: path)
        .replacingOccurrences(of: "DIR/", with: (path as NSString).deletingLastPathComponent + "/")
      let actual = result.diagnostics.map(\.description).joined(separator: "\n") + "\n"
      XCTAssertEqual(actual, expected, path)
    }
  }

  func testValidFixturesAndExamplesLoad() throws {
    for path in try files("Fixtures/valid") + files("examples") {
      let result = ConfigLoader.load(file: path, environment: env)
      XCTAssertNotNil(result.configuration, "\(path): \(result.diagnostics)")
      XCTAssertTrue(result.errors.isEmpty, path)
    }
  }
}

final class ConfigLoaderTests: XCTestCase {
  func load(_ yaml: String, env: [String: String] = [:]) -> LoadResult {
    ConfigLoader.load(text: yaml, file: "/cfg/test.yaml", environment: env)
  }

  func messages(_ yaml: String, env: [String: String] = [:]) -> [String] {
    load(yaml, env: env).diagnostics.map(\.description)
  }

  let minimal = """
    version: 1
    listeners:
      - listen: 127.0.0.1:8080
        routes:
          - backend: app
    backends:
      app: { endpoints: [127.0.0.1:9000] }

    """

  func testDefaultsAreFilledIn() throws {
    let config = try XCTUnwrap(load(minimal).configuration)
    XCTAssertNil(config.runtime.eventLoops)
    XCTAssertEqual(config.runtime.drainTimeout, .seconds(15))
    XCTAssertEqual(config.admin.listen, HostPort(host: "127.0.0.1", port: 9901))
    let listener = config.listeners[0]
    XCTAssertEqual(listener.name, "listener-0")
    XCTAssertEqual(listener.routes[0].name, "listener-0.0")
    XCTAssertEqual(listener.limits.maxRequestHeaderBytes.bytes, 32 * 1024)
    XCTAssertEqual(listener.limits.maxRequestURIBytes.bytes, 8 * 1024)
    XCTAssertEqual(listener.limits.maxRequestHeaders, 100)
    XCTAssertEqual(listener.limits.maxRequestBodyBytes.bytes, 10 << 20)
    XCTAssertEqual(listener.limits.requestHeaderTimeout, .seconds(10))
    XCTAssertEqual(listener.limits.idleTimeout, .seconds(60))
    XCTAssertEqual(listener.limits.maxConnections, 10_000)
    XCTAssertEqual(listener.routes[0].timeout, .seconds(30))
    XCTAssertEqual(config.backends[0].connectTimeout, .seconds(2))
    XCTAssertEqual(config.observability.accessLogOutput, .stdout)
    XCTAssertEqual(config.observability.requestIDHeader, "x-request-id")
  }

  func testSubstitution() throws {
    let yaml = minimal + "admin: { listen: 127.0.0.1:9999, token: \"Bearer-${env:TOK}-x\" }\n"
    let config = try XCTUnwrap(load(yaml, env: ["TOK": "abc"]).configuration)
    XCTAssertEqual(config.admin.token, "Bearer-abc-x")
    XCTAssertEqual(config.admin.listen?.port, 9999)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try "from-file\n".write(to: dir.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
    let fileYAML = minimal + "admin: { token: \"${file:secret.txt}\" }\n"
    let result = ConfigLoader.load(text: fileYAML, file: dir.appendingPathComponent("c.yaml").path, environment: [:])
    XCTAssertEqual(result.configuration?.admin.token, "from-file")
    XCTAssertEqual(
      messages(minimal + "admin: { token: \"${vault:x}\" }\n"),
      ["/cfg/test.yaml:8:17: unknown substitution '${vault:x}' (use ${env:NAME} or ${file:PATH})"])
  }

  func testAllErrorsInOneRun() {
    let yaml = """
      version: 1
      listeners:
        - listen: nope
          routes:
            - backend: a
            - backend: b
      backends: {}
      bogus: 1

      """
    XCTAssertEqual(
      messages(yaml),
      [
        "/cfg/test.yaml:3:13: listener 'listener-0': listen must be HOST:PORT with a port from 1 to 65535, got 'nope'",
        "/cfg/test.yaml:5:18: route 'listener-0.0' names backend 'a', which is not defined in 'backends'",
        "/cfg/test.yaml:6:9: warning: route 'listener-0.1' is never used: route 'listener-0.0' before it matches every request it does",
        "/cfg/test.yaml:6:18: route 'listener-0.1' names backend 'b', which is not defined in 'backends'",
        "/cfg/test.yaml:8:1: unknown key 'bogus' in the configuration",
      ])
  }

  func testTypeErrors() {
    let yaml = """
      version: 1
      runtime: { event_loops: many, drain_timeout: [1] }
      listeners:
        - listen: 127.0.0.1:8080
          limits: { max_request_body_bytes: 10MB, max_request_headers: "5" }
          routes:
            - direct_response: { status: 99 }
            - direct_response: { status: 200, body: x, echo: true }
              timeout: 0s

      """
    XCTAssertEqual(
      messages(yaml),
      [
        "/cfg/test.yaml:2:25: runtime.event_loops must be an integer",
        "/cfg/test.yaml:2:46: runtime.drain_timeout must be a string, not a list",
        "/cfg/test.yaml:5:39: max_request_body_bytes must be a size with a unit (512B, 32KiB, 10MiB), got '10MB'",
        "/cfg/test.yaml:5:66: max_request_headers must be an integer",
        "/cfg/test.yaml:7:36: direct_response.status must be between 200 and 599, got 99",
        "/cfg/test.yaml:8:9: warning: route 'listener-0.1' is never used: route 'listener-0.0' before it matches every request it does",
        "/cfg/test.yaml:8:56: direct_response: use either body or echo: true",
        "/cfg/test.yaml:9:18: route 'listener-0.1'.timeout must be greater than 0",
      ])
  }

  func testHeaderEditsThatWouldBreakFramingAreRejected() {
    let yaml = minimal.replacingOccurrences(
      of: "      - backend: app",
      with: "      - backend: app\n        request_headers: { set: { content-length: \"5\", connection: close, x-ok: fine } }")
    XCTAssertEqual(
      messages(yaml),
      [
        "/cfg/test.yaml:6:35: route 'listener-0.0'.request_headers may not set 'content-length': the gateway manages it",
        "/cfg/test.yaml:6:56: route 'listener-0.0'.request_headers may not set 'connection': the gateway manages it",
      ])
  }

  func testCompileBuildsGraphAndKeepsStateAcrossGenerations() throws {
    let config = try XCTUnwrap(load(minimal).configuration)
    let state = PersistentState()
    let g1 = Compiler.compile(config, state: state)
    let g2 = Compiler.compile(config, state: state)
    XCTAssertEqual(g2.generation, g1.generation + 1)
    let e1 = try XCTUnwrap(g1.backends["app"]?.endpoints[0].stats)
    let e2 = try XCTUnwrap(g2.backends["app"]?.endpoints[0].stats)
    XCTAssertTrue(e1 === e2, "endpoint stats must survive a reload")
    guard case .backend(let t1) = g1.listeners["listener-0"]!.router.entries[0].payload.target,
      case .backend(let t2) = g2.listeners["listener-0"]!.router.entries[0].payload.target
    else { return XCTFail() }
    XCTAssertTrue(t1.requests === t2.requests, "metric series must survive a reload")
  }

  func testConfigJSONRedactsSecrets() throws {
    let yaml = minimal + "admin: { token: \"${env:TOK}\" }\n"
    let config = try XCTUnwrap(load(yaml, env: ["TOK": "supersecret"]).configuration)
    let json = ConfigJSON.render(config).rendered()
    XCTAssertFalse(json.contains("supersecret"))
    XCTAssertTrue(json.contains("\"token\":\"<redacted>\""))
    XCTAssertTrue(json.contains("\"max_request_header_bytes\":\"32KiB\""))
  }

  func testHostPort() {
    XCTAssertEqual(HostPort.parse("127.0.0.1:80"), HostPort(host: "127.0.0.1", port: 80))
    XCTAssertEqual(HostPort.parse("[::1]:8080"), HostPort(host: "::1", port: 8080))
    XCTAssertEqual(HostPort.parse("Users.Internal:80")?.host, "users.internal")
    XCTAssertEqual(HostPort.parse("[::1]:8080")?.description, "[::1]:8080")
    for bad in ["127.0.0.1", ":80", "host:0", "host:65536", "::1:80", "a b:80", "host:-1", "[zz]:80", "host:80x"] {
      XCTAssertNil(HostPort.parse(bad), bad)
    }
  }

  func testExplain() throws {
    let yaml = """
      version: 1
      listeners:
        - listen: 127.0.0.1:8080
          routes:
            - { name: a, match: { path: /a }, direct_response: { status: 200 } }
            - { name: b, match: { path_prefix: /b }, rewrite: { strip_prefix: /b }, backend: x }
      backends:
        x: { endpoints: [127.0.0.1:1] }

      """
    let config = try XCTUnwrap(load(yaml).configuration)
    guard case .success(let text) = RouteTable.explain(config, method: "GET", url: "http://h:8080/b/c", headers: [])
    else { return XCTFail() }
    XCTAssertTrue(text.contains("- a: no match: path /a does not match /b/c"))
    XCTAssertTrue(text.contains("=> route b → backend x, upstream path /c"))
    guard case .failure = RouteTable.explain(config, method: "GET", url: "http://h:9999/", headers: []) else {
      return XCTFail()
    }
  }
}

final class RateLimitConfigTests: XCTestCase {
  func load(_ yaml: String) -> LoadResult { ConfigLoader.load(text: yaml, file: "/cfg/test.yaml", environment: ["RP": "s3cret"]) }

  let yaml = """
    version: 1
    listeners:
      - listen: 127.0.0.1:8080
        routes:
          - name: api
            rate_limit: [per-ip, shared]
            backend: app
    backends:
      app: { endpoints: [127.0.0.1:9000] }
    rate_limits:
      per-ip: { key: client_ip, limit: 100, per: 1m }
      shared: { key: "header:X-Api-Key", limit: 5, per: 1s, burst: 2, store: main, on_store_error: deny }
    stores:
      main: { type: redis, url: "redis://app:${env:RP}@127.0.0.1:6390/2", timeout: 20ms }

    """

  func testParsesLimitsStoresAndRouteReferences() throws {
    let result = load(yaml)
    let config = try XCTUnwrap(result.configuration, "\(result.diagnostics)")
    XCTAssertEqual(config.rateLimits.map(\.name), ["per-ip", "shared"])
    XCTAssertEqual(config.rateLimits[1].key, .header("x-api-key"))
    XCTAssertEqual(config.rateLimits[1].burst, 2)
    XCTAssertEqual(config.rateLimits[1].onStoreError, .deny)
    XCTAssertEqual(config.rateLimits[0].maxKeys, 100_000)
    let store = try XCTUnwrap(config.store(named: "main"))
    XCTAssertEqual(store.url, RedisURL(host: "127.0.0.1", port: 6390, username: "app", password: "s3cret", database: 2, tls: false))
    XCTAssertEqual(store.timeout, .milliseconds(20))
    XCTAssertEqual(config.listeners[0].routes[0].rateLimit, ["per-ip", "shared"])
    let json = ConfigJSON.render(config).rendered()
    XCTAssertFalse(json.contains("s3cret"), json)
    XCTAssertTrue(json.contains("redis://app:***@127.0.0.1:6390/2"), json)
  }

  func testLocalLimitStateSurvivesAReloadUnlessItsDefinitionChanges() throws {
    let state = PersistentState()
    func localStore(_ text: String) throws -> LocalLimitStore {
      let graph = Compiler.compile(try XCTUnwrap(load(text).configuration), state: state)
      let route = try XCTUnwrap(graph.listeners["listener-0"]?.router.entries[0].payload)
      guard case .rateLimit(let step)? = route.admission.last, case .local(let s) = step.locals[0].placement else {
        XCTFail("no local limit step")
        throw CancellationError()
      }
      XCTAssertEqual(step.shared.count, 1)
      return s
    }
    let a = try localStore(yaml)
    let b = try localStore(yaml)
    XCTAssertTrue(a === b, "an unchanged limit keeps its counts")
    let c = try localStore(yaml.replacingOccurrences(of: "limit: 100, per: 1m", with: "limit: 200, per: 1m"))
    XCTAssertFalse(a === c, "a changed limit starts afresh")
  }

  func testRedisURLs() {
    XCTAssertEqual(RedisURL.parse("redis://localhost")?.port, 6379)
    XCTAssertEqual(RedisURL.parse("redis://secret@h:1")?.password, "secret")
    XCTAssertEqual(RedisURL.parse("redis://[::1]:7000/3"), RedisURL(host: "::1", port: 7000, database: 3, tls: false))
    XCTAssertEqual(RedisURL.parse("rediss://h")?.tls, true)
    XCTAssertNil(RedisURL.parse("http://h"))
    XCTAssertNil(RedisURL.parse("redis://h:0"))
    XCTAssertNil(RedisURL.parse("redis://h/x"))
    XCTAssertNil(RedisURL.parse("redis://"))
    XCTAssertEqual(RedisURL.parse("redis://u:p@h:1/4")?.redacted, "redis://u:***@h:1/4")
  }
}

final class CircuitBreakerConfigTests: XCTestCase {
  func load(_ breaker: String) -> LoadResult {
    let yaml = """
      version: 1
      listeners:
        - listen: 127.0.0.1:8080
          routes:
            - backend: app
      backends:
        app: { endpoints: [127.0.0.1:9000], circuit_breaker: \(breaker) }

      """
    return ConfigLoader.load(text: yaml, file: "/cfg/test.yaml", environment: [:])
  }

  func messages(_ breaker: String) -> [String] { load(breaker).diagnostics.map(\.description) }

  func testDefaultsAndErrors() throws {
    let config = try XCTUnwrap(load("{ error_rate: 25% }").configuration)
    XCTAssertTrue(ConfigJSON.render(config).rendered().contains("\"error_rate\":\"25%\""))
    XCTAssertEqual(ConfigJSON.percent(0.125), "12.5%")
    XCTAssertEqual(
      config.backends[0].circuitBreaker,
      CircuitBreakerPolicy(
        errorRate: 0.25, window: 30_000_000_000, minRequests: 20, openFor: 30_000_000_000, halfOpenRequests: 5))
    XCTAssertEqual(
      messages("{ error_rate: 0.5 }"),
      ["/cfg/test.yaml:7:70: backend 'app'.circuit_breaker.error_rate must be a percentage from 0% to 100%, like 50%; got '0.5'"])
    XCTAssertEqual(
      messages("{ error_rate: 100% }"),
      ["/cfg/test.yaml:7:70: backend 'app'.circuit_breaker.error_rate must be above 0% and below 100%"])
    XCTAssertEqual(
      messages("{ window: 10ms, half_open_requests: 0, colour: red }").count, 3)
    XCTAssertEqual(messages("{ open_for: 2562047h, window: 48h }").count, 2, "durations that could overflow a deadline")
  }
}

final class LoadSheddingConfigTests: XCTestCase {
  func load(_ backend: String) -> LoadResult {
    ConfigLoader.load(
      text: """
        version: 1
        listeners:
          - listen: 127.0.0.1:8080
            routes:
              - backend: app
        backends:
          app: { endpoints: [127.0.0.1:9000], \(backend) }

        """, file: "/cfg/test.yaml", environment: [:])
  }

  func testLimitsQueueAndErrors() throws {
    let config = try XCTUnwrap(load("max_concurrent_requests: 64, queue: { size: 8, timeout: 250ms }").configuration)
    XCTAssertEqual(config.backends[0].maxConcurrentRequests, 64)
    XCTAssertEqual(config.backends[0].queueSize, 8)
    XCTAssertEqual(config.backends[0].queueTimeout, .milliseconds(250))
    let plain = try XCTUnwrap(load("max_concurrent_requests: 4").configuration)
    XCTAssertEqual(plain.backends[0].queueSize, 0, "without a queue, beyond the limit is 503 at once")
    XCTAssertEqual(
      load("queue: { size: 8 }").diagnostics.map(\.description),
      ["/cfg/test.yaml:7:39: backend 'app': queue needs max_concurrent_requests (requests wait for one of its slots)"])
    XCTAssertEqual(load("max_concurrent_requests: 0").diagnostics.count, 1)
    XCTAssertEqual(load("max_concurrent_requests: 1, queue: { timeout: 2h }").diagnostics.count, 1)
  }
}

final class RetriesHealthFaultMirrorConfigTests: XCTestCase {
  func load(route: String = "", backend: String = "") -> LoadResult {
    ConfigLoader.load(
      text: """
        version: 1
        listeners:
          - listen: 127.0.0.1:8080
            routes:
              - backend: app
                \(route)
        backends:
          app: { endpoints: [127.0.0.1:9000, 127.0.0.1:9001], \(backend) }
          shadow: { endpoints: [127.0.0.1:9100] }

        """, file: "/cfg/test.yaml", environment: [:])
  }

  func messages(route: String = "", backend: String = "") -> [String] {
    load(route: route, backend: backend).diagnostics.map(\.message)
  }

  func testRetriesDefaultsAndKeys() throws {
    let plain = try XCTUnwrap(load(route: "retries: {}").configuration).listeners[0].routes[0].retries
    XCTAssertEqual(plain, RetryPolicy())
    XCTAssertEqual(plain?.attempts, 2)
    XCTAssertEqual(plain?.conditions, ["connect-failure", "reset"])
    let config = try XCTUnwrap(
      load(
        route: """
          retries: { attempts: 3, on: [timeout, "503", 5xx], per_try_timeout: 2s, budget: 25%, backoff: { base: 10ms, max: 100ms }, replay_buffer: 8KiB, retry_non_idempotent: true }
          """
      ).configuration)
    let p = try XCTUnwrap(config.listeners[0].routes[0].retries)
    XCTAssertEqual(p.attempts, 3)
    XCTAssertFalse(p.onConnectFailure)
    XCTAssertTrue(p.onTimeout)
    XCTAssertEqual(p.statuses.count, 100)
    XCTAssertEqual(p.perTryTimeout, .seconds(2))
    XCTAssertEqual(p.budget, 0.25)
    XCTAssertEqual(p.backoffBase, .milliseconds(10))
    XCTAssertEqual(p.replayBuffer.bytes, 8192)
    XCTAssertTrue(p.nonIdempotent)
    let json = ConfigJSON.render(config).rendered()
    XCTAssertTrue(json.contains("\"budget\":\"25%\""), json)
    XCTAssertTrue(json.contains("\"stream_idle_timeout\":\"5m\""), json)
  }

  func testRetriesErrorsAndWarning() {
    XCTAssertEqual(messages(route: "retries: { attempts: 11 }").count, 1)
    XCTAssertEqual(
      messages(route: "retries: { on: [sometimes] }"),
      ["route 'listener-0.0'.retries.on: 'sometimes' is not connect-failure, reset, timeout, 5xx or a status like \"503\""])
    XCTAssertEqual(messages(route: "retries: { on: [] }").count, 1)
    XCTAssertEqual(messages(route: "retries: { budget: 20 }").count, 1, "a budget is a percentage with its sign")
    XCTAssertEqual(messages(route: "retries: { backoff: { base: 1s, max: 10ms } }").count, 1)
    XCTAssertEqual(messages(route: "retries: { replay_buffer: 1GiB }").count, 1)
    let warned = load(route: "retries: { per_try_timeout: 30s }")
    XCTAssertNotNil(warned.configuration)
    XCTAssertEqual(warned.diagnostics.filter { $0.severity == .warning }.count, 1)
  }

  func testHealthCheckAndOutlierDetection() throws {
    let config = try XCTUnwrap(
      load(
        backend: """
          health_check: { path: /ready, interval: 5s, timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 4, jitter: 0ms, host: svc.internal }, outlier_detection: { consecutive_failures: 2, eject_for: 5s, max_ejected: 30% }
          """
      ).configuration)
    let h = try XCTUnwrap(config.backends[0].healthCheck)
    XCTAssertEqual(h.path, "/ready")
    XCTAssertEqual(h.interval, .seconds(5))
    XCTAssertEqual(h.unhealthyThreshold, 4)
    XCTAssertEqual(h.host, "svc.internal")
    let o = try XCTUnwrap(config.backends[0].outlierDetection)
    XCTAssertEqual(o.consecutiveFailures, 2)
    XCTAssertEqual(o.maxEjected, 0.3)
    let defaults = try XCTUnwrap(load(backend: "health_check: { interval: 500ms }").configuration)
    XCTAssertEqual(defaults.backends[0].healthCheck?.timeout, .milliseconds(500), "the timeout fits the interval")
    XCTAssertEqual(defaults.backends[0].healthCheck?.jitter, .milliseconds(50))
    XCTAssertEqual(messages(backend: "health_check: { path: healthz }").count, 1)
    XCTAssertEqual(messages(backend: "health_check: { interval: 1s, timeout: 2s }").count, 1)
    XCTAssertEqual(messages(backend: "health_check: { interval: 10ms }").count, 1)
    XCTAssertEqual(messages(backend: "outlier_detection: { consecutive_failures: 0, eject_for: 2h }").count, 2)
  }

  func testFaultAndMirror() throws {
    let config = try XCTUnwrap(
      load(
        route: """
          fault: { delay: { percent: 12.5, duration: 200ms }, abort: { percent: "1%", status: 503 } }
                  mirror: { backend: shadow, percent: 5 }
          """
      ).configuration)
    let route = config.listeners[0].routes[0]
    XCTAssertEqual(route.fault?.delayShare, 0.125)
    XCTAssertEqual(route.fault?.delay, .milliseconds(200))
    XCTAssertEqual(route.fault?.abortShare, 0.01)
    XCTAssertEqual(route.mirror?.backend, "shadow")
    XCTAssertEqual(route.mirror?.share, 0.05)
    XCTAssertEqual(messages(route: "fault: { delay: { percent: 10 } }"), ["route 'listener-0.0'.fault.delay needs 'duration'"])
    XCTAssertEqual(messages(route: "fault: { abort: { percent: 101, status: 99 } }").count, 2)
    XCTAssertEqual(messages(route: "fault: {}").count, 1)
    XCTAssertEqual(
      messages(route: "mirror: { backend: nowhere }"),
      ["route 'listener-0.0' names backend 'nowhere', which is not defined in 'backends'"])
  }
}
