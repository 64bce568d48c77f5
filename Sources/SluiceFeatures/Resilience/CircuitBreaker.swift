import SluiceCore

/// `circuit_breaker` on a backend: when too many requests fail, stop sending any for a while,
/// then let a few probes decide whether to start again. One state machine per backend for the
/// whole process (the request path holds it behind a lock; this type is plain data).
///
/// Times are nanoseconds on one monotonic clock, passed in by the caller: tests drive it with a
/// manual clock, the gateway with `WallClock.monotonicNanoseconds()`.
public struct CircuitBreakerPolicy: Sendable, Hashable {
  /// Share of failed requests (0…1) over `window` that opens the breaker.
  public var errorRate: Double
  public var window: Int64
  /// Requests in the window before the rate means anything.
  public var minRequests: Int
  public var openFor: Int64
  /// Probes admitted while half-open; all must succeed to close.
  public var halfOpenRequests: Int

  public init(errorRate: Double, window: Int64, minRequests: Int, openFor: Int64, halfOpenRequests: Int) {
    self.errorRate = errorRate
    self.window = window
    self.minRequests = minRequests
    self.openFor = openFor
    self.halfOpenRequests = halfOpenRequests
  }
}

public struct CircuitBreaker: Sendable {
  public enum Phase: Sendable, Hashable {
    case closed
    case open(until: Int64)
    case halfOpen
  }

  /// What a request may do.
  public enum Admission: Sendable, Hashable {
    case allow
    /// Admitted as one of the half-open probes: report its outcome with `probe: true`.
    case probe
    /// 503 `unavailable`; `retryAfter` nanoseconds until the breaker half-opens.
    case reject(retryAfter: Int64)
  }

  /// A change of phase worth a metric, a log line or an audit event.
  public enum Transition: Sendable, Hashable {
    case opened
    case halfOpened
    case closed
  }

  public let policy: CircuitBreakerPolicy
  public private(set) var phase = Phase.closed
  /// The window as `buckets` slots of `window / buckets` each, so old outcomes age out in steps
  /// instead of all at once at the window's end.
  static let buckets = 10
  var successes = [Int](repeating: 0, count: CircuitBreaker.buckets)
  var failures = [Int](repeating: 0, count: CircuitBreaker.buckets)
  /// The bucket index (time / bucket width) each slot holds, to clear slots that aged out.
  var slotEpoch = [Int64](repeating: -1, count: CircuitBreaker.buckets)
  var probesAdmitted = 0
  var probesSucceeded = 0

  public init(policy: CircuitBreakerPolicy) { self.policy = policy }

  var bucketWidth: Int64 { max(1, policy.window / Int64(Self.buckets)) }

  /// Clears slots older than the window, and returns the slot for `now`.
  mutating func slot(_ now: Int64) -> Int {
    let epoch = now / bucketWidth
    let index = Int(epoch % Int64(Self.buckets))
    if slotEpoch[index] != epoch {
      slotEpoch[index] = epoch
      successes[index] = 0
      failures[index] = 0
    }
    return index
  }

  /// Successes and failures within the window ending at `now`.
  public func counts(now: Int64) -> (successes: Int, failures: Int) {
    let epoch = now / bucketWidth
    var s = 0
    var f = 0
    for i in 0..<Self.buckets where slotEpoch[i] > epoch - Int64(Self.buckets) && slotEpoch[i] <= epoch {
      s += successes[i]
      f += failures[i]
    }
    return (s, f)
  }

  public mutating func admit(now: Int64) -> (Admission, Transition?) {
    switch phase {
    case .closed:
      return (.allow, nil)
    case .open(let until):
      if now < until { return (.reject(retryAfter: until - now), nil) }
      phase = .halfOpen
      probesAdmitted = 1
      probesSucceeded = 0
      return (.probe, .halfOpened)
    case .halfOpen:
      guard probesAdmitted < policy.halfOpenRequests else {
        // Probes are out; wait for their verdict. A short retry hint: they end soon.
        return (.reject(retryAfter: 1_000_000_000), nil)
      }
      probesAdmitted += 1
      return (.probe, nil)
    }
  }

  /// The outcome of an admitted request (`failure`: connect failure, reset, timeout or 5xx).
  public mutating func record(failure: Bool, probe: Bool, now: Int64) -> Transition? {
    switch phase {
    case .closed:
      let i = slot(now)
      if failure { failures[i] += 1 } else { successes[i] += 1 }
      guard failure else { return nil }
      let (s, f) = counts(now: now)
      let total = s + f
      if total >= policy.minRequests && Double(f) / Double(total) > policy.errorRate {
        open(now)
        return .opened
      }
      return nil
    case .open:
      // A request admitted before the breaker opened: its outcome no longer matters.
      return nil
    case .halfOpen:
      guard probe else { return nil }
      if failure {
        open(now)
        return .opened
      }
      probesSucceeded += 1
      if probesSucceeded >= policy.halfOpenRequests {
        phase = .closed
        resetWindow()
        return .closed
      }
      return nil
    }
  }

  /// A probe that never reported (its client left before the upstream answered) gives its
  /// place back, so the half-open breaker is not stuck waiting for it.
  public mutating func abandonProbe() {
    if case .halfOpen = phase, probesAdmitted > probesSucceeded { probesAdmitted -= 1 }
  }

  mutating func open(_ now: Int64) {
    phase = .open(until: now + policy.openFor)
    resetWindow()
  }

  /// A fresh window: the failures that opened the breaker no longer count once it closes.
  mutating func resetWindow() {
    for i in 0..<Self.buckets {
      successes[i] = 0
      failures[i] = 0
      slotEpoch[i] = -1
    }
  }

  /// `sluice_circuit_breaker_state`: 0 closed, 1 open, 2 half-open.
  public var gaugeValue: Int {
    switch phase {
    case .closed: 0
    case .open: 1
    case .halfOpen: 2
    }
  }

  public var name: String {
    switch phase {
    case .closed: "closed"
    case .open: "open"
    case .halfOpen: "half_open"
    }
  }
}

/// A backend's breaker for the whole process: the state machine behind its own mutex (one per
/// backend, held for a few comparisons per request). Lives in `PersistentState`, so a reload
/// that keeps the backend's breaker settings keeps its state.
public final class BreakerBox: @unchecked Sendable {
  // Safe: `breaker` is only touched under `lock`.
  let lock = Mutex()
  var breaker: CircuitBreaker
  public let policy: CircuitBreakerPolicy

  public init(policy: CircuitBreakerPolicy) {
    self.policy = policy
    breaker = CircuitBreaker(policy: policy)
  }

  public func admit(now: Int64) -> (CircuitBreaker.Admission, CircuitBreaker.Transition?) {
    lock.withLock { breaker.admit(now: now) }
  }

  public func record(failure: Bool, probe: Bool, now: Int64) -> CircuitBreaker.Transition? {
    lock.withLock { breaker.record(failure: failure, probe: probe, now: now) }
  }

  public func abandonProbe() { lock.withLock { breaker.abandonProbe() } }

  /// `closed`, `open` or `half_open`, and the gauge value (0, 1, 2).
  public var state: (name: String, gauge: Int) { lock.withLock { (breaker.name, breaker.gaugeValue) } }
}
