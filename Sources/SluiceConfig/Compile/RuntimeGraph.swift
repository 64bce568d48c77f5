import Atomics
import NIOSSL
import SluiceCore
import SluiceFeatures

/// State that must outlive any one config: endpoint counters, round-robin tickets and metric
/// series, kept by stable names. `compile` looks things up here, so a reload keeps them for
/// unchanged backends (ARCHITECTURE.md rule 3).
public final class PersistentState: @unchecked Sendable {
  // Safe: `lock` guards the maps; the values are Sendable atomics.
  public let metrics: MetricsRegistry
  let lock = Mutex()
  var endpointStats: [String: EndpointStats] = [:]
  var tickets: [String: ManagedAtomic<Int>] = [:]
  var generation = 0
  var keyStores: [String: KeyStore] = [:]
  var localLimits: [String: LocalLimitStore] = [:]
  var breakers: [String: BreakerBox] = [:]
  var gates: [String: ConcurrencyGate] = [:]
  var outliers: [String: OutlierBox] = [:]
  var retryCounts: [String: ManagedAtomic<Int>] = [:]

  /// A backend's outlier detector: the same object while its policy and endpoint count are
  /// unchanged (ejections survive a reload).
  func outlier(backend: String, policy: OutlierDetector.Policy, endpoints: Int) -> OutlierBox {
    lock.withLock {
      if let o = outliers[backend], o.policy == policy, o.endpointCount == endpoints { return o }
      let o = OutlierBox(policy: policy, endpoints: endpoints)
      outliers[backend] = o
      return o
    }
  }

  /// Retries in flight to a backend (the retry budget's numerator), for the process.
  func retryCount(backend: String) -> ManagedAtomic<Int> {
    lock.withLock {
      if let c = retryCounts[backend] { return c }
      let c = ManagedAtomic<Int>(0)
      retryCounts[backend] = c
      return c
    }
  }

  /// A backend's concurrency gate: the same object while its limits are unchanged (requests in
  /// flight across a reload keep their slots).
  func gate(backend: String, limit: Int, size: Int, timeout: Int64) -> ConcurrencyGate {
    lock.withLock {
      if let g = gates[backend], g.limit == limit, g.size == size, g.timeout == timeout { return g }
      let g = ConcurrencyGate(limit: limit, size: size, timeout: timeout)
      gates[backend] = g
      return g
    }
  }

  /// A backend's circuit breaker: the same object while the backend's breaker settings are
  /// unchanged (its state survives a reload).
  func breaker(backend: String, policy: CircuitBreakerPolicy) -> BreakerBox {
    lock.withLock {
      if let b = breakers[backend], b.policy == policy { return b }
      let b = BreakerBox(policy: policy)
      breakers[backend] = b
      return b
    }
  }
  var sharedStores: [String: (fingerprint: String, store: SharedStore)] = [:]

  /// A local limit's state: the same object while the limit's definition is unchanged.
  func localLimit(_ limit: RateLimitConfig) -> LocalLimitStore {
    lock.withLock {
      let key = limit.name + "|" + limit.fingerprint
      if let s = localLimits[key] { return s }
      localLimits = localLimits.filter { !$0.key.hasPrefix(limit.name + "|") }
      let s = LocalLimitStore(rule: limit.rule, maxKeys: limit.maxKeys)
      localLimits[key] = s
      return s
    }
  }

  /// A shared store's handle: the same object (and client) while its definition is unchanged.
  func sharedStore(_ config: StoreConfig) -> SharedStore {
    lock.withLock {
      if let s = sharedStores[config.name], s.fingerprint == config.fingerprint { return s.store }
      let s = SharedStore(name: config.name)
      sharedStores[config.name] = (config.fingerprint, s)
      return s
    }
  }

  func keyStore(provider: String, url: String) -> KeyStore {
    lock.withLock {
      let key = provider + "|" + url
      if let s = keyStores[key] { return s }
      let s = KeyStore()
      keyStores[key] = s
      return s
    }
  }

  public init(metrics: MetricsRegistry = MetricsRegistry()) { self.metrics = metrics }

  func stats(backend: String, address: String) -> EndpointStats {
    lock.withLock {
      let key = backend + "|" + address
      if let s = endpointStats[key] { return s }
      let s = EndpointStats(address: address)
      endpointStats[key] = s
      return s
    }
  }

