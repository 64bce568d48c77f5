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

/// Route resilience keys (issue 13): `retries`, `fault`, `mirror`; backend `health_check` and
/// `outlier_detection`.
extension Validator {
  /// `percent: 10` (a number from 0 to 100, fractions allowed) or `10%` → 0.1.
  mutating func share(_ node: YNode, _ what: String) -> Double? {
    guard case .scalar(let raw, _, _) = node else {
      reader.error(node.location, "\(what) must be a percentage from 0 to 100")
      return nil
    }
    let text = raw.hasSuffix("%") ? String(raw.dropLast()) : raw
    guard let value = Double(text.trimmingASCIIWhitespace()), value >= 0, value <= 100 else {
      reader.error(node.location, "\(what) must be a percentage from 0 to 100, got '\(raw)'")
      return nil
    }
    return value / 100
  }

  mutating func retries(_ node: YNode, _ what: String, routeTimeout: ConfigDuration) -> RetryPolicy? {
    let where_ = "\(what).retries"
    guard
      let m = reader.mapping(
        node, where_,
        known: ["attempts", "on", "per_try_timeout", "budget", "backoff", "replay_buffer", "retry_non_idempotent"])
    else { return nil }
    var out = RetryPolicy()
    if let n = m["attempts"]?.value, let v = reader.int(n, "\(where_).attempts", min: 1, max: 10) { out.attempts = v }
    if let n = m["on"]?.value, let items = reader.stringList(n, "\(where_).on") {
      out.onConnectFailure = false
      out.onReset = false
      for (text, loc) in items {
        switch text {
        case "connect-failure": out.onConnectFailure = true
        case "reset": out.onReset = true
        case "timeout": out.onTimeout = true
        case "5xx": out.statuses.formUnion(500...599)
        default:
          if text.count == 3, let code = Int(text), code >= 100, code <= 599 {
            out.statuses.insert(code)
          } else {
            reader.error(loc, "\(where_).on: '\(text)' is not connect-failure, reset, timeout, 5xx or a status like \"503\"")
          }
        }
      }
      if items.isEmpty { reader.error(n.location, "\(where_).on must list at least one condition") }
    }
    if let n = m["per_try_timeout"]?.value, let d = reader.duration(n, "\(where_).per_try_timeout") {
      out.perTryTimeout = d
      if d >= routeTimeout {
        reader.warning(
          n.location,
          "\(where_).per_try_timeout (\(d)) is not shorter than the route's timeout (\(routeTimeout)): a try that times out leaves no time to retry"
        )
      }
    }
    if let n = m["budget"]?.value, let p = percent(n, "\(where_).budget") { out.budget = p }
    if let n = m["backoff"]?.value, let b = reader.mapping(n, "\(where_).backoff", known: ["base", "max"]) {
      if let v = b["base"]?.value, let d = reader.duration(v, "\(where_).backoff.base") { out.backoffBase = d }
      if let v = b["max"]?.value, let d = reader.duration(v, "\(where_).backoff.max") { out.backoffMax = d }
      if out.backoffMax.nanoseconds > 60_000_000_000 || out.backoffBase > out.backoffMax {
        reader.error(n.location, "\(where_).backoff: base must not exceed max, and max must be at most 1m")
      }
    }
    if let n = m["replay_buffer"]?.value, let s = reader.size(n, "\(where_).replay_buffer") {
      if s.bytes > 16 * 1024 * 1024 {
        reader.error(n.location, "\(where_).replay_buffer must be at most 16MiB")
      } else {
        out.replayBuffer = s
      }
    }
    if let n = m["retry_non_idempotent"]?.value, let v = reader.bool(n, "\(where_).retry_non_idempotent") {
      out.nonIdempotent = v
    }
    return out
  }

  mutating func fault(_ node: YNode, _ what: String) -> FaultConfig? {
    let where_ = "\(what).fault"
    guard let m = reader.mapping(node, where_, known: ["delay", "abort"]) else { return nil }
    var out = FaultConfig()
    if let n = m["delay"]?.value, let d = reader.mapping(n, "\(where_).delay", known: ["percent", "duration"]) {
      if let v = d["percent"]?.value, let s = share(v, "\(where_).delay.percent") { out.delayShare = s }
      if let v = d["duration"]?.value, let t = reader.duration(v, "\(where_).delay.duration") {
        if t.nanoseconds > 3_600_000_000_000 {
          reader.error(v.location, "\(where_).delay.duration must be at most 1h")
        } else {
          out.delay = t
        }
      } else if d["duration"] == nil {
        reader.error(n.location, "\(where_).delay needs 'duration'")
      }
    }
    if let n = m["abort"]?.value, let a = reader.mapping(n, "\(where_).abort", known: ["percent", "status"]) {
      if let v = a["percent"]?.value, let s = share(v, "\(where_).abort.percent") { out.abortShare = s }
      if let v = a["status"]?.value, let code = reader.int(v, "\(where_).abort.status", min: 200, max: 599) {
        out.abortStatus = code
      }
    }
    if m.isEmpty { reader.error(node.location, "\(where_) needs delay or abort") }
    return out
  }

