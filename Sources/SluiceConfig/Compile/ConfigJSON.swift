import SluiceCore
import SluiceFeatures

/// The effective configuration as JSON for `GET /config`: every default filled in, secrets
/// shown as `"<redacted>"` (SECURITY.md rule 10).
public enum ConfigJSON {
  public static let redacted = JSONValue.string("<redacted>")

  public static func render(_ c: SluiceConfiguration) -> JSONValue {
    .object([
      ("version", .int(1)),
      (
        "runtime",
        .object([
          ("event_loops", c.runtime.eventLoops.map { .int($0) } ?? .string("auto")),
          ("drain_timeout", .string(c.runtime.drainTimeout.description)),
        ])
      ),
      (
        "admin",
        .object([
          ("listen", .string(c.admin.listen?.description ?? "off")),
          ("token", c.admin.token == nil ? .null : redacted),
        ])
      ),
      ("listeners", .array(c.listeners.map(listener))),
      ("backends", .object(c.backends.map { ($0.name, backend($0)) })),
      (
        "observability",
        .object([
          ("access_log", .object([("format", .string("json")), ("output", .string(c.observability.accessLogOutput.description))])),
          ("request_id_header", .string(c.observability.requestIDHeader)),
          ("tracing", .object([("propagate", .string(c.observability.propagateTracing ? "w3c" : "none"))])),
        ])
      ),
      ("auth", .object(c.auth.map { ($0.name, authProvider($0)) })),
      ("policies", .object(c.policies.map { ($0.name, policy($0)) })),
      ("audit", .object([("sinks", .array(c.audit.sinks.map(auditSink)))])),
      ("rate_limits", .object(c.rateLimits.map { ($0.name, rateLimit($0)) })),
      ("stores", .object(c.stores.map { ($0.name, store($0)) })),
    ])
  }

  /// `0.5` → `50%`, `0.125` → `12.5%`: as it would be written in the config.
  static func percent(_ share: Double) -> String {
    let value = share * 100
    return value == value.rounded() ? "\(Int(value))%" : "\(value)%"
  }

  static func rateLimit(_ l: RateLimitConfig) -> JSONValue {
    var out: [(String, JSONValue)] = [
      ("key", .string(l.key.description)), ("limit", .int(l.limit)), ("per", .string(l.per.description)),
      ("burst", .int(l.burst ?? l.limit)), ("store", .string(l.store)),
    ]
    if l.store == "local" {
      out.append(("max_keys", .int(l.maxKeys)))
    } else {
      out.append(("on_store_error", .string(l.onStoreError.rawValue)))
    }
    return .object(out)
  }

  /// The URL's password is never shown.
  static func store(_ s: StoreConfig) -> JSONValue {
    .object([
      ("type", .string("redis")), ("url", .string(s.url.redacted)), ("timeout", .string(s.timeout.description)),
      ("max_pending", .int(s.maxPending)), ("tls", s.tls.map { tls($0) } ?? .null),
    ])
  }