  func ticket(backend: String) -> ManagedAtomic<Int> {
    lock.withLock {
      if let t = tickets[backend] { return t }
      let t = ManagedAtomic<Int>(0)
      tickets[backend] = t
      return t
    }
  }

  func nextGeneration() -> Int {
    lock.withLock {
      generation += 1
      return generation
    }
  }
}

/// The immutable runtime graph of one config generation: routers, backends, metric handles.
/// Built once per (re)load off the event loops and swapped in whole; a request holds the
/// generation it started on until it finishes.
public final class RuntimeGraph: Sendable {
  public let generation: Int
  public let configuration: SluiceConfiguration
  public let listeners: [String: ListenerRuntime]
  public let backends: [String: BackendRuntime]
  public let backendOrder: [String]
  /// Read per request; kept here so the request path does not copy the observability
  /// section (a struct of strings: a retain and release each) to reach them.
  public let requestIDHeader: String
  public let propagateTracing: Bool
  /// JWT providers with a `jwks_url`: the gateway keeps one fetcher per entry running.
  public let keyFetches: [KeyFetch]
  public let audit: AuditFanout
  /// Redis stores in use, with their definitions: the gateway keeps one client per entry.
  public let stores: [(config: StoreConfig, store: SharedStore)]
  public let admissionMetrics: AdmissionMetrics

  init(
    generation: Int, configuration: SluiceConfiguration, listeners: [String: ListenerRuntime],
    backends: [String: BackendRuntime], backendOrder: [String], keyFetches: [KeyFetch], audit: AuditFanout,
    stores: [(config: StoreConfig, store: SharedStore)], admissionMetrics: AdmissionMetrics
  ) {
    self.stores = stores
    self.admissionMetrics = admissionMetrics
    self.keyFetches = keyFetches
    self.audit = audit
    self.generation = generation
    self.configuration = configuration
    self.requestIDHeader = configuration.observability.requestIDHeader
    self.propagateTracing = configuration.observability.propagateTracing
    self.listeners = listeners
    self.backends = backends
    self.backendOrder = backendOrder
  }
}

public final class ListenerRuntime: Sendable {
  public let name: String
  public let config: ListenerConfig
  public let router: Router<RouteRuntime>
  /// Requests that matched no route, or were refused before routing (route="", backend="").
  public let unrouted: StatusCounters
  public let activeConnections: Gauge
  /// `https`: the certificate for a ClientHello's server name.
  public let certificates: CertificateSelector?
  /// `tls_passthrough`: connections and bytes per backend (and "" for refused connections).
  public let tcp: [String: TCPMetrics]

  init(
    name: String, config: ListenerConfig, router: Router<RouteRuntime>, certificates: CertificateSelector? = nil,
    tcp: [String: TCPMetrics] = [:], unrouted: StatusCounters, activeConnections: Gauge
  ) {
    self.certificates = certificates
    self.tcp = tcp
    self.name = name
    self.config = config
    self.router = router
    self.unrouted = unrouted
    self.activeConnections = activeConnections
  }

  public func isTrustedProxy(_ ip: [UInt8]) -> Bool { config.trustedProxies.contains { $0.contains(ip) } }
}

/// An https listener's certificates by server name. A ClientHello without a server name, or
/// with one no certificate lists, gets the first certificate (nginx's default server, Envoy's
/// first filter chain): a client that checks names then refuses it, which says more than a
/// closed connection.
public final class CertificateSelector: Sendable {
  let table: ServerNameTable<ServerCertificate>
  public let fallback: ServerCertificate

  init?(_ tls: ListenerTLS) {
    let loaded = tls.certificates.compactMap { c in c.material.map { (c, $0) } }
    guard let first = loaded.first else { return nil }
    fallback = first.1
    table = ServerNameTable(loaded.flatMap { c, m in c.serverNames.map { (name: $0, payload: m) } })
  }

  public func select(_ serverName: String?) -> ServerCertificate {
    guard let serverName else { return fallback }
    return table.lookup(serverName) ?? fallback
  }
}

/// `sluice_tcp_connections_total` and `sluice_tcp_bytes_total` of one passthrough listener and
/// backend.
public final class TCPMetrics: Sendable {
  public let spliced: Counter
  public let refused: Counter
  public let connectFailed: Counter
  public let bytesToUpstream: Counter
  public let bytesToClient: Counter

