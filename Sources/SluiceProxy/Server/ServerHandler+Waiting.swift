import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// Where a request waits on the connection's own event loop without a `Task`: admission
/// suspended on a key refresh or a store call, and the backend's concurrency gate. Each wait
/// ends in a callback that hops back to this loop and resumes the request where it stopped; a
/// request that finished meanwhile (its client left) finds nothing to do, and a gate slot handed
/// to it is passed on.
extension ServerHandler {
  /// Runs the route's admission list (`AdmissionDriver`). True: go on to the backend. False:
  /// answered, or suspended until keys are refreshed (`resumeAdmission`).
  func admit(_ exchange: Exchange, _ route: RouteRuntime) -> Bool {
    let context = AdmissionDriver.Context(
      route: route, audit: exchange.graph.audit, requestID: exchange.requestID, cache: loop.tokenCache,
      now: WallClock.nowMilliseconds() / 1000, nowNanos: Int64(WallClock.monotonicNanoseconds()),
      metrics: exchange.graph.admissionMetrics)
    switch AdmissionDriver.run(route.admission, request: exchange, state: &exchange.admission, context: context) {
    case .proceed:
      if let name = exchange.admission.identity?.removeQueryParameter, let query = exchange.upstreamQuery {
        exchange.upstreamQuery = Credentials.removingQueryParameter(name, from: query)
      }
      return true
    case .answer(let error):
      respondError(error, exchange)
      return false
    case .preflight(let headers):
      respondPreflight(headers, exchange)
      return false
    case .suspend(let store):
      guard let refresher = store.refresher, let channelContext = self.context else {
        exchange.admission.keysRefreshed = true
        return admit(exchange, route)
      }
      // Reads stay held (no upstream yet); the refresh completes on any thread and the
      // request resumes on this connection's loop. A client that leaves meanwhile finishes
      // the exchange, and the resumption then finds nothing to do.
      let eventLoop = channelContext.eventLoop
      let bound = NIOLoopBound((self, exchange), eventLoop: eventLoop)
      refresher.refreshForUnknownKID {
        eventLoop.execute {
          let (handler, exchange) = bound.value
          handler.resumeAdmission(exchange)
        }
      }
      return false
    case .ask(let store, let call):
      guard let client = store.client, let channelContext = self.context else {
        exchange.admission.storeReply = Self.failedReply(call, .disconnected)
        return admit(exchange, route)
      }
      // As for keys: reads stay held, the client answers within the store's timeout on any
      // thread, and the request resumes on this connection's loop.
      let eventLoop = channelContext.eventLoop
      let bound = NIOLoopBound((self, exchange), eventLoop: eventLoop)
      switch call {
      case .limits(let keys, let rules):
        client.takeLimits(keys, rules: rules) { result in
          eventLoop.execute {
            let (handler, exchange) = bound.value
            handler.resumeAdmission(exchange, reply: .limits(result))
          }
        }
      case .exists(let key):
        client.exists(key) { result in
          eventLoop.execute {
            let (handler, exchange) = bound.value
            handler.resumeAdmission(exchange, reply: .exists(result))
          }
        }
      }
      return false
    }
  }

  static func failedReply(_ call: StoreCall, _ failure: StoreFailure) -> StoreReply {
    switch call {
    case .limits: .limits(.failure(StoreFailureError(failure)))
    case .exists: .exists(.failure(StoreFailureError(failure)))
    }
  }

  func resumeAdmission(_ exchange: Exchange, reply: StoreReply? = nil) {
    guard self.exchange === exchange, !exchange.finished, !closed, let route = exchange.route else { return }
    if let reply {
      exchange.admission.storeReply = reply
    } else {
      exchange.admission.keysRefreshed = true
    }
    guard admit(exchange, route) else { return }
    proceed(exchange, route, now: WallClock.monotonicNanoseconds())
  }

  /// `max_concurrent_requests` / `queue`: true when a slot is held now; false when refused
  /// (answered) or queued (the request resumes in `gateAnswered` on this loop).
  func enterGate(_ gate: ConcurrencyGate, _ exchange: Exchange, _ route: RouteRuntime) -> Bool {
    if gate.tryAcquire() {
      exchange.holdsGateSlot = true
      return true
    }
    guard let channelContext = context else { return false }
    let eventLoop = channelContext.eventLoop
    let bound = NIOLoopBound((self, exchange), eventLoop: eventLoop)
    let entry = gate.enter(now: Int64(WallClock.monotonicNanoseconds())) { admitted in
      eventLoop.execute {
        let (handler, exchange) = bound.value
        handler.gateAnswered(exchange, gate, admitted: admitted)
      }
    }
    switch entry {
    case .admitted:
      exchange.holdsGateSlot = true
      return true
    case .queued(let id):
      exchange.gateTicket = id
      eventLoop.scheduleTask(in: .nanoseconds(gate.timeout)) {
        guard gate.cancel(id) else { return }  // a slot came first
        let (handler, exchange) = bound.value
        handler.gateAnswered(exchange, gate, admitted: false)
      }
      return false
    case .rejected:
      ExchangeDriver.shed(exchange)
      respondError(
        .unavailable("backend '\(exchange.target?.backend.name ?? "")' is at its limit of requests in flight and its queue is full"),
        exchange)
      return false
    }
  }

  func gateAnswered(_ exchange: Exchange, _ gate: ConcurrencyGate, admitted: Bool) {
    guard self.exchange === exchange, !exchange.finished, !closed, let route = exchange.route else {
      // The request is gone: a slot handed to it goes to the next in line.
      if admitted { gate.release(now: Int64(WallClock.monotonicNanoseconds())) }
      return
    }
    exchange.gateTicket = nil
    guard admitted else {
      ExchangeDriver.shed(exchange)
      respondError(.unavailable("timed out waiting in the queue of backend '\(exchange.target?.backend.name ?? "")'"), exchange)
      return
    }
    exchange.holdsGateSlot = true
    guard ExchangeDriver.pickEndpoint(exchange, random: &loop.random) else {
      respondError(ExchangeDriver.noEndpoint(exchange), exchange)
      return
    }
    forward(exchange, route, now: WallClock.monotonicNanoseconds())
  }
}
