import SluiceConfig
import SluiceCore
import SluiceFeatures

/// What admission reads of a request, whatever the protocol: HTTP/1.1's `Exchange` today, an
/// HTTP/2 stream next.
protocol AdmissionRequest: CredentialSource {
  var method: String { get }
  /// The canonical path (after `PathNormalizer`): what routes and policies match.
  var canonicalPath: String { get }
  var clientIPText: String { get }
  /// The connection's TLS server name (SNI), nil on plain HTTP or without SNI.
  var tlsServerName: String? { get }
  func firstHeader(_ lowercasedName: String) -> String?
}

/// Per-request admission state, kept inline in the request object (no allocation).
struct AdmissionState {
  /// The next step to run: a suspended step runs again from here.
  var next = 0
  /// Keys were refreshed once for this request (an unknown `kid`): the next unknown `kid` is a 401.
  var keysRefreshed = false
  var identity: Identity?
  /// CORS headers for the response to an actual (non-preflight) cross-origin request.
  var corsHeaders: [HeaderPair] = []
  /// The answer to the store call this request waited for, put here before the step reruns.
  var storeReply: StoreReply?
  /// The identity's revocation lookup is done (not revoked, or allowed through a store error).
  var revocationChecked = false
  /// Rate limits: local limits charged (0 → 1), then shared groups done.
  var localLimitsCharged = false
  var sharedGroupsDone = 0
}

/// What a store call answered, for the step that asked.
enum StoreReply {
  case limits(Result<SharedLimitVerdict, StoreFailureError>)
  case exists(Result<Bool, StoreFailureError>)
}

/// A call to a shared store that admission waits for.
enum StoreCall {
  case limits(keys: [String], rules: [GCRA])
  case exists(String)
}

enum AdmissionOutcome {
  case proceed
  case answer(GatewayError)
  /// A CORS preflight: 204 with these headers.
  case preflight([HeaderPair])
  /// Wait for this provider's keys to be refreshed, then run again from `state.next`, on the
  /// connection's own event loop.
  case suspend(KeyStore)
  /// Wait for the store's answer (put into `state.storeReply`), then run again from `state.next`.
  case ask(SharedStore, StoreCall)
}

/// Runs a route's compiled admission list (docs/architecture.md, "The request path"). Each
/// step's decision is pure logic in its `SluiceFeatures` folder; this only sequences them,
/// counts and audits refusals, and says whether to go on, answer or wait. Protocol-neutral:
/// the frontend applies the outcome (writes the answer, or resumes after a suspension).
enum AdmissionDriver {
  struct Context {
    let route: RouteRuntime
    let audit: AuditFanout
    let requestID: RequestID
    let cache: TokenCache
    /// Seconds since the epoch (JWT times).
    let now: Int64
    /// Monotonic nanoseconds (local limits).
    let nowNanos: Int64
    let metrics: AdmissionMetrics
  }

  static func run(
    _ steps: [AdmissionStep], request: some AdmissionRequest, state: inout AdmissionState, context: Context
  ) -> AdmissionOutcome {
    while state.next < steps.count {
      switch steps[state.next] {
      case .corsPreflight(let policy):
        if let origin = request.firstHeader("origin") {
          let asked = request.firstHeader("access-control-request-method")
          if CORSPolicy.isPreflight(method: request.method, origin: origin, requestMethod: asked), let asked {
            return .preflight(
              policy.preflightHeaders(
                origin: origin, requestMethod: asked, requestHeaders: request.firstHeader("access-control-request-headers")))
          }
          state.corsHeaders = policy.responseHeaders(origin: origin)
        }
      case .authenticate(let step):
        if state.identity != nil {
          if let outcome = checkRevocation(step, request: request, state: &state, context: context) { return outcome }
          break
        }
        switch Authentication.authenticate(
          step.providers, request: request, cache: context.cache, now: context.now, refreshed: state.keysRefreshed)
        {
        case .admitted(let identity):
          state.identity = identity
          if let outcome = checkRevocation(step, request: request, state: &state, context: context) { return outcome }
        case .refreshKeys(let store):
          return .suspend(store)
        case .denied(let index, let failure, let tokenSent):
          step.failureCounter(provider: index, failure).increment()
          audit(
            .authDenied, context, request, user: nil,
            detail: [("provider", step.providers[index].name), ("reason", failure.rawValue)])
          return .answer(.unauthenticated(failure.description, tokenSent: tokenSent))
        case .unavailable(let index):
          step.failureCounter(provider: index, .keysUnavailable).increment()
          if Log.enabled(.warning) {
            Log.warning("no signing keys to check a token with", [("provider", step.providers[index].name)])
          }
          return .answer(.unavailable("the signing keys of '\(step.providers[index].name)' are not available yet"))
        }
      case .authorize(let policy):
        let ip = IPAddress.parse(request.clientIPText)
        if !policy.allows(
          claims: state.identity?.claims?.payload, clientIP: ip, method: request.method, path: request.canonicalPath)
        {
          audit(.policyDenied, context, request, user: state.identity?.user, detail: [("policy", policy.name)])
          return .answer(.forbidden("the '\(policy.name)' policy does not allow this request"))
        }
      case .rateLimit(let step):
        if let outcome = rateLimit(step, request: request, state: &state, context: context) { return outcome }
      }
      state.next += 1
    }
    return .proceed
  }

