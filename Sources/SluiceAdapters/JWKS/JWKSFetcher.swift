import NIOCore
import NIOSSL
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// Keeps one provider's `jwks_url` fetched: at start, every `jwks_refresh`, and on demand
/// when a token names an unknown `kid` — single-flight (requests that ask while a fetch runs
/// wait for that fetch) and at most one on-demand fetch per `minOnDemandInterval`, so a flood
/// of random `kid`s costs the key server one fetch per interval.
///
/// A key server that is down at start does not stop the gateway: the provider's routes answer
/// 503 while it waits, and it retries with backoff (1 s doubling, capped at 30 s and at
/// `jwks_refresh`). A failed refresh keeps the last good keys (`use_cached`) or makes the
/// provider answer 503 (`deny`) until a fetch succeeds. All state is confined to one event
/// loop; the request path only reads the `KeyStore`.
public final class JWKSFetcher: KeyRefresher, @unchecked Sendable {
  // Safe: every mutable field is touched only on `eventLoop`.
  public static let minOnDemandInterval = TimeAmount.seconds(5)
  public static let maxBody = 1 << 20

  public let provider: String
  public private(set) var fetch: KeyFetch
  var algorithms: Set<JWTAlgorithm>
  let eventLoop: any EventLoop
  let successes: Counter
  let failures: Counter
  var tls: NIOSSLContext?
  var tlsError: String?
  var inFlight = false
  var waiters: [@Sendable () -> Void] = []
  var lastStart: NIODeadline?
  /// The last fetch started for an unknown `kid` (scheduled fetches do not count).
  var lastOnDemand: NIODeadline?
  var timer: Scheduled<Void>?
  var failuresInARow = 0
  var stopped = false

  public init(fetch: KeyFetch, eventLoop: any EventLoop, metrics: MetricsRegistry) {
    self.provider = fetch.provider
    self.fetch = fetch
    self.algorithms = fetch.algorithms
    self.eventLoop = eventLoop
    successes = metrics.counter(
      "sluice_jwks_fetches_total", help: "JWKS fetches by provider and result.",
      labels: [("provider", fetch.provider), ("result", "success")])
    failures = metrics.counter(
      "sluice_jwks_fetches_total", help: "JWKS fetches by provider and result.",
      labels: [("provider", fetch.provider), ("result", "failure")])
    makeTLS()
  }

  func makeTLS() {
    guard fetch.url.tls else { return }
    do {
      tls = try OneShotHTTPClient.tlsContext(caFile: fetch.caFile)
    } catch {
      tlsError = "\(error)"
    }
  }

  public func start() {
    fetch.store.refresher = self
    eventLoop.execute { self.fetchNow() }
  }

  /// A reload kept the provider: take its new refresh interval, timeout and CA.
  public func update(_ new: KeyFetch) {
    eventLoop.execute {
      let caChanged = new.caFile != self.fetch.caFile
      self.fetch = new
      self.algorithms = new.algorithms
      new.store.refresher = self
      if caChanged { self.makeTLS() }
    }
  }

  public func stop() {
    eventLoop.execute {
      self.stopped = true
      self.timer?.cancel()
      self.timer = nil
      if self.fetch.store.refresher === self { self.fetch.store.refresher = nil }
      let waiters = self.waiters
      self.waiters = []
      for done in waiters { done() }
    }
  }

  public func refreshForUnknownKID(_ done: @escaping @Sendable () -> Void) {
    eventLoop.execute {
      if self.stopped {
        done()
        return
      }
      if self.inFlight {
        self.waiters.append(done)
        return
      }
      if let last = self.lastOnDemand, NIODeadline.now() - last < Self.minOnDemandInterval {
        done()
        return
      }
      self.lastOnDemand = .now()
      self.waiters.append(done)
      self.fetchNow()
    }
  }

  func fetchNow() {
    guard !stopped, !inFlight else { return }
    inFlight = true
    lastStart = .now()
    timer?.cancel()
    timer = nil
    if fetch.url.tls && tls == nil {
      finish(.failure(OneShotHTTPError.tls(tlsError ?? "no TLS context")))
      return
    }
    OneShotHTTPClient.request(
      method: .GET, url: fetch.url, headers: [("accept", "application/json")], timeout: fetch.timeout.timeAmount,
      maxBody: Self.maxBody, tls: tls, on: eventLoop
    ).whenComplete { result in
      self.finish(result)
    }
  }

  func finish(_ result: Result<OneShotResponse, any Error>) {
    inFlight = false
    var problem: String?
    switch result {
    case .success(let response) where response.status == 200:
      switch JWKSParser.parse(response.body, allowed: algorithms) {
      case .success(let keys):
        fetch.store.install(keys)
      case .failure(let error):
        problem = "\(error)"
      }
    case .success(let response):
      problem = "the key server answered \(response.status)"
    case .failure(let error):
      problem = "\(error)"
    }
    if let problem {
      failures.increment()
      failuresInARow += 1
      fetch.store.refreshFailed(problem)
      let waiting = fetch.store.isWaiting
      Log.warning(
        waiting ? "JWKS fetch failed; the provider has no keys yet and its routes answer 503" : "JWKS refresh failed",
        [("provider", provider), ("url", fetch.url.description), ("error", problem)])
    } else {
      successes.increment()
      failuresInARow = 0
    }
    let waiters = self.waiters
    self.waiters = []
    for done in waiters { done() }
    schedule()
  }

  func schedule() {
    guard !stopped else { return }
    var delay = fetch.refresh.timeAmount
    if failuresInARow > 0 {
      let backoff = TimeAmount.seconds(Int64(min(30, 1 << min(failuresInARow - 1, 5))))
      delay = min(delay, backoff)
    }
    timer = eventLoop.scheduleTask(in: delay) { [self] in
      self.timer = nil
      self.fetchNow()
    }
  }

  /// For /metrics and logs: seconds since the keys in use were fetched (nil: none yet).
  public var keysAge: Double? { fetch.store.ageSeconds() }
}

extension ConfigDuration {
  var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }
}