  static func authProvider(_ p: AuthProviderConfig) -> JSONValue {
    switch p.kind {
    case .apiKey(let k):
      var out: [(String, JSONValue)] = [("type", .string("api_key"))]
      switch k.source {
      case .query(let q): out.append(("query", .string(q)))
      case .header(let h), .cookie(let h): out.append(("header", .string(h)))
      }
      out.append(("keys", .object(k.keys.map { ($0.name, redacted) })))
      out.append(("forward_key", .bool(k.forwardKey)))
      return .object(out)
    case .jwt(let j):
      var out: [(String, JSONValue)] = [("type", .string("jwt"))]
      out.append(("issuer", j.issuer.map { .string($0) } ?? .null))
      out.append(("audiences", .array(j.audiences.map { .string($0) })))
      out.append(("algorithms", .array(j.algorithms.map { .string($0.rawValue) })))
      switch j.keySource {
      case .url(let u):
        out.append(("jwks_url", .string(u)))
        out.append(("jwks_refresh", .string(j.jwksRefresh.description)))
        out.append(("jwks_timeout", .string(j.jwksTimeout.description)))
        if let ca = j.jwksCA { out.append(("jwks_ca", .string(ca))) }
        out.append(("on_jwks_unavailable", .string(j.onJWKSUnavailable.rawValue)))
      case .file(let path, let keys):
        out.append(("jwks_file", .string(path)))
        out.append(("kids", .array(keys.kids.map { .string($0) })))
      case .secret:
        out.append(("secret", redacted))
      }
      out.append(("clock_skew", .string(j.clockSkew.description)))
      out.append(("token_from", .array(j.tokenFrom.map { .string($0.description) })))
      out.append(("forward_claims", .object(j.forwardClaims.map { ($0.claim, .string($0.header)) })))
      out.append(("forward_token", .bool(j.forwardToken)))
      if let r = j.revocation {
        out.append(
          (
            "revocation",
            .object([
              ("store", .string(r.store)), ("key_prefix", .string(r.keyPrefix)),
              ("on_store_error", .string(r.onStoreError.rawValue)),
            ])
          ))
      }
      return .object(out)
    }
  }

  static func policy(_ p: AccessPolicy) -> JSONValue {
    .object([
      (
        "allow",
        .array(
          p.rules.map { rule in
            var out: [(String, JSONValue)] = []
            if !rule.claims.isEmpty {
              out.append(
                (
                  "claims",
                  .object(
                    rule.claims.map {
                      ($0.claim, $0.values.count == 1 ? .string($0.values[0]) : .array($0.values.map { .string($0) }))
                    })
                ))
            }
            if !rule.sourceIPs.isEmpty { out.append(("source_ip", .array(rule.sourceIPs.map { .string($0.description) }))) }
            if !rule.methods.isEmpty { out.append(("methods", .array(rule.methods.sorted().map { .string($0) }))) }
            if !rule.paths.isEmpty { out.append(("paths", .array(rule.paths.map { .string($0) }))) }
            return .object(out)
          })
      )
    ])
  }

  static func cors(_ c: CORSPolicy) -> JSONValue {
    .object([
      (
        "allow_origins",
        .array(
          c.allowOrigins.map {
            switch $0 {
            case .any: .string("*")
            case .exact(let o): .string(o)
            case .wildcard(let scheme, let suffix): .string(scheme + "://*" + suffix)
            }
          })
      ),
      ("allow_methods", .array(c.allowMethods.map { .string($0) })),
      ("allow_headers", .array(c.allowHeaders.map { .string($0) })),
      ("expose_headers", .array(c.exposeHeaders.map { .string($0) })),
      ("allow_credentials", .bool(c.allowCredentials)),
      ("max_age", c.maxAgeSeconds.map { .string(ConfigDuration.seconds(Int64($0)).description) } ?? .null),
    ])
  }

  static func auditSink(_ s: AuditSinkConfig) -> JSONValue {
    // The URL may carry a secret in its query (a token for the receiver): shown without it.
    let url =
      HTTPURL.parse(s.url).map { u in
        var shown = u
        if let q = u.target.firstIndex(of: "?") { shown.target = String(u.target[..<q]) + "?<redacted>" }
        return shown.description
      } ?? s.url
    return .object([
      ("type", .string("webhook")), ("name", .string(s.name)), ("url", .string(url)),
      ("events", .array(AuditEventKind.allCases.filter { s.events.contains($0) }.map { .string($0.rawValue) })),
      ("queue", .int(s.queue)), ("batch", .int(s.batch)), ("timeout", .string(s.timeout.description)),
      ("retries", .int(s.retries)),
    ])
  }

  /// Paths and names only: never key material.
  static func tls(_ t: ListenerTLS) -> JSONValue {
    .object([
      (
        "certificates",
        .array(
          t.certificates.map { c in
            .object([
              ("cert", .string(c.certPath)), ("key", .string(c.keyPath)),
              ("server_names", .array(c.serverNames.map { .string($0.description) })),
              ("not_after", c.material.map { .string(WallClock.rfc3339(milliseconds: Int64($0.notValidAfter) * 1000)) } ?? .null),
            ])
          })
      ),
      ("handshake_timeout", .string(t.handshakeTimeout.description)), ("min_version", .string(t.minVersion)),
    ])
  }

