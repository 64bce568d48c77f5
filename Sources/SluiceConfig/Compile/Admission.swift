import SluiceCore
import SluiceFeatures

/// A route's authenticate step: its providers, and their failure counters resolved once per
/// config (`sluice_auth_failures_total{route,provider,reason}`).
public final class AuthStep: Sendable {
  public let providers: [AuthProvider]
  let failures: [[Counter]]

  init(route: String, providers: [AuthProvider], metrics: MetricsRegistry) {
    self.providers = providers
    self.failures = providers.map { provider in
      AuthFailure.allCases.map { reason in
        metrics.counter(
          "sluice_auth_failures_total", help: "Requests refused by authentication, by route, provider and reason.",
          labels: [("route", route), ("provider", provider.name), ("reason", reason.rawValue)])
      }
    }
  }

  public func failureCounter(provider: Int, _ failure: AuthFailure) -> Counter {
    failures[provider][AuthFailure.allCases.firstIndex(of: failure)!]
  }
}

/// One step of a route's admission list, compiled once per config. The list runs after route
/// match and before backend choice (docs/architecture.md, "The request path"); the next
/// capabilities (rate limits, fault injection, concurrency and breaker admission) add cases,
/// and the compiler points at every `switch` that must learn them.
public enum AdmissionStep: Sendable {
  /// `OPTIONS` + `Origin` + `Access-Control-Request-Method`: answered here, never forwarded;
  /// before authentication, since browsers send no credentials on a preflight.
  case corsPreflight(CORSPolicy)
  case authenticate(AuthStep)
  case authorize(AccessPolicy)
  /// After authentication and authorization (as Kong orders its plugins): a refused
  /// credential does not use up a client's allowance, and `claim:` keys have their claims.
  case rateLimit(RateLimitStep)
}

/// Auth providers as the request path uses them, built once per config. Key stores come from
/// `PersistentState`, so fetched keys survive a reload.
enum AuthCompiler {
  static func providers(_ config: SluiceConfiguration, state: PersistentState, stores: [String: SharedStore])
    -> [String: AuthProvider]
  {
    var out: [String: AuthProvider] = [:]
    for provider in config.auth {
      switch provider.kind {
      case .apiKey(let c):
        out[provider.name] = .apiKey(
          APIKeyProvider(name: provider.name, source: c.source, keys: c.keys, forwardKey: c.forwardKey))
      case .jwt(let c):
        let store: KeyStore
        switch c.keySource {
        case .url(let url):
          store = state.keyStore(provider: provider.name, url: url)
          store.setDenyWhenStale(c.onJWKSUnavailable == .deny)
        case .file(_, let keys):
          store = KeyStore(keys: keys)
        case .secret(let secret):
          store = KeyStore(keys: KeySet(keys: [.secret(secret, algorithms: Set(c.algorithms))]))
        }
        let policy = JWTPolicy(
          issuer: c.issuer, audiences: c.audiences, algorithms: Set(c.algorithms),
          clockSkewSeconds: c.clockSkew.nanoseconds / 1_000_000_000, forwardClaims: c.forwardClaims)
        var revocation: RevocationRule?
        if let r = c.revocation, let shared = stores[r.store] {
          revocation = RevocationRule(store: shared, keyPrefix: r.keyPrefix, denyOnStoreError: r.onStoreError == .deny)
        }
        out[provider.name] = .jwt(
          JWTProvider(
            name: provider.name, policy: policy, sources: c.tokenFrom, keys: store, forwardToken: c.forwardToken,
            revocation: revocation))
      }
    }
    return out
  }