  init(listener: String, backend: String, metrics: MetricsRegistry) {
    func connections(_ result: String) -> Counter {
      metrics.counter(
        "sluice_tcp_connections_total",
        help: "Connections of tls_passthrough listeners: spliced, refused (no hello, no route), connect_failed.",
        labels: [("listener", listener), ("backend", backend), ("result", result)])
    }
    func bytes(_ direction: String) -> Counter {
      metrics.counter(
        "sluice_tcp_bytes_total", help: "Bytes spliced by tls_passthrough listeners, by direction.",
        labels: [("listener", listener), ("backend", backend), ("direction", direction)])
    }
    spliced = connections("spliced")
    refused = connections("refused")
    connectFailed = connections("connect_failed")
    bytesToUpstream = bytes("upstream")
    bytesToClient = bytes("downstream")
  }
}

/// A route with everything the data plane needs resolved: targets, header edits, handles.
public final class RouteRuntime: Sendable {
  public let name: String
  /// `name` as a JSON literal, for the access log.
  public let jsonName: JSONString
  public let config: RouteConfig
  /// What `config.requestHeaders` and `config.responseHeaders` touch.
  public let requestEdits: HeaderEditIndex
  public let responseEdits: HeaderEditIndex
  public let target: RouteTarget
  /// For direct responses (backend label "").
  public let directCounters: StatusCounters
  public let directDuration: Histogram
  /// Steps between route match and backend choice; empty on a bare route (no cost).
  public let admission: [AdmissionStep]
  public let cors: CORSPolicy?
  /// `mirror:`, resolved.
  public let mirror: MirrorRuntime?
  /// `retries:` (read off the request path's common case: only after a failed try).
  public let retryPolicy: RetryPolicy?
  /// Request body bytes kept for a retry; 0 when the route does not retry.
  public let replayLimit: Int
  /// Some upstream statuses are retried: the response head is checked before it is forwarded.
  public let retriesOnStatus: Bool
  public let fault: FaultConfig?
  /// `stream_idle_timeout` in nanoseconds.
  public let streamIdleNanos: Int64

  init(
    name: String, config: RouteConfig, requestIDHeader: String, target: RouteTarget, directCounters: StatusCounters,
    directDuration: Histogram, admission: [AdmissionStep] = [], mirror: MirrorRuntime? = nil
  ) {
    self.mirror = mirror
    self.retryPolicy = config.retries
    // A mirror needs the body too: without `retries`, the default replay buffer keeps it.
    self.replayLimit = config.retries?.replayBuffer.bytes ?? (config.mirror != nil ? RetryPolicy().replayBuffer.bytes : 0)
    self.retriesOnStatus = !(config.retries?.statuses.isEmpty ?? true)
    self.fault = config.fault.flatMap { $0.delayShare > 0 || $0.abortShare > 0 ? $0 : nil }
    self.streamIdleNanos = config.streamIdleTimeout.nanoseconds
    self.admission = admission
    self.cors = config.cors
    self.name = name
    self.jsonName = JSONString(name)
    self.config = config
    self.requestEdits = HeaderEditIndex(config.requestHeaders, requestIDHeader: requestIDHeader)
    self.responseEdits = HeaderEditIndex(config.responseHeaders, requestIDHeader: requestIDHeader)
    self.target = target
    self.directCounters = directCounters
    self.directDuration = directDuration
  }
}

public enum RouteTarget: Sendable {
  case backend(BackendTarget)
  case split(WeightedChoice, [BackendTarget])
  case direct(DirectResponse)
}

/// One backend as seen from one route: the backend plus this route's metric handles for it.
public final class BackendTarget: Sendable {
  public let backend: BackendRuntime
  public let requests: StatusCounters
  public let duration: Histogram
  /// `sluice_retries_total{route,backend}`, on routes with `retries`.
  public let retries: Counter?

  init(backend: BackendRuntime, requests: StatusCounters, duration: Histogram, retries: Counter?) {
    self.backend = backend
    self.requests = requests
    self.duration = duration
    self.retries = retries
  }
}

/// A route's mirror: the backend copies go to, and what became of them
/// (`sluice_mirror_requests_total{route,backend,result}`).
public final class MirrorRuntime: Sendable {
  public let backend: BackendRuntime
  public let share: Double
  public let sent: Counter
  public let failed: Counter
  public let dropped: Counter