  static func tls(_ t: BackendTLS) -> JSONValue {
    .object([
      ("ca", t.ca.map { .string($0) } ?? .null), ("server_name", t.serverName.map { .string($0) } ?? .null),
      ("cert", t.certPath.map { .string($0) } ?? .null), ("verify", .bool(t.verify)),
    ])
  }

  static func listener(_ l: ListenerConfig) -> JSONValue {
    let limits = l.limits
    return .object([
      ("name", .string(l.name)),
      ("listen", .string(l.listen.description)),
      ("protocol", .string(l.protocol)),
      ("tls", l.tls.map { tls($0) } ?? .null),
      ("trusted_proxies", .array(l.trustedProxies.map { .string($0.description) })),
      (
        "limits",
        .object([
          ("max_connections", .int(limits.maxConnections)),
          ("max_request_header_bytes", .string(limits.maxRequestHeaderBytes.description)),
          ("max_request_uri_bytes", .string(limits.maxRequestURIBytes.description)),
          ("max_request_headers", .int(limits.maxRequestHeaders)),
          ("max_request_body_bytes", .string(limits.maxRequestBodyBytes.description)),
          ("request_header_timeout", .string(limits.requestHeaderTimeout.description)),
          ("idle_timeout", .string(limits.idleTimeout.description)),
          ("request_body_timeout", .string(limits.requestBodyTimeout.description)),
          ("max_connection_age", .string(limits.maxConnectionAge.description)),
        ])
      ),
      ("routes", .array(l.routes.map(route))),
    ])
  }

  static func route(_ r: RouteConfig) -> JSONValue {
    var match: [(String, JSONValue)] = []
    if let host = r.match.host { match.append(("host", .string(host.description))) }
    if let name = r.match.serverName { match.append(("server_name", .string(name.description))) }
    switch r.match.path {
    case .exact(let p): match.append(("path", .string(p)))
    case .prefix(let p): match.append(("path_prefix", .string(p)))
    case .regex(let re): match.append(("path_regex", .string(re.source)))
    case nil: break
    }
    if let methods = r.match.methods { match.append(("methods", .array(methods.sorted().map { .string($0) }))) }
    if !r.match.headers.isEmpty { match.append(("headers", .object(r.match.headers.map { ($0.name, .string($0.value)) }))) }
    var out: [(String, JSONValue)] = [("name", .string(r.name)), ("match", .object(match))]
    if let rw = r.rewrite {
      var fields: [(String, JSONValue)] = []
      if let s = rw.stripPrefix { fields.append(("strip_prefix", .string(s))) }
      if let a = rw.addPrefix { fields.append(("add_prefix", .string(a))) }
      if let h = rw.host { fields.append(("host", .string(h))) }
      out.append(("rewrite", .object(fields)))
    }
    out.append(("request_headers", mutation(r.requestHeaders)))
    out.append(("response_headers", mutation(r.responseHeaders)))
    out.append(("timeout", .string(r.timeout.description)))
    out.append(("stream_idle_timeout", .string(r.streamIdleTimeout.description)))
    out.append(("websocket", .bool(r.websocket)))
    if let p = r.retries {
      var fields: [(String, JSONValue)] = [
        ("attempts", .int(p.attempts)), ("on", .array(p.conditions.map { .string($0) })),
      ]
      if let t = p.perTryTimeout { fields.append(("per_try_timeout", .string(t.description))) }
      fields += [
        ("budget", .string(Self.percent(p.budget))),
        ("backoff", .object([("base", .string(p.backoffBase.description)), ("max", .string(p.backoffMax.description))])),
        ("replay_buffer", .string(p.replayBuffer.description)), ("retry_non_idempotent", .bool(p.nonIdempotent)),
      ]
      out.append(("retries", .object(fields)))
    }
    if let f = r.fault {
      out.append(
        (
          "fault",
          .object([
            ("delay", .object([("percent", .double(f.delayShare * 100)), ("duration", .string(f.delay.description))])),
            ("abort", .object([("percent", .double(f.abortShare * 100)), ("status", .int(f.abortStatus))])),
          ])
        ))
    }
    if let m = r.mirror {
      out.append(("mirror", .object([("backend", .string(m.backend)), ("percent", .double(m.share * 100))])))
    }
    if !r.auth.isEmpty { out.append(("auth", .array(r.auth.map { .string($0) }))) }
    if let a = r.authorize { out.append(("authorize", .string(a))) }
    if let c = r.cors { out.append(("cors", cors(c))) }
    if !r.rateLimit.isEmpty { out.append(("rate_limit", .array(r.rateLimit.map { .string($0) }))) }
    switch r.action {
    case .backend(let b): out.append(("backend", .string(b)))
    case .split(let parts):
      out.append(("split", .array(parts.map { .object([("backend", .string($0.backend)), ("weight", .int($0.weight))]) })))
    case .directResponse(let d):
      var fields: [(String, JSONValue)] = [("status", .int(d.status))]
      if d.echo { fields.append(("echo", .bool(true))) } else { fields.append(("body", .string(d.body))) }
      fields.append(("headers", .object(d.headers.map { ($0.name, .string($0.value)) })))
      out.append(("direct_response", .object(fields)))
    }
    return .object(out)
  }