  /// The route's effective header edits: client copies of claim headers are always removed
  /// (SECURITY.md rule 4), credentials too unless forwarded, and with CORS the upstream's own
  /// `access-control-*` answers give way to the gateway's.
  static func effectiveRoute(_ route: RouteConfig, _ config: SluiceConfiguration) -> RouteConfig {
    var out = route
    func remove(_ name: String, from mutation: inout HeaderMutation) {
      if !mutation.remove.contains(name) && !mutation.sets.contains(where: { $0.name == name }) {
        mutation.remove.append(name)
      }
    }
    // Claim headers of every JWT provider, on every route: an upstream that trusts
    // `x-user-id` must not be reachable with a client-made one through a route without auth.
    for provider in config.auth {
      if case .jwt(let c) = provider.kind {
        for (_, header) in c.forwardClaims { remove(header, from: &out.requestHeaders) }
      }
    }
    for name in route.auth {
      switch config.authProvider(named: name)?.kind {
      case .jwt(let c)?:
        if !c.forwardToken {
          for case .header(let h) in c.tokenFrom { remove(h, from: &out.requestHeaders) }
        }
      case .apiKey(let c)?:
        if !c.forwardKey, case .header(let h) = c.source { remove(h, from: &out.requestHeaders) }
      case nil: break
      }
    }
    if route.cors != nil {
      for h in ["access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers"] {
        remove(h, from: &out.responseHeaders)
      }
    }
    return out
  }

  static func steps(
    _ route: RouteConfig, _ config: SluiceConfiguration, providers: [String: AuthProvider], limits: [String: LimitPlacement],
    metrics: MetricsRegistry
  ) -> [AdmissionStep] {
    var steps: [AdmissionStep] = []
    if let cors = route.cors { steps.append(.corsPreflight(cors)) }
    let list = route.auth.compactMap { providers[$0] }
    if !list.isEmpty { steps.append(.authenticate(AuthStep(route: route.name, providers: list, metrics: metrics))) }
    if let name = route.authorize, let policy = config.policies.first(where: { $0.name == name }) {
      steps.append(.authorize(policy))
    }
    let compiled: [CompiledLimit] = route.rateLimit.compactMap { name in
      guard let limit = config.rateLimits.first(where: { $0.name == name }), let placement = limits[name] else { return nil }
      return CompiledLimit(
        name: name, key: limit.key, rule: limit.rule, placement: placement,
        refused: metrics.counter(
          "sluice_rate_limited_total", help: "Requests refused with 429, by route and limit.",
          labels: [("route", route.name), ("limit", name)]))
    }
    if !compiled.isEmpty { steps.append(.rateLimit(RateLimitStep(route: route.name, limits: compiled))) }
    return steps
  }
}

typealias LimitPlacement = CompiledLimit.Placement

/// Where each limit's state lives, built once per config. Local stores and shared-store
/// handles come from `PersistentState`, so an unchanged limit keeps its counts across a reload
/// and an unchanged store keeps its connections.
enum RateLimitCompiler {
  static func stores(_ config: SluiceConfiguration, state: PersistentState) -> [String: SharedStore] {
    var out: [String: SharedStore] = [:]
    for store in config.stores { out[store.name] = state.sharedStore(store) }
    return out
  }

  static func placements(_ config: SluiceConfiguration, state: PersistentState, stores: [String: SharedStore])
    -> [String: LimitPlacement]
  {
    var out: [String: LimitPlacement] = [:]
    for limit in config.rateLimits {
      if limit.store == "local" {
        out[limit.name] = .local(state.localLimit(limit))
      } else if let store = stores[limit.store] {
        out[limit.name] = .shared(store, onError: limit.onStoreError)
      }
    }
    return out
  }
}

/// Counters admission touches only on a fallback path (a store that did not answer), looked
/// up by name when needed: `sluice_store_fallbacks_total{store,error,decision}`.
public final class AdmissionMetrics: Sendable {
  let registry: MetricsRegistry

  public init(registry: MetricsRegistry) { self.registry = registry }

  public func fallback(store: String, failure: StoreFailure, deny: Bool) {
    registry.counter(
      "sluice_store_fallbacks_total",
      help: "Decisions taken without the store's answer (on_store_error), by store, error and decision.",
      labels: [("store", store), ("error", failure.rawValue), ("decision", deny ? "deny" : "allow")]
    ).increment()
  }
}
