/// Envoy's retry budget: retries in flight may be at most `budget` of the backend's active
/// requests, with a floor of `minConcurrency` so a quiet backend can still retry. With
/// `attempts: 3` alone, a failing upstream would see three times its load; with a 20 % budget it
/// sees at most 1.2 times.
public struct RetryBudget: Sendable, Hashable {
  public var budget: Double
  public var minConcurrency: Int

  public init(budget: Double, minConcurrency: Int = 3) {
    self.budget = budget
    self.minConcurrency = minConcurrency
  }

  /// Whether one more retry may start, given the backend's requests and retries in flight.
  public func allows(activeRequests: Int, activeRetries: Int) -> Bool {
    activeRetries < max(minConcurrency, Int(Double(activeRequests) * budget))
  }
}

/// Exponential backoff with full jitter (AWS's "full jitter", as Envoy does): the n-th retry
/// waits a random time in [0, min(cap, base × 2ⁿ⁻¹)].
public struct Backoff: Sendable, Hashable {
  public var base: Int64
  public var cap: Int64

  public init(base: Int64 = 25_000_000, cap: Int64? = nil) {
    self.base = max(1, base)
    self.cap = cap ?? self.base * 10
  }

  /// The ceiling for retry `n` (1 for the first retry).
  public func ceiling(retry n: Int) -> Int64 {
    let shift = min(max(n - 1, 0), 30)
    return min(cap, base << Int64(shift))
  }

  /// A delay for retry `n` from `unit`, a random value in [0, 1).
  public func delay(retry n: Int, unit: Double) -> Int64 {
    Int64(Double(ceiling(retry: n)) * min(max(unit, 0), 0.999_999))
  }
}

/// What may be retried (issue 13): a request whose bytes may have reached the upstream only
/// when its method is idempotent (as nginx since 1.9.13) unless the route allows it; a request
/// whose body was not kept never; nothing after the first response byte went to the client.
public enum RetrySafety {
  public static let idempotentMethods: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]

  public enum Failure: Sendable, Hashable {
    /// The connection never opened: nothing was sent.
    case connectFailure
    /// The connection broke or timed out after the request (or part of it) was written.
    case reset
    case timeout
    case status(Int)
  }

  public static func mayRetry(
    method: String, failure: Failure, bodyKept: Bool, responseStarted: Bool, retryNonIdempotent: Bool
  ) -> Bool {
    if responseStarted || !bodyKept { return false }
    if case .connectFailure = failure { return true }
    return retryNonIdempotent || idempotentMethods.contains(method)
  }
}
