import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// Active health checks of one backend, for the whole process: each endpoint is probed every
/// `interval` (plus a random share of `jitter`, so the probes of a fleet spread out) with
/// `GET path` on a fresh connection; a 2xx or 3xx answer within `timeout` is a success.
/// `HealthState` turns the results into a verdict, which goes to the endpoint's
/// `EndpointStats.unhealthy` atomic: every event loop's picker reads it without a lock.
///
/// One prober per backend (not per event loop): a backend of 3 endpoints checked every 15 s
/// costs 12 probes a minute whatever the core count. State is confined to `eventLoop`. A
/// reload that keeps the backend's endpoints and `health_check` keeps the prober; a new prober
/// starts from the verdicts on record, so endpoint state survives either way.
public final class HealthProber: @unchecked Sendable {
  // Safe: every mutable field is touched only on `eventLoop`.
  public static let maxBody = 64 * 1024

  struct Probe {
    let endpoint: EndpointRuntime
    var state: HealthState
    var timer: Scheduled<Void>?
  }

  let eventLoop: any EventLoop
  let config: HealthCheckConfig
  var backend: BackendRuntime
  var probes: [Probe]
  var random = FastRandom()
  var stopped = false
  let successes: Counter
  let failures: Counter

  public init(backend: BackendRuntime, config: HealthCheckConfig, eventLoop: any EventLoop, metrics: MetricsRegistry) {
    self.backend = backend
    self.config = config
    self.eventLoop = eventLoop
    probes = backend.endpoints.map {
      Probe(
        endpoint: $0,
        state: HealthState(
          healthyThreshold: config.healthyThreshold, unhealthyThreshold: config.unhealthyThreshold,
          healthy: !$0.stats.unhealthy.load(ordering: .relaxed)))
    }
    successes = metrics.counter(
      "sluice_health_checks_total", help: "Active health probes by backend and result.",
      labels: [("backend", backend.name), ("result", "success")])
    failures = metrics.counter(
      "sluice_health_checks_total", help: "Active health probes by backend and result.",
      labels: [("backend", backend.name), ("result", "failure")])
  }

  /// What a prober is keyed by: a change of any of these starts a new one.
  public static func key(_ backend: BackendRuntime, _ config: HealthCheckConfig) -> String {
    backend.name + "|" + backend.endpoints.map(\.key).joined(separator: ",") + "|" + String(describing: config)
  }

  public func start() {
    eventLoop.execute {
      // The first probes spread over the first interval's jitter (at least a little), so a
      // gateway that starts with many endpoints does not probe them all in one burst.
      for index in self.probes.indices {
        self.schedule(index, after: self.jitter(max(self.config.jitter.nanoseconds, 50_000_000)))
      }
    }
  }

  /// The same backend in a new config generation (its gauge handle).
  public func update(_ backend: BackendRuntime) {
    eventLoop.execute { self.backend = backend }
  }

  public func stop() {
    eventLoop.execute {
      self.stopped = true
      for index in self.probes.indices {
        self.probes[index].timer?.cancel()
        self.probes[index].timer = nil
      }
    }
  }

  func jitter(_ range: Int64) -> Int64 {
    range > 0 ? Int64(random.next() % UInt64(range)) : 0
  }

  func schedule(_ index: Int, after nanos: Int64) {
    guard !stopped else { return }
    probes[index].timer = eventLoop.scheduleTask(in: .nanoseconds(nanos)) { self.probe(index) }
  }

  func probe(_ index: Int) {
    guard !stopped else { return }
    let endpoint = probes[index].endpoint
    guard let url = HTTPURL.parse("http://" + endpoint.key + config.path) else { return }
    let timeout = TimeAmount.nanoseconds(config.timeout.nanoseconds)
    // A TLS backend is probed over TLS, with its context and name (the request path's rules).
    OneShotHTTPClient.request(
      method: .GET, url: url, timeout: timeout, maxBody: Self.maxBody, tls: endpoint.tls?.context,
      serverName: endpoint.tls?.serverName, hostHeader: config.host,
      on: eventLoop
    ).hop(to: eventLoop).whenComplete { result in
      let ok: Bool
      var why = ""
      switch result {
      case .success(let response):
        ok = (200..<400).contains(response.status)
        if !ok { why = "status \(response.status)" }
      case .failure(let error):
        ok = false
        why = "\(error)"
      }
      self.record(index, ok: ok, why: why)
      self.schedule(index, after: self.config.interval.nanoseconds + self.jitter(self.config.jitter.nanoseconds))
    }
  }

  func record(_ index: Int, ok: Bool, why: String) {
    guard !stopped else { return }
    if ok { successes.increment() } else { failures.increment() }
    guard probes[index].state.record(ok: ok) else { return }
    let endpoint = probes[index].endpoint
    let healthy = probes[index].state.healthy
    endpoint.stats.unhealthy.store(!healthy, ordering: .relaxed)
    backend.refreshHealthyGauge(now: Int64(WallClock.monotonicNanoseconds()))
    if healthy {
      Log.info("endpoint healthy", [("backend", backend.name), ("endpoint", endpoint.key)])
    } else {
      Log.warning("endpoint unhealthy", [("backend", backend.name), ("endpoint", endpoint.key), ("reason", why)])
    }
  }
}