  static func mutation(_ m: HeaderMutation) -> JSONValue {
    .object([
      ("set", .object(m.sets.map { ($0.name, .string($0.value)) })),
      ("remove", .array(m.remove.map { .string($0) })),
    ])
  }

  static func backend(_ b: BackendConfig) -> JSONValue {
    var out: [(String, JSONValue)] = [
      ("protocol", .string(b.protocol)),
      ("endpoints", .array(b.endpoints.map { .string($0.description) })),
      ("load_balancing", .string(b.loadBalancing.description)),
    ]
    if case .consistentHash(let key) = b.loadBalancing { out.append(("hash_on", .string(key.description))) }
    out.append(("connect_timeout", .string(b.connectTimeout.description)))
    if let t = b.tls { out.append(("tls", tls(t))) }
    if let c = b.circuitBreaker {
      out.append(
        (
          "circuit_breaker",
          .object([
            ("error_rate", .string(Self.percent(c.errorRate))),
            ("window", .string(ConfigDuration(nanoseconds: c.window).description)),
            ("min_requests", .int(c.minRequests)),
            ("open_for", .string(ConfigDuration(nanoseconds: c.openFor).description)),
            ("half_open_requests", .int(c.halfOpenRequests)),
          ])
        ))
    }
    if let limit = b.maxConcurrentRequests {
      out.append(("max_concurrent_requests", .int(limit)))
      out.append(("queue", .object([("size", .int(b.queueSize)), ("timeout", .string(b.queueTimeout.description))])))
    }
    if let h = b.healthCheck {
      var fields: [(String, JSONValue)] = [
        ("path", .string(h.path)), ("interval", .string(h.interval.description)),
        ("timeout", .string(h.timeout.description)), ("healthy_threshold", .int(h.healthyThreshold)),
        ("unhealthy_threshold", .int(h.unhealthyThreshold)), ("jitter", .string(h.jitter.description)),
      ]
      if let host = h.host { fields.append(("host", .string(host))) }
      out.append(("health_check", .object(fields)))
    }
    if let o = b.outlierDetection {
      out.append(
        (
          "outlier_detection",
          .object([
            ("consecutive_failures", .int(o.consecutiveFailures)), ("eject_for", .string(o.ejectFor.description)),
            ("max_ejected", .string(Self.percent(o.maxEjected))),
          ])
        ))
    }
    return .object(out)
  }
}