  init(backend: BackendRuntime, share: Double, route: String, metrics: MetricsRegistry) {
    self.backend = backend
    self.share = share
    func counter(_ result: String) -> Counter {
      metrics.counter(
        "sluice_mirror_requests_total",
        help: "Mirrored copies of requests: sent, failed (no answer or an error), dropped (too many in flight, body not kept).",
        labels: [("route", route), ("backend", backend.name), ("result", result)])
    }
    sent = counter("sent")
    failed = counter("failed")
    dropped = counter("dropped")
  }
}

public final class BackendRuntime: Sendable {
  public let name: String
  /// `name` as a JSON literal, for the access log.
  public let jsonName: JSONString
  public let config: BackendConfig
  public let endpoints: [EndpointRuntime]
  public let picker: EndpointPicker
  public let upstreamDuration: Histogram
  public let connectFailures: Counter
  public let activeConnections: Gauge
  public let idleConnections: Gauge
  /// `circuit_breaker`, with `sluice_circuit_breaker_state{backend}`.
  public let breaker: BreakerBox?
  public let breakerGauge: Gauge
  /// `max_concurrent_requests` / `queue`, with `sluice_overload_rejections_total{backend}`.
  public let gate: ConcurrencyGate?
  public let overloadRejections: Counter
  /// Health checks or outlier detection configured: the picker skips endpoints that are out.
  public let checksAvailability: Bool
  public let outlier: OutlierBox?
  /// `sluice_backend_healthy_endpoints{backend}`: healthy and not ejected.
  public let healthyGauge: Gauge
  /// Retries in flight (the retry budget), for the process.
  public let activeRetries: ManagedAtomic<Int>

  init(
    name: String, config: BackendConfig, endpoints: [EndpointRuntime], picker: EndpointPicker,
    upstreamDuration: Histogram, connectFailures: Counter, activeConnections: Gauge, idleConnections: Gauge,
    breaker: BreakerBox?, breakerGauge: Gauge, gate: ConcurrencyGate?, overloadRejections: Counter,
    outlier: OutlierBox?, healthyGauge: Gauge, activeRetries: ManagedAtomic<Int>
  ) {
    self.checksAvailability = config.healthCheck != nil || config.outlierDetection != nil
    self.outlier = outlier
    self.healthyGauge = healthyGauge
    self.activeRetries = activeRetries
    self.gate = gate
    self.overloadRejections = overloadRejections
    self.breaker = breaker
    self.breakerGauge = breakerGauge
    self.name = name
    self.jsonName = JSONString(name)
    self.config = config
    self.endpoints = endpoints
    self.picker = picker
    self.upstreamDuration = upstreamDuration
    self.connectFailures = connectFailures
    self.activeConnections = activeConnections
    self.idleConnections = idleConnections
  }

  /// Endpoints that may receive traffic now (healthy and not ejected).
  public func availableCount(now: Int64) -> Int {
    endpoints.reduce(0) { $0 + ($1.stats.available(now: { now }) ? 1 : 0) }
  }

  /// Sets `sluice_backend_healthy_endpoints` from the endpoints' state.
  public func refreshHealthyGauge(now: Int64) { healthyGauge.set(availableCount(now: now)) }

  /// Requests in flight to the backend's endpoints (the retry budget's denominator).
  public var inFlight: Int { endpoints.reduce(0) { $0 + $1.stats.inFlight.load(ordering: .relaxed) } }
}

public final class EndpointRuntime: Sendable {
  public let address: HostPort
  /// `host:port`, the pool key: pools are shared by every backend that names the endpoint.
  public let key: String
  /// `key` as a JSON literal, for the access log.
  public let jsonKey: JSONString
  public let stats: EndpointStats
  /// Position in the backend's endpoint list (the outlier detector's index).
  public let index: Int
  /// The upstream pool's key: `key`, plus the TLS settings when the backend speaks TLS (two
  /// backends that name one address with different TLS must not share connections).
  public let poolKey: String
  /// Upstream TLS: the context, and the name sent as SNI and verified (nil for an IP endpoint
  /// without `server_name`: then the IP is verified).
  public let tls: (context: NIOSSLContext, serverName: String?)?

