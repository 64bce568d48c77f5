import SluiceCore

/// Active health checking of one endpoint: `unhealthy_threshold` failed probes in a row mark
/// it unhealthy, `healthy_threshold` good ones in a row mark it healthy again. Endpoints start
/// healthy, so a fresh gateway (or a reload that adds an endpoint) sends traffic at once; the
/// first failed probes take a bad one out.
public struct HealthState: Sendable, Hashable {
  public let healthyThreshold: Int
  public let unhealthyThreshold: Int
  public private(set) var healthy = true
  var run = 0

  public init(healthyThreshold: Int, unhealthyThreshold: Int, healthy: Bool = true) {
    self.healthyThreshold = max(1, healthyThreshold)
    self.unhealthyThreshold = max(1, unhealthyThreshold)
    self.healthy = healthy
  }

  /// One probe's result; true when the endpoint's health changed.
  public mutating func record(ok: Bool) -> Bool {
    if ok == healthy {
      run = 0
      return false
    }
    run += 1
    if run >= (healthy ? unhealthyThreshold : healthyThreshold) {
      healthy = ok
      run = 0
      return true
    }
    return false
  }
}

/// Passive outlier detection over a backend's endpoints: `consecutive_failures` failures in a
/// row (connect failure, reset, timeout, 5xx) eject an endpoint for `eject_for` × the number of
/// times it has been ejected (capped at `maxEjectFor`); at most `maxEjectedShare` of the
/// endpoints are out at once, but one may always be (so a backend of two can eject its bad
/// one), as in Envoy. An ejected endpoint comes back when its time is up.
public struct OutlierDetector: Sendable {
  public struct Policy: Sendable, Hashable {
    public var consecutiveFailures: Int
    public var ejectFor: Int64
    public var maxEjectFor: Int64
    public var maxEjectedShare: Double

    public init(consecutiveFailures: Int, ejectFor: Int64, maxEjectFor: Int64? = nil, maxEjectedShare: Double = 0.5) {
      self.consecutiveFailures = max(1, consecutiveFailures)
      self.ejectFor = ejectFor
      self.maxEjectFor = maxEjectFor ?? ejectFor * 10
      self.maxEjectedShare = maxEjectedShare
    }
  }

  struct Endpoint: Sendable, Hashable {
    var failuresInARow = 0
    var ejectedUntil: Int64?
    var ejections = 0
    var lastEnd: Int64?
  }

  public let policy: Policy
  var endpoints: [Endpoint]

  public init(policy: Policy, endpoints: Int) {
    self.policy = policy
    self.endpoints = Array(repeating: Endpoint(), count: endpoints)
  }

  /// Returns endpoints whose ejection ended by `now` to service.
  public mutating func expire(now: Int64) {
    for i in endpoints.indices {
      if let until = endpoints[i].ejectedUntil, until <= now { endpoints[i].ejectedUntil = nil }
    }
  }

  public func isEjected(_ index: Int, now: Int64) -> Bool {
    guard let until = endpoints[index].ejectedUntil else { return false }
    return until > now
  }

  public func ejectedCount(now: Int64) -> Int { endpoints.indices.filter { isEjected($0, now: now) }.count }

  /// Records one request's outcome on endpoint `index`; true when this ejected it.
  public mutating func record(_ index: Int, failure: Bool, now: Int64) -> Bool {
    expire(now: now)
    guard failure else {
      endpoints[index].failuresInARow = 0
      return false
    }
    endpoints[index].failuresInARow += 1
    guard endpoints[index].failuresInARow >= policy.consecutiveFailures else { return false }
    return eject(index, now: now) != nil
  }

  /// Ejects endpoint `index`, which just failed `consecutive_failures` times in a row (the
  /// data plane counts the streak itself, lock-free, and calls this when it reaches the
  /// threshold). Returns when the ejection ends, or nil when the endpoint is already out or the
  /// share of ejected endpoints is reached. An endpoint whose last ejection ended more than
  /// `maxEjectFor` ago starts again from `eject_for`.
  public mutating func eject(_ index: Int, now: Int64) -> Int64? {
    expire(now: now)
    endpoints[index].failuresInARow = 0
    guard !isEjected(index, now: now) else { return nil }
    let allowed = max(1, Int(Double(endpoints.count) * policy.maxEjectedShare))
    guard ejectedCount(now: now) < allowed else { return nil }
    if let ended = endpoints[index].lastEnd, now - ended >= policy.maxEjectFor { endpoints[index].ejections = 0 }
    endpoints[index].ejections += 1
    let duration = min(policy.maxEjectFor, policy.ejectFor * Int64(endpoints[index].ejections))
    let until = now + duration
    endpoints[index].ejectedUntil = until
    endpoints[index].lastEnd = until
    return until
  }

  /// An endpoint that stayed healthy through a whole `eject_for` after coming back has its
  /// ejection count reset (the next ejection is short again).
  public mutating func forgive(_ index: Int) { endpoints[index].ejections = 0 }
}

/// A backend's outlier detector, shared by every event loop. The lock is taken only when an
/// endpoint's failure streak (an atomic on `EndpointStats`) reaches the threshold, never for a
/// success.
public final class OutlierBox: @unchecked Sendable {
  // Safe: `detector` is only touched under `lock`.
  let lock = Mutex()
  var detector: OutlierDetector
  public let policy: OutlierDetector.Policy
  public let endpointCount: Int

  public init(policy: OutlierDetector.Policy, endpoints: Int) {
    self.policy = policy
    self.endpointCount = endpoints
    self.detector = OutlierDetector(policy: policy, endpoints: endpoints)
  }

  public func eject(_ index: Int, now: Int64) -> Int64? { lock.withLock { detector.eject(index, now: now) } }
}