  /// The identity's `jti` against the provider's deny-list: nil to go on, or the outcome.
  static func checkRevocation(
    _ step: AuthStep, request: some AdmissionRequest, state: inout AdmissionState, context: Context
  ) -> AdmissionOutcome? {
    guard !state.revocationChecked, let identity = state.identity, let (rule, key) = identity.revocation else { return nil }
    guard case .exists(let reply)? = state.storeReply else { return .ask(rule.store, .exists(key)) }
    state.storeReply = nil
    let index = step.providers.firstIndex { $0.name == identity.provider } ?? 0
    switch reply {
    case .success(false):
      state.revocationChecked = true
      return nil
    case .success(true):
      step.failureCounter(provider: index, .revoked).increment()
      audit(
        .authDenied, context, request, user: identity.user,
        detail: [("provider", identity.provider), ("reason", AuthFailure.revoked.rawValue)])
      state.identity = nil
      return .answer(.unauthenticated(AuthFailure.revoked.description, tokenSent: true))
    case .failure(let error):
      context.metrics.fallback(store: rule.store.name, failure: error.failure, deny: rule.denyOnStoreError)
      if rule.denyOnStoreError {
        step.failureCounter(provider: index, .revocationUnavailable).increment()
        if Log.enabled(.warning) {
          Log.warning(
            "revocation list not reachable; refusing the token",
            [("store", rule.store.name), ("error", error.failure.rawValue)])
        }
        state.identity = nil
        return .answer(.unavailable("the token's revocation status cannot be checked"))
      }
      state.revocationChecked = true
      return nil
    }
  }

  /// Local limits first (inline, exact, refunded if a later limit refuses), then each shared
  /// store's limits in one round trip. Nil to go on, or the outcome.
  static func rateLimit(
    _ step: RateLimitStep, request: some AdmissionRequest, state: inout AdmissionState, context: Context
  ) -> AdmissionOutcome? {
    let claims = state.identity?.claims?.payload
    func localKey(_ limit: CompiledLimit) -> UInt64 {
      let (tag, text) = limit.keyValue(
        clientIP: request.clientIPText, header: { request.firstHeader($0) }, claims: claims, route: step.route)
      return RateLimitKey.hash(tag: tag, text)
    }
    func refundLocals(upTo end: Int) {
      for limit in step.locals[..<end] {
        if case .local(let store) = limit.placement { store.refund(key: localKey(limit), now: context.nowNanos) }
      }
    }
    if !state.localLimitsCharged {
      for (i, limit) in step.locals.enumerated() {
        guard case .local(let store) = limit.placement else { continue }
        let decision = store.take(key: localKey(limit), now: context.nowNanos)
        if !decision.admitted {
          refundLocals(upTo: i)
          return refuse(
            limit, request: request, state: state, context: context,
            refusal: RateLimitRefusal(
              limitName: limit.name, limit: limit.rule.limit, remaining: 0,
              retryAfterSeconds: decision.retryAfter.secondsRoundedUp, resetSeconds: decision.reset.secondsRoundedUp))
        }
      }
      state.localLimitsCharged = true
    }
    while state.sharedGroupsDone < step.shared.count {
      let group = step.shared[state.sharedGroupsDone]
      guard case .limits(let reply)? = state.storeReply else {
        var keys: [String] = []
        keys.reserveCapacity(group.limits.count)
        for limit in group.limits {
          let (tag, text) = limit.keyValue(
            clientIP: request.clientIPText, header: { request.firstHeader($0) }, claims: claims, route: step.route)
          keys.append(limit.sharedKey(tag: tag, text: text))
        }
        return .ask(group.store, .limits(keys: keys, rules: group.limits.map(\.rule)))
      }
      state.storeReply = nil
      switch reply {
      case .success(let verdict):
        if !verdict.admitted {
          refundLocals(upTo: step.locals.count)
          let limit = group.limits[min(max(verdict.refusedBy, 0), group.limits.count - 1)]
          return refuse(
            limit, request: request, state: state, context: context,
            refusal: RateLimitRefusal(
              limitName: limit.name, limit: limit.rule.limit, remaining: 0,
              retryAfterSeconds: verdict.retryAfterNanos.secondsRoundedUp, resetSeconds: verdict.resetNanos.secondsRoundedUp))
        }
      case .failure(let error):
        let deny = group.limits.contains { if case .shared(_, .deny) = $0.placement { true } else { false } }
        context.metrics.fallback(store: group.store.name, failure: error.failure, deny: deny)
        if deny {
          refundLocals(upTo: step.locals.count)
          if Log.enabled(.warning) {
            Log.warning(
              "rate limit store not reachable; refusing (on_store_error: deny)",
              [("store", group.store.name), ("error", error.failure.rawValue)])
          }
          return .answer(.unavailable("the rate limit store '\(group.store.name)' is not reachable"))
        }
      }
      state.sharedGroupsDone += 1
    }
    return nil
  }

  static func refuse(
    _ limit: CompiledLimit, request: some AdmissionRequest, state: AdmissionState, context: Context, refusal: RateLimitRefusal
  ) -> AdmissionOutcome {
    limit.refused.increment()
    audit(.rateLimited, context, request, user: state.identity?.user, detail: [("limit", limit.name)])
    return .answer(.rateLimited(refusal))
  }

  static func audit(
    _ kind: AuditEventKind, _ context: Context, _ request: some AdmissionRequest, user: String?, detail: [(String, String)]
  ) {
    guard context.audit.wants(kind) else { return }
    context.audit.publish(
      AuditEvent(
        kind: kind, requestID: context.requestID.text, route: context.route.name, clientIP: request.clientIPText, user: user,
        detail: detail))
  }
}

extension Exchange: AdmissionRequest {
  var method: String { head.method }
  var canonicalPath: String { path }
  var clientIPText: String { clientIP }
  var tlsServerName: String? { tls?.serverName }
  var query: String? { upstreamQuery }
  func headerValues(_ lowercasedName: String) -> [String] { head.fields.values(lowercasedName) }
  func firstHeader(_ lowercasedName: String) -> String? { head.fields.first(lowercasedName) }
}
