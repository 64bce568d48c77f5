import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// The protocol-neutral phases after admission (docs/architecture.md, "The request path"):
/// backend choice (split roll), endpoint pick (load-balancing policy and endpoint stats), and
/// the completion record (request metrics; endpoint in-flight). A frontend (HTTP/1.1's
/// `ServerHandler` today, an HTTP/2 stream next) calls these and keeps only the framing, the
/// deadlines and the I/O. The retry decision and the breaker and outlier records live here;
/// the frontend only waits out the backoff and writes the request again.
enum ExchangeDriver {
  enum Destination {
    /// The route answers itself.
    case direct(DirectResponse)
    /// `exchange.target` and `exchange.endpoint` are set; the endpoint counts the request.
    case upstream
    /// Refused before any endpoint is touched (an open circuit breaker): answer this.
    case refused(GatewayError)
    /// The backend limits requests in flight: pass its gate, then `pickEndpoint`.
    case gate(ConcurrencyGate)
  }

  static func choose(_ exchange: Exchange, _ route: RouteRuntime, random: inout FastRandom) -> Destination {
    let target: BackendTarget
    switch route.target {
    case .direct(let response): return .direct(response)
    case .backend(let t): target = t
    case .split(let choice, let targets): target = targets[choice.pick(roll: random.next())]
    }
    exchange.target = target
    let backend = target.backend
    if let breaker = backend.breaker {
      let (admission, transition) = breaker.admit(now: Int64(WallClock.monotonicNanoseconds()))
      if let transition { breakerMoved(backend, transition, exchange) }
      switch admission {
      case .allow: exchange.breaker = .counted
      case .probe: exchange.breaker = .probe
      case .reject(let retryAfter):
        exchange.retryAfterSeconds = Int(retryAfter.secondsRoundedUp)
        return .refused(.unavailable("the circuit breaker of backend '\(backend.name)' is open"))
      }
    }
    if let gate = backend.gate { return .gate(gate) }
    guard pickEndpoint(exchange, random: &random) else { return .refused(noEndpoint(exchange)) }
    return .upstream
  }

  /// The answer when every endpoint of the backend is unhealthy or ejected.
  static func noEndpoint(_ exchange: Exchange) -> GatewayError {
    exchange.retryAfterSeconds = 1
    return .unavailable("no healthy endpoint in backend '\(exchange.target?.backend.name ?? "")'")
  }

  /// The endpoint (load-balancing policy, skipping endpoints that health checks or outlier
  /// detection took out, and `avoid` — the endpoint a retry leaves — while another is
  /// available); the endpoint counts the request in flight. False when none is available.
  static func pickEndpoint(_ exchange: Exchange, random: inout FastRandom, avoid: Int? = nil) -> Bool {
    guard let backend = exchange.target?.backend else { return false }
    let key = hashKey(backend.config.loadBalancing, exchange)
    let index: Int
    if backend.checksAvailability {
      guard
        let found = backend.picker.pickAvailable(
          hashKey: key, avoid: avoid, now: { Int64(WallClock.monotonicNanoseconds()) }, using: &random)
      else { return false }
      index = found
    } else if let avoid {
      index = backend.picker.pickRetry(hashKey: key, avoid: avoid, using: &random)
    } else {
      index = backend.picker.pick(hashKey: key, using: &random)
    }
    let endpoint = backend.endpoints[index]
    exchange.endpoint = endpoint
    endpoint.stats.inFlight.wrappingIncrement(ordering: .relaxed)
    endpoint.stats.requests.wrappingIncrement(ordering: .relaxed)
    exchange.countedInFlight = true
    exchange.tryRecorded = false
    return true
  }

  // MARK: - Retries and outlier detection