  init(address: HostPort, stats: EndpointStats, index: Int, tls: BackendTLS? = nil) {
    self.index = index
    self.address = address
    if let tls, let context = tls.context {
      self.tls = (context, tls.serverName ?? (IPAddress.parse(address.host) == nil ? address.host : nil))
      self.poolKey = address.description + "|" + tls.poolKey
    } else {
      self.tls = nil
      self.poolKey = address.description
    }
    self.key = address.description
    self.jsonKey = JSONString(key)
    self.stats = stats
  }
}

/// Validate's output → the runtime graph.
/// A JWKS URL to keep fetched, and the store its keys go into.
public struct KeyFetch: Sendable {
  public let provider: String
  public let url: HTTPURL
  public let store: KeyStore
  public let refresh: ConfigDuration
  public let timeout: ConfigDuration
  public let caFile: String?
  public let algorithms: Set<JWTAlgorithm>
}

public enum Compiler {
  public static func compile(_ config: SluiceConfiguration, state: PersistentState, audit: [AuditRoute] = []) -> RuntimeGraph {
    let metrics = state.metrics
    let sharedStores = RateLimitCompiler.stores(config, state: state)
    let providers = AuthCompiler.providers(config, state: state, stores: sharedStores)
    let placements = RateLimitCompiler.placements(config, state: state, stores: sharedStores)
    var keyFetches: [KeyFetch] = []
    for provider in config.auth {
      guard case .jwt(let c) = provider.kind, case .url(let text) = c.keySource, let url = HTTPURL.parse(text),
        case .jwt(let runtime)? = providers[provider.name]
      else { continue }
      keyFetches.append(
        KeyFetch(
          provider: provider.name, url: url, store: runtime.keys, refresh: c.jwksRefresh, timeout: c.jwksTimeout,
          caFile: c.jwksCA, algorithms: Set(c.algorithms)))
    }
    var backends: [String: BackendRuntime] = [:]
    for b in config.backends {
      let healthyGauge = metrics.gauge(
        "sluice_backend_healthy_endpoints", help: "Endpoints of a backend that may receive traffic (healthy, not ejected).",
        labels: [("backend", b.name)])
      let endpoints = b.endpoints.enumerated().map {
        EndpointRuntime(address: $1, stats: state.stats(backend: b.name, address: $1.description), index: $0, tls: b.tls)
      }
      if b.healthCheck == nil {
        // No prober: an endpoint that a removed health check had marked down is back.
        for e in endpoints { e.stats.unhealthy.store(false, ordering: .relaxed) }
      }
      if b.outlierDetection == nil {
        for e in endpoints { e.stats.ejectedUntil.store(0, ordering: .relaxed) }
      }
      let outlier = b.outlierDetection.map {
        state.outlier(
          backend: b.name,
          policy: OutlierDetector.Policy(
            consecutiveFailures: $0.consecutiveFailures, ejectFor: $0.ejectFor.nanoseconds, maxEjectedShare: $0.maxEjected),
          endpoints: endpoints.count)
      }
      let breaker = b.circuitBreaker.map { state.breaker(backend: b.name, policy: $0) }
      let breakerGauge = metrics.gauge(
        "sluice_circuit_breaker_state", help: "A backend's circuit breaker: 0 closed, 1 open, 2 half-open.",
        labels: [("backend", b.name)])
      breakerGauge.set(breaker?.state.gauge ?? 0)
      backends[b.name] = BackendRuntime(
        name: b.name, config: b, endpoints: endpoints,
        picker: EndpointPicker(policy: b.loadBalancing, endpoints: endpoints.map(\.stats), ticket: state.ticket(backend: b.name)),
        upstreamDuration: metrics.histogram(
          "sluice_upstream_request_duration_seconds", help: "Time from sending a request upstream to the last response byte.",
          labels: [("backend", b.name)]),
        connectFailures: metrics.counter(
          "sluice_upstream_connect_failures_total", help: "Failed connection attempts to upstream endpoints.",
          labels: [("backend", b.name)]),
        activeConnections: metrics.gauge(
          "sluice_upstream_connections", help: "Upstream connections by state.", labels: [("backend", b.name), ("state", "active")]),
        idleConnections: metrics.gauge(
          "sluice_upstream_connections", help: "Upstream connections by state.", labels: [("backend", b.name), ("state", "idle")]),
        breaker: breaker,
        breakerGauge: breakerGauge,
        gate: b.maxConcurrentRequests.map {
          state.gate(backend: b.name, limit: $0, size: b.queueSize, timeout: b.queueTimeout.nanoseconds)
        },
        overloadRejections: metrics.counter(
          "sluice_overload_rejections_total", help: "Requests refused with 503 because a backend's queue was full or timed out.",
          labels: [("backend", b.name)]),
        outlier: outlier, healthyGauge: healthyGauge, activeRetries: state.retryCount(backend: b.name))
      backends[b.name]!.refreshHealthyGauge(now: Int64(WallClock.monotonicNanoseconds()))
    }
    func target(_ listener: String, _ route: String, _ backend: String, retries: Bool) -> BackendTarget? {
      guard let b = backends[backend] else { return nil }
      let retryCounter =
        retries
        ? metrics.counter(
          "sluice_retries_total", help: "Retries sent upstream (tries after the first).",
          labels: [("route", route), ("backend", backend)]) : nil
      return BackendTarget(
        backend: b,
        requests: metrics.statusCounters(
          "sluice_http_requests_total", help: "Requests answered, by listener, route, backend and status.",
          labels: [("listener", listener), ("route", route), ("backend", backend)]),
        duration: metrics.histogram(
          "sluice_http_request_duration_seconds", help: "Time from the request head to the last response byte.",
          labels: [("route", route), ("backend", backend)]),
        retries: retryCounter)
    }
    var listeners: [String: ListenerRuntime] = [:]
    for l in config.listeners {
      var entries: [Router<RouteRuntime>.Entry] = []
      for original in l.routes {
        let r = AuthCompiler.effectiveRoute(original, config)
        let t: RouteTarget
        switch r.action {
        case .backend(let name):
          guard let bt = target(l.name, r.name, name, retries: r.retries != nil) else { continue }
          t = .backend(bt)
        case .split(let parts):
          let targets = parts.compactMap { target(l.name, r.name, $0.backend, retries: r.retries != nil) }
          guard targets.count == parts.count else { continue }
          t = .split(WeightedChoice(weights: parts.map(\.weight)), targets)
        case .directResponse(let d):
          t = .direct(d)
        }
        let runtime = RouteRuntime(
          name: r.name, config: r, requestIDHeader: config.observability.requestIDHeader, target: t,
          directCounters: metrics.statusCounters(
            "sluice_http_requests_total", help: "Requests answered, by listener, route, backend and status.",
            labels: [("listener", l.name), ("route", r.name), ("backend", "")]),
          directDuration: metrics.histogram(
            "sluice_http_request_duration_seconds", help: "Time from the request head to the last response byte.",
            labels: [("route", r.name), ("backend", "")]),
          admission: AuthCompiler.steps(r, config, providers: providers, limits: placements, metrics: metrics),
          mirror: r.mirror.flatMap { m in
            backends[m.backend].map { MirrorRuntime(backend: $0, share: m.share, route: r.name, metrics: metrics) }
          })
        entries.append(.init(name: r.name, match: r.match, payload: runtime))
      }
      var tcp: [String: TCPMetrics] = [:]
      if l.protocol == "tls_passthrough" {
        tcp[""] = TCPMetrics(listener: l.name, backend: "", metrics: metrics)
        for route in l.routes {
          switch route.action {
          case .backend(let name): tcp[name] = tcp[name] ?? TCPMetrics(listener: l.name, backend: name, metrics: metrics)
          case .split(let parts):
            for part in parts {
              tcp[part.backend] = tcp[part.backend] ?? TCPMetrics(listener: l.name, backend: part.backend, metrics: metrics)
            }
          case .directResponse: break
          }
        }
      }
      listeners[l.name] = ListenerRuntime(
        name: l.name, config: l, router: Router(entries), certificates: l.tls.flatMap { CertificateSelector($0) }, tcp: tcp,
        unrouted: metrics.statusCounters(
          "sluice_http_requests_total", help: "Requests answered, by listener, route, backend and status.",
          labels: [("listener", l.name), ("route", ""), ("backend", "")]),
        activeConnections: metrics.gauge(
          "sluice_active_connections", help: "Open client connections per listener.", labels: [("listener", l.name)]))
    }
    return RuntimeGraph(
      generation: state.nextGeneration(), configuration: config, listeners: listeners, backends: backends,
      backendOrder: config.backends.map(\.name), keyFetches: keyFetches, audit: AuditFanout(audit),
      stores: config.stores.compactMap { c in sharedStores[c.name].map { (c, $0) } },
      admissionMetrics: AdmissionMetrics(registry: metrics))
  }
}
