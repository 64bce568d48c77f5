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
    ])
  }

  static func listener(_ l: ListenerConfig) -> JSONValue {
    let limits = l.limits
    return .object([
      ("name", .string(l.name)),
      ("listen", .string(l.listen.description)),
      ("protocol", .string(l.protocol)),
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
    return .object(out)
  }
}