  /// After a failed try: records it for outlier detection, then decides whether the route's
  /// `retries` allow another (attempts left, the condition listed in `on`, `RetrySafety`, the
  /// backend's retry budget). Returns the backoff before the retry, or nil: answer the failure.
  static func afterFailedTry(
    _ exchange: Exchange, _ failure: RetrySafety.Failure, random: inout FastRandom, on eventLoop: any EventLoop
  ) -> Int64? {
    let upstreamFault: Bool
    if case .status(let code) = failure { upstreamFault = code >= 500 } else { upstreamFault = true }
    recordTry(exchange, failure: upstreamFault, on: eventLoop)
    guard let policy = exchange.route?.retryPolicy, let target = exchange.target,
      exchange.retries + 1 < policy.attempts
    else { return nil }
    let listed: Bool
    switch failure {
    case .connectFailure: listed = policy.onConnectFailure
    case .reset: listed = policy.onReset
    case .timeout: listed = policy.onTimeout
    case .status(let code): listed = policy.statuses.contains(code)
    }
    guard listed,
      RetrySafety.mayRetry(
        method: exchange.head.method, failure: failure, bodyKept: !exchange.replayLost,
        responseStarted: exchange.responseStarted, retryNonIdempotent: policy.nonIdempotent)
    else { return nil }
    let backend = target.backend
    // A connect failure put no load on any upstream, so its retry adds none either: it is not
    // counted against the budget (docs/decisions.md). Every other retry is.
    if failure != .connectFailure {
      let othersRetrying = backend.activeRetries.load(ordering: .relaxed) - (exchange.holdsRetrySlot ? 1 : 0)
      guard RetryBudget(budget: policy.budget).allows(activeRequests: backend.inFlight, activeRetries: othersRetrying)
      else {
        if Log.enabled(.debug) {
          Log.debug("retry budget exhausted", [("backend", backend.name), ("request_id", exchange.requestID.text)])
        }
        return nil
      }
      if !exchange.holdsRetrySlot {
        exchange.holdsRetrySlot = true
        backend.activeRetries.wrappingIncrement(ordering: .relaxed)
      }
    }
    exchange.retries += 1
    target.retries?.increment()
    // After a per-try timeout the try itself spaced the retry (`per_try_timeout` is longer than
    // any backoff): it goes at once. A retry that is still slow holds its budget slot for its
    // whole try, so a backend that is slow everywhere still meets the budget.
    if failure == .timeout { return 0 }
    let unit = Double(random.next() >> 11) / Double(1 << 53)
    return Backoff(base: policy.backoffBase.nanoseconds, cap: policy.backoffMax.nanoseconds)
      .delay(retry: exchange.retries, unit: unit)
  }

  /// Leaves the current endpoint for a retry and picks another (`pickEndpoint` with `avoid`).
  static func retarget(_ exchange: Exchange, random: inout FastRandom) -> Bool {
    let previous = exchange.endpoint?.index
    if exchange.countedInFlight, let endpoint = exchange.endpoint {
      endpoint.stats.inFlight.wrappingDecrement(ordering: .relaxed)
      exchange.countedInFlight = false
    }
    exchange.endpoint = nil
    return pickEndpoint(exchange, random: &random, avoid: previous)
  }

  /// One try's outcome for outlier detection. A success is one relaxed load (and a store only
  /// when a streak was running); the backend's lock is taken only when a streak reaches
  /// `consecutive_failures`.
  static func recordTry(_ exchange: Exchange, failure: Bool, on eventLoop: any EventLoop) {
    guard !exchange.tryRecorded, let endpoint = exchange.endpoint, let backend = exchange.target?.backend else { return }
    exchange.tryRecorded = true
    guard let outlier = backend.outlier else { return }
    let streak = endpoint.stats.failureStreak
    guard failure else {
      if streak.load(ordering: .relaxed) != 0 { streak.store(0, ordering: .relaxed) }
      return
    }
    guard streak.wrappingIncrementThenLoad(ordering: .relaxed) >= outlier.policy.consecutiveFailures else { return }
    streak.store(0, ordering: .relaxed)
    let now = Int64(WallClock.monotonicNanoseconds())
    guard let until = outlier.eject(endpoint.index, now: now) else { return }
    endpoint.stats.ejectedUntil.store(until, ordering: .relaxed)
    backend.refreshHealthyGauge(now: now)
    let seconds = Double((until - now) / 1_000_000) / 1000
    Log.warning("endpoint ejected", [("backend", backend.name), ("endpoint", endpoint.key), ("seconds", "\(seconds)")])
    let key = endpoint.key
    eventLoop.scheduleTask(deadline: .uptimeNanoseconds(UInt64(until))) {
      backend.refreshHealthyGauge(now: Int64(WallClock.monotonicNanoseconds()))
      Log.info("endpoint back from ejection", [("backend", backend.name), ("endpoint", key)])
    }
  }

