import SluiceConfig
import SluiceCore
import SluiceFeatures

/// The protocol-neutral phases after admission (docs/architecture.md, "The request path"):
/// backend choice (split roll), endpoint pick (load-balancing policy and endpoint stats), and
/// the completion record (request metrics; endpoint in-flight). A frontend (HTTP/1.1's
/// `ServerHandler` today, an HTTP/2 stream next) calls these and keeps only the framing, the
/// deadlines and the I/O. The retry edge and breaker/outlier recording of the next issue
/// belong here too.
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
    pickEndpoint(exchange, random: &random)
    return .upstream
  }

  /// The endpoint (load-balancing policy); the endpoint counts the request in flight.
  static func pickEndpoint(_ exchange: Exchange, random: inout FastRandom) {
    guard let backend = exchange.target?.backend else { return }
    let index = backend.picker.pick(hashKey: hashKey(backend.config.loadBalancing, exchange), using: &random)
    let endpoint = backend.endpoints[index]
    exchange.endpoint = endpoint
    endpoint.stats.inFlight.wrappingIncrement(ordering: .relaxed)
    endpoint.stats.requests.wrappingIncrement(ordering: .relaxed)
    exchange.countedInFlight = true
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
  static func recordCompletion(_ exchange: Exchange, status: Int, micros: Int, upstreamMicros: Int?) {
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