  mutating func mirror(_ node: YNode, _ what: String, route: String) -> MirrorConfig? {
    let where_ = "\(what).mirror"
    guard let m = reader.mapping(node, where_, known: ["backend", "percent"]) else { return nil }
    guard let pair = m["backend"], let name = reader.string(pair.value, "\(where_).backend") else {
      if m["backend"] == nil { reader.error(node.location, "\(where_) needs 'backend'") }
      return nil
    }
    backendRefs.append((name, pair.value.location, route))
    var out = MirrorConfig(backend: name)
    if let v = m["percent"]?.value, let s = share(v, "\(where_).percent") { out.share = s }
    return out
  }

  mutating func healthCheck(_ node: YNode, _ what: String) -> HealthCheckConfig? {
    let where_ = "\(what).health_check"
    guard
      let m = reader.mapping(
        node, where_,
        known: ["path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "jitter", "host"])
    else { return nil }
    var out = HealthCheckConfig()
    if let n = m["path"]?.value, let text = reader.string(n, "\(where_).path") {
      if text.hasPrefix("/") && HeaderRules.isValidValue(text) && !text.contains(" ") {
        out.path = text
      } else {
        reader.error(n.location, "\(where_).path must be a path starting with /")
      }
    }
    if let n = m["interval"]?.value, let d = reader.duration(n, "\(where_).interval") {
      if d.nanoseconds < 100_000_000 || d.nanoseconds > 3_600_000_000_000 {
        reader.error(n.location, "\(where_).interval must be between 100ms and 1h")
      } else {
        out.interval = d
      }
    }
    if let n = m["timeout"]?.value, let d = reader.duration(n, "\(where_).timeout") {
      if d > out.interval {
        reader.error(n.location, "\(where_).timeout must not be longer than the interval (\(out.interval))")
      } else {
        out.timeout = d
      }
    } else if out.timeout > out.interval {
      out.timeout = out.interval
    }
    if let n = m["healthy_threshold"]?.value, let v = reader.int(n, "\(where_).healthy_threshold", min: 1, max: 100) {
      out.healthyThreshold = v
    }
    if let n = m["unhealthy_threshold"]?.value, let v = reader.int(n, "\(where_).unhealthy_threshold", min: 1, max: 100) {
      out.unhealthyThreshold = v
    }
    if let n = m["jitter"]?.value, let d = reader.duration(n, "\(where_).jitter", allowZero: true) {
      if d > out.interval {
        reader.error(n.location, "\(where_).jitter must not be longer than the interval (\(out.interval))")
      } else {
        out.jitter = d
      }
    } else if out.jitter > out.interval {
      out.jitter = ConfigDuration(nanoseconds: out.interval.nanoseconds / 10)
    }
    if let n = m["host"]?.value, let text = reader.string(n, "\(where_).host") {
      if !text.isEmpty && HeaderRules.isValidValue(text) && !text.contains(" ") {
        out.host = text
      } else {
        reader.error(n.location, "\(where_).host must be a host name")
      }
    }
    return out
  }

  mutating func outlierDetection(_ node: YNode, _ what: String) -> OutlierConfig? {
    let where_ = "\(what).outlier_detection"
    guard let m = reader.mapping(node, where_, known: ["consecutive_failures", "eject_for", "max_ejected"]) else {
      return nil
    }
    var out = OutlierConfig()
    if let n = m["consecutive_failures"]?.value,
      let v = reader.int(n, "\(where_).consecutive_failures", min: 1, max: 10_000)
    {
      out.consecutiveFailures = v
    }
    if let n = m["eject_for"]?.value, let d = reader.duration(n, "\(where_).eject_for") {
      if d.nanoseconds > 3_600_000_000_000 {
        reader.error(n.location, "\(where_).eject_for must be at most 1h (repeat ejections last up to 10 times longer)")
      } else {
        out.ejectFor = d
      }
    }
    if let n = m["max_ejected"]?.value, let p = percent(n, "\(where_).max_ejected") { out.maxEjected = p }
    return out
  }
}