  /// The gate refused (queue full or timed out): the breaker hears nothing of this request.
  static func shed(_ exchange: Exchange) {
    if exchange.breaker == .probe { exchange.target?.backend.breaker?.abandonProbe() }
    exchange.breaker = .none
    exchange.target?.backend.overloadRejections.increment()
  }

  /// A breaker changed phase: its gauge, a log line, and `circuit_opened` for the audit sinks.
  static func breakerMoved(_ backend: BackendRuntime, _ transition: CircuitBreaker.Transition, _ exchange: Exchange) {
    guard let breaker = backend.breaker else { return }
    let state = breaker.state
    backend.breakerGauge.set(state.gauge)
    switch transition {
    case .opened:
      Log.warning("circuit breaker opened", [("backend", backend.name)])
      let audit = exchange.graph.audit
      if audit.wants(.circuitOpened) {
        audit.publish(
          AuditEvent(
            kind: .circuitOpened, requestID: exchange.requestID.text, route: exchange.route?.name,
            clientIP: exchange.clientIP, user: exchange.admission.identity?.user, detail: [("backend", backend.name)]))
      }
    case .halfOpened:
      Log.info("circuit breaker half-open: probing", [("backend", backend.name)])
    case .closed:
      Log.info("circuit breaker closed", [("backend", backend.name)])
    }
  }

  /// The `consistent_hash` key of a request (`hash_on`), nil for other policies or when absent.
  static func hashKey(_ policy: LoadBalancingPolicy, _ exchange: Exchange) -> String? {
    guard case .consistentHash(let key) = policy else { return nil }
    switch key {
    case .header(let name): return exchange.head.fields.first(name)
    case .cookie(let name):
      for value in exchange.head.fields.values("cookie") {
        if let found = Hashing.cookie(name, in: value) { return found }
      }
      return nil
    case .clientIP: return exchange.clientIP
    }
  }

  /// Request metrics (handles resolved at compile time) and the endpoint's in-flight count.
  /// Runs once per exchange, when it finishes.
  static func recordCompletion(
    _ exchange: Exchange, status: Int, micros: Int, upstreamMicros: Int?, on eventLoop: any EventLoop
  ) {
    if exchange.endpoint != nil && !exchange.tryRecorded && status != 499 {
      recordTry(exchange, failure: status >= 500, on: eventLoop)
    }
    if exchange.holdsRetrySlot {
      exchange.holdsRetrySlot = false
      exchange.target?.backend.activeRetries.wrappingDecrement(ordering: .relaxed)
    }
    if let gate = exchange.target?.backend.gate {
      if let ticket = exchange.gateTicket {
        // Left while queued: its place goes (if a slot was handed to it meanwhile, the
        // frontend gives that back when the late answer arrives).
        _ = gate.cancel(ticket)
        exchange.gateTicket = nil
      }
      if exchange.holdsGateSlot {
        exchange.holdsGateSlot = false
        gate.release(now: Int64(WallClock.monotonicNanoseconds()))
      }
    }
    if exchange.breaker != .none, let backend = exchange.target?.backend, let breaker = backend.breaker {
      // A failure: the gateway's 502/504 (connect failure, reset, timeout) or an upstream 5xx.
      // A client that left (499) says nothing about the upstream; a probe it held is given back.
      if status == 499 {
        if exchange.breaker == .probe { breaker.abandonProbe() }
      } else if let transition = breaker.record(
        failure: status >= 500, probe: exchange.breaker == .probe, now: Int64(WallClock.monotonicNanoseconds()))
      {
        breakerMoved(backend, transition, exchange)
      }
      exchange.breaker = .none
    }
    if exchange.countedInFlight, let endpoint = exchange.endpoint {
      endpoint.stats.inFlight.wrappingDecrement(ordering: .relaxed)
    }
    if let target = exchange.target {
      target.requests.record(status: status)
      target.duration.observe(microseconds: micros)
      if let upstreamMicros, exchange.upstreamStatus != nil {
        target.backend.upstreamDuration.observe(microseconds: upstreamMicros)
      }
    } else if let route = exchange.route {
      route.directCounters.record(status: status)
      route.directDuration.observe(microseconds: micros)
    } else {
      exchange.listener.unrouted.record(status: status)
    }
  }
}
