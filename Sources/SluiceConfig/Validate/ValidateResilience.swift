import SluiceCore
import SluiceFeatures

/// Backend resilience keys (issue 13): `circuit_breaker` so far.
extension Validator {
  /// `50%` → 0.5. Percentages are written with their sign, so `0.5` is not mistaken for 0.5 %.
  mutating func percent(_ node: YNode, _ what: String) -> Double? {
    guard let text = reader.string(node, what) else { return nil }
    guard text.hasSuffix("%"), let value = Double(text.dropLast().trimmingASCIIWhitespace()), value >= 0, value <= 100
    else {
      reader.error(node.location, "\(what) must be a percentage from 0% to 100%, like 50%; got '\(text)'")
      return nil
    }
    return value / 100
  }

  mutating func circuitBreaker(_ node: YNode, _ what: String) -> CircuitBreakerPolicy? {
    let where_ = "\(what).circuit_breaker"
    guard
      let m = reader.mapping(
        node, where_, known: ["error_rate", "window", "min_requests", "open_for", "half_open_requests"])
    else { return nil }
    var policy = CircuitBreakerPolicy(
      errorRate: 0.5, window: 30_000_000_000, minRequests: 20, openFor: 30_000_000_000, halfOpenRequests: 5)
    if let n = m["error_rate"]?.value, let p = percent(n, "\(where_).error_rate") {
      if p <= 0 || p >= 1 {
        reader.error(n.location, "\(where_).error_rate must be above 0% and below 100%")
      } else {
        policy.errorRate = p
      }
    }
    if let n = m["window"]?.value, let d = reader.duration(n, "\(where_).window") {
      if d.nanoseconds < 1_000_000_000 || d.nanoseconds > 86_400_000_000_000 {
        reader.error(n.location, "\(where_).window must be between 1s and 24h")
      } else {
        policy.window = d.nanoseconds
      }
    }
    if let n = m["min_requests"]?.value, let v = reader.int(n, "\(where_).min_requests", min: 1, max: 1_000_000) {
      policy.minRequests = v
    }
    if let n = m["open_for"]?.value, let d = reader.duration(n, "\(where_).open_for") {
      if d.nanoseconds > 86_400_000_000_000 {
        reader.error(n.location, "\(where_).open_for must be at most 24h")
      } else {
        policy.openFor = d.nanoseconds
      }
    }
    if let n = m["half_open_requests"]?.value, let v = reader.int(n, "\(where_).half_open_requests", min: 1, max: 10_000) {
      policy.halfOpenRequests = v
    }
    return policy
  }

  /// `max_concurrent_requests` and `queue: { size, timeout }`.
  mutating func loadShedding(_ m: [String: YPair], _ what: String, into out: inout BackendConfig) {
    if let n = m["max_concurrent_requests"]?.value,
      let v = reader.int(n, "\(what).max_concurrent_requests", min: 1, max: 10_000_000)
    {
      out.maxConcurrentRequests = v
    }
    guard let pair = m["queue"] else { return }
    if m["max_concurrent_requests"] == nil {
      reader.error(pair.keyLocation, "\(what): queue needs max_concurrent_requests (requests wait for one of its slots)")
    }
    guard let q = reader.mapping(pair.value, "\(what).queue", known: ["size", "timeout"]) else { return }
    if let n = q["size"]?.value, let v = reader.int(n, "\(what).queue.size", min: 0, max: 1_000_000) { out.queueSize = v }
    if let n = q["timeout"]?.value, let d = reader.duration(n, "\(what).queue.timeout") {
      if d.nanoseconds > 3_600_000_000_000 {
        reader.error(n.location, "\(what).queue.timeout must be at most 1h")
      } else {
        out.queueTimeout = d
      }
    }
  }
}
