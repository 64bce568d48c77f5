import SluiceCore
import SluiceFeatures

/// The result of loading a config: the typed configuration when there were no errors, and
/// every diagnostic (errors and warnings) in file order.
public struct LoadResult: Sendable {
  public var configuration: SluiceConfiguration?
  public var diagnostics: [Diagnostic]

  public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
  public var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }
}

/// Decode → validate: YAML text to a typed `SluiceConfiguration`, or all the reasons why not.
public enum ConfigLoader {
  public static func load(text: String, file: String, environment: [String: String]) -> LoadResult {
    var yaml = YAMLLoader(file: file, baseDirectory: ProcessFiles.directory(of: file), environment: environment)
    let root = yaml.load(text)
    var validator = Validator(file: file)
    validator.reader.diagnostics = yaml.diagnostics
    guard let root else { return LoadResult(configuration: nil, diagnostics: yaml.diagnostics) }
    let config = validator.validate(root)
    let diagnostics = validator.reader.diagnostics.sorted {
      ($0.line, $0.column) < ($1.line, $1.column)
    }
    let ok = !diagnostics.contains { $0.severity == .error }
    return LoadResult(configuration: ok ? config : nil, diagnostics: diagnostics)
  }

  public static func load(file: String, environment: [String: String]) -> LoadResult {
    guard let text = ProcessFiles.read(file) else {
      return LoadResult(
        configuration: nil,
        diagnostics: [Diagnostic(file: file, line: 1, column: 1, message: "cannot read the configuration file")])
    }
    return load(text: text, file: file, environment: environment)
  }
}

struct Validator {
  var reader: Reader
  /// Backend references to check once all backends are known.
  var backendRefs: [(name: String, at: SourceLocation, route: String)] = []
  /// Route name → the auth provider names it lists, and the policy it names (checked last).
  var authRefs: [String: [(String, SourceLocation)]] = [:]
  var policyRefs: [String: SourceLocation] = [:]
  var policyLocations: [String: SourceLocation] = [:]
  /// Every provider name under `auth`, also those with errors (no cascade of "not defined").
  var declaredProviders: Set<String> = []
  /// Names under `stores` and `rate_limits` (also those with errors), references to them.
  var declaredStores: Set<String> = []
  var declaredLimits: Set<String> = []
  var storeRefs: [(name: String, at: SourceLocation, who: String)] = []
  var limitRefs: [String: [(String, SourceLocation)]] = [:]
  /// Relative paths (jwks_file, jwks_ca) are relative to the config file's directory.
  let baseDirectory: String

  init(file: String) {
    reader = Reader(file: file)
    baseDirectory = ProcessFiles.directory(of: file)
  }

  /// A path from the config: relative ones are relative to the config file's directory.
  func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : baseDirectory + "/" + path }

  mutating func validate(_ root: YNode) -> SluiceConfiguration {
    var config = SluiceConfiguration()
    guard
      let top = reader.mapping(
        root, "the configuration",
        known: [
          "version", "runtime", "admin", "listeners", "backends", "observability", "auth", "policies", "audit",
          "rate_limits", "stores",
        ])
    else { return config }

    if let v = top["version"] {
      if case .scalar("1", false, _) = v.value {
      } else {
        reader.error(v.value.location, "version must be 1")
      }
    } else {
      reader.error(root.location, "missing 'version: 1'")
    }
    if let node = top["runtime"]?.value { config.runtime = runtime(node) }
    if let node = top["admin"]?.value { config.admin = admin(node) }
    if let node = top["observability"]?.value { config.observability = observability(node) }
    if let node = top["backends"]?.value { config.backends = backends(node) }
    if let node = top["stores"]?.value { config.stores = stores(node) }
    if let node = top["rate_limits"]?.value { config.rateLimits = rateLimits(node) }
    if let node = top["auth"]?.value { config.auth = authProviders(node) }
    if let node = top["policies"]?.value { config.policies = policies(node) }
    if let node = top["audit"]?.value { config.audit = audit(node) }
    if let node = top["listeners"]?.value {
      config.listeners = listeners(node)
    } else {
      reader.error(root.location, "missing 'listeners': at least one listener is needed")
    }

    checkAuthReferences(config)
    checkRateLimitReferences(config)
    checkBackendProtocols(config)
    let names = Set(config.backends.map(\.name))
    for ref in backendRefs where !names.contains(ref.name) {
      reader.error(ref.at, "route '\(ref.route)' names backend '\(ref.name)', which is not defined in 'backends'")
    }
    // Two listeners on one address, and the admin API on a public listener's address.
    var addresses: [HostPort: String] = [:]
    for listener in config.listeners {
      if let other = addresses[listener.listen] {
        reader.error(listener.location, "listener '\(listener.name)' uses \(listener.listen), already used by '\(other)'")
      }
      addresses[listener.listen] = listener.name
      if let admin = config.admin.listen, admin.port == listener.listen.port,
        admin.host == listener.listen.host || admin.host == "0.0.0.0" || listener.listen.host == "0.0.0.0"
      {
        reader.error(listener.location, "listener '\(listener.name)' uses the admin API's port \(admin.port)")
      }
    }
    return config
  }

  /// A tls_passthrough route splices bytes to `protocol: tcp` backends only, and HTTP routes
  /// never do.
  mutating func checkBackendProtocols(_ config: SluiceConfiguration) {
    for listener in config.listeners {
      let passthrough = listener.protocol == "tls_passthrough"
      for route in listener.routes {
        let names: [String]
        switch route.action {
        case .backend(let name): names = [name]
        case .split(let entries): names = entries.map(\.backend)
        case .directResponse:
          if passthrough {
            reader.error(route.location, "route '\(route.name)': a tls_passthrough route needs a backend with protocol: tcp")
          }
          names = []
        }
        for name in names {
          guard let backend = config.backend(named: name) else { continue }
          if passthrough && backend.protocol != "tcp" {
            reader.error(
              route.location,
              "route '\(route.name)' of tls_passthrough listener '\(listener.name)' needs backends with protocol: tcp; '\(name)' is \(backend.protocol)"
            )
          } else if !passthrough && backend.protocol == "tcp" {
            reader.error(
              route.location,
              "route '\(route.name)' forwards HTTP, but backend '\(name)' is protocol: tcp (for tls_passthrough listeners)")
          }
        }
        if let mirror = route.mirror, config.backend(named: mirror.backend)?.protocol == "tcp" {
          reader.error(route.location, "route '\(route.name)': mirror backend '\(mirror.backend)' is protocol: tcp")
        }
      }
    }
  }

  mutating func runtime(_ node: YNode) -> RuntimeSettings {
    var out = RuntimeSettings()
    guard let m = reader.mapping(node, "runtime", known: ["event_loops", "drain_timeout"]) else { return out }
    if let n = m["event_loops"]?.value {
      if case .scalar("auto", _, _) = n {
        out.eventLoops = nil
      } else {
        out.eventLoops = reader.int(n, "runtime.event_loops", min: 1, max: 256)
      }
    }
    if let n = m["drain_timeout"]?.value, let d = reader.duration(n, "runtime.drain_timeout", allowZero: true) {
      out.drainTimeout = d
    }
    return out
  }

  mutating func admin(_ node: YNode) -> AdminSettings {
    var out = AdminSettings()
    guard let m = reader.mapping(node, "admin", known: ["listen", "token"]) else { return out }
    if let n = m["listen"]?.value, let text = reader.string(n, "admin.listen") {
      if text == "off" {
        out.listen = nil
      } else if let hp = HostPort.parse(text) {
        out.listen = hp
      } else {
        reader.error(n.location, "admin.listen must be HOST:PORT (or off), got '\(text)'")
      }
    }
    if let n = m["token"]?.value, let token = reader.string(n, "admin.token") {
      if token.isEmpty || !HeaderRules.isValidValue(token) {
        reader.error(n.location, "admin.token must be a non-empty string without line breaks")
      } else {
        out.token = token
      }
    }
    return out
  }

  mutating func observability(_ node: YNode) -> ObservabilitySettings {
    var out = ObservabilitySettings()
    guard
      let m = reader.mapping(node, "observability", known: ["access_log", "request_id_header", "tracing"])
    else { return out }
    if let n = m["access_log"]?.value, let a = reader.mapping(n, "observability.access_log", known: ["format", "output"]) {
      if let f = a["format"]?.value, let text = reader.string(f, "access_log.format"), text != "json" {
        reader.error(f.location, "access_log.format must be json")
      }
      if let o = a["output"]?.value, let text = reader.string(o, "access_log.output") {
        switch text {
        case "stdout": out.accessLogOutput = .stdout
        case "stderr": out.accessLogOutput = .stderr
        case "none", "off": out.accessLogOutput = .none
        case "": reader.error(o.location, "access_log.output must be stdout, stderr, none or a file path")
        default: out.accessLogOutput = .file(resolve(text))
        }
      }
    }
    if let n = m["request_id_header"]?.value, let text = reader.string(n, "request_id_header") {
      if HeaderRules.isToken(text) {
        out.requestIDHeader = text.lowercased()
      } else {
        reader.error(n.location, "request_id_header must be a header name")
      }
    }
    if let n = m["tracing"]?.value, let t = reader.mapping(n, "observability.tracing", known: ["propagate"]) {
      if let p = t["propagate"]?.value, let text = reader.string(p, "tracing.propagate") {
        switch text {
        case "w3c": out.propagateTracing = true
        case "none": out.propagateTracing = false
        default: reader.error(p.location, "tracing.propagate must be w3c or none")
        }
      }
    }
    return out
  }

  mutating func backends(_ node: YNode) -> [BackendConfig] {
    guard case .mapping(let pairs, _) = node else {
      reader.error(node.location, "backends must be a mapping of name to backend, not \(node.kindName)")
      return []
    }
    var out: [BackendConfig] = []
    for pair in pairs {
      if !Self.isName(pair.key) {
        reader.error(pair.keyLocation, "backend name '\(pair.key)' may only use letters, digits, '-', '_' and '.'")
      }
      if let b = backend(pair.key, pair.value) { out.append(b) }
    }
    return out
  }

  mutating func backend(_ name: String, _ node: YNode) -> BackendConfig? {
    let what = "backend '\(name)'"
    guard
      let m = reader.mapping(
        node, what,
        known: [
          "protocol", "endpoints", "load_balancing", "hash_on", "connect_timeout", "circuit_breaker",
          "max_concurrent_requests", "queue", "health_check", "outlier_detection", "tls",
        ])
    else { return nil }
    var out = BackendConfig(name: name, endpoints: [], location: node.location)
    if let n = m["protocol"]?.value, let text = reader.string(n, "\(what).protocol") {
      switch text {
      case "http1", "tcp": out.protocol = text
      case "h2c", "h2", "grpc":
        reader.error(n.location, "\(what): protocol '\(text)' is not supported yet by this version of Sluice (use http1 or tcp)")
      default: reader.error(n.location, "\(what): protocol must be one of http1, h2c, h2, grpc, tcp; got '\(text)'")
      }
    }
    if let n = m["endpoints"]?.value, let items = reader.stringList(n, "\(what).endpoints") {
      for (text, loc) in items {
        if let hp = HostPort.parse(text) {
          out.endpoints.append(hp)
        } else {
          reader.error(loc, "\(what): endpoint must be HOST:PORT with a port from 1 to 65535, got '\(text)'")
        }
      }
      if items.isEmpty { reader.error(n.location, "\(what) needs at least one endpoint") }
    } else if m["endpoints"] == nil {
      reader.error(node.location, "\(what) needs 'endpoints'")
    }
    var hashKey: HashKey?
    if let n = m["hash_on"]?.value, let text = reader.string(n, "\(what).hash_on") {
      if text == "client_ip" {
        hashKey = .clientIP
      } else if text.hasPrefix("header:"), HeaderRules.isToken(String(text.dropFirst(7))) {
        hashKey = .header(String(text.dropFirst(7)).lowercased())
      } else if text.hasPrefix("cookie:"), !text.dropFirst(7).isEmpty {
        hashKey = .cookie(String(text.dropFirst(7)))
      } else {
        reader.error(n.location, "\(what): hash_on must be header:NAME, cookie:NAME or client_ip, got '\(text)'")
      }
    }
    if let n = m["load_balancing"]?.value, let text = reader.string(n, "\(what).load_balancing") {
      switch text {
      case "round_robin": out.loadBalancing = .roundRobin
      case "least_request": out.loadBalancing = .leastRequest
      case "random": out.loadBalancing = .random
      case "consistent_hash":
        if let hashKey {
          out.loadBalancing = .consistentHash(hashKey)
        } else if m["hash_on"] == nil {
          reader.error(n.location, "\(what): consistent_hash needs 'hash_on' (header:NAME, cookie:NAME or client_ip)")
        }
      default:
        reader.error(
          n.location, "\(what): load_balancing must be one of round_robin, least_request, random, consistent_hash; got '\(text)'")
      }
    }
    if let pair = m["hash_on"], hashKey != nil {
      if case .consistentHash = out.loadBalancing {
      } else {
        reader.error(pair.keyLocation, "\(what): hash_on is only used with load_balancing: consistent_hash")
      }
    }
    if let n = m["circuit_breaker"]?.value { out.circuitBreaker = circuitBreaker(n, what) }
    if let n = m["health_check"]?.value { out.healthCheck = healthCheck(n, what) }
    if let n = m["outlier_detection"]?.value { out.outlierDetection = outlierDetection(n, what) }
    loadShedding(m, what, into: &out)
    if let n = m["connect_timeout"]?.value, let d = reader.duration(n, "\(what).connect_timeout") {
      out.connectTimeout = d
    }
    if let n = m["tls"]?.value {
      out.tls = backendTLS(n, what)
      if out.protocol == "tcp" {
        reader.error(n.location, "\(what): a tcp backend splices bytes as they come; it cannot add TLS")
      }
    }
    if out.protocol == "tcp", let pair = m["health_check"] {
      reader.error(pair.keyLocation, "\(what): health_check sends HTTP probes; a tcp backend cannot answer them")
    }
    return out
  }

  mutating func listeners(_ node: YNode) -> [ListenerConfig] {
    guard let items = reader.list(node, "listeners") else { return [] }
    if items.isEmpty { reader.error(node.location, "listeners must not be empty") }
    var out: [ListenerConfig] = []
    var names: Set<String> = []
    for (index, item) in items.enumerated() {
      guard let l = listener(index, item) else { continue }
      if !names.insert(l.name).inserted { reader.error(l.location, "duplicate listener name '\(l.name)'") }
      out.append(l)
    }
    return out
  }

  mutating func listener(_ index: Int, _ node: YNode) -> ListenerConfig? {
    guard
      let m = reader.mapping(
        node, "listener", known: ["name", "listen", "protocol", "trusted_proxies", "limits", "routes", "tls"])
    else { return nil }
    var name = "listener-\(index)"
    if let n = m["name"]?.value, let text = reader.string(n, "listener name") {
      if Self.isName(text) {
        name = text
      } else {
        reader.error(n.location, "listener name '\(text)' may only use letters, digits, '-', '_' and '.'")
      }
    }
    let what = "listener '\(name)'"
    var listen = HostPort(host: "0.0.0.0", port: 8080)
    if let n = m["listen"]?.value, let text = reader.string(n, "\(what).listen") {
      if let hp = HostPort.parse(text) {
        listen = hp
      } else {
        reader.error(n.location, "\(what): listen must be HOST:PORT with a port from 1 to 65535, got '\(text)'")
      }
    } else if m["listen"] == nil {
      reader.error(node.location, "\(what) needs 'listen' (HOST:PORT)")
    }
    var out = ListenerConfig(name: name, listen: listen, location: node.location)
    if let n = m["protocol"]?.value, let text = reader.string(n, "\(what).protocol") {
      switch text {
      case "http", "https", "tls_passthrough": out.protocol = text
      default: reader.error(n.location, "\(what): protocol must be http, https or tls_passthrough; got '\(text)'")
      }
    }
    if let n = m["trusted_proxies"]?.value, let items = reader.stringList(n, "\(what).trusted_proxies") {
      for (text, loc) in items {
        if let cidr = CIDR(text) {
          out.trustedProxies.append(cidr)
        } else {
          reader.error(loc, "\(what): '\(text)' is not an IP network like 10.0.0.0/8")
        }
      }
    }
    if let n = m["tls"]?.value {
      if out.protocol == "https" {
        out.tls = listenerTLS(n, what)
      } else {
        reader.error(
          m["tls"]!.keyLocation,
          out.protocol == "tls_passthrough"
            ? "\(what): a tls_passthrough listener does not terminate TLS, so it takes no 'tls' section"
            : "\(what): 'tls' needs protocol: https")
      }
    } else if out.protocol == "https" {
      reader.error(node.location, "\(what): protocol https needs a 'tls' section with its certificates")
    }
    if let n = m["limits"]?.value { out.limits = limits(n, what) }
    if let n = m["routes"]?.value, let items = reader.list(n, "\(what).routes") {
      var names: Set<String> = []
      for (i, item) in items.enumerated() {
        guard let r = route(i, item, listener: name, protocol: out.protocol) else { continue }
        if !names.insert(r.name).inserted { reader.error(r.location, "duplicate route name '\(r.name)' in \(what)") }
        out.routes.append(r)
      }
      let router = Router(out.routes.map { Router<Int>.Entry(name: $0.name, match: $0.match, payload: 0) })
      for (earlier, later) in router.shadowed() {
        reader.warning(
          out.routes[later].location,
          "route '\(out.routes[later].name)' is never used: route '\(out.routes[earlier].name)' before it matches every request it does")
      }
    } else if m["routes"] == nil {
      reader.error(node.location, "\(what) needs 'routes'")
    }
    return out
  }

  mutating func limits(_ node: YNode, _ owner: String) -> ListenerLimits {
    var out = ListenerLimits()
    guard
      let m = reader.mapping(
        node, "\(owner) limits",
        known: [
          "max_connections", "max_request_header_bytes", "max_request_uri_bytes", "max_request_headers",
          "max_request_body_bytes", "request_header_timeout", "idle_timeout", "request_body_timeout",
          "max_connection_age",
        ], later: ["max_concurrent_streams"])
    else { return out }
    if let n = m["max_connections"]?.value, let v = reader.int(n, "max_connections", min: 1, max: 1_000_000) {
      out.maxConnections = v
    }
    if let n = m["max_request_header_bytes"]?.value, let v = reader.size(n, "max_request_header_bytes") {
      if v.bytes > 1 << 20 {
        reader.error(n.location, "max_request_header_bytes must be at most 1MiB")
      } else {
        out.maxRequestHeaderBytes = v
      }
    }
    if let n = m["max_request_uri_bytes"]?.value, let v = reader.size(n, "max_request_uri_bytes") {
      if v.bytes > 1 << 20 {
        reader.error(n.location, "max_request_uri_bytes must be at most 1MiB")
      } else {
        out.maxRequestURIBytes = v
      }
    }
    if let n = m["max_request_headers"]?.value, let v = reader.int(n, "max_request_headers", min: 1, max: 10_000) {
      out.maxRequestHeaders = v
    }
    if let n = m["max_request_body_bytes"]?.value, let v = reader.size(n, "max_request_body_bytes") {
      out.maxRequestBodyBytes = v
    }
    if let n = m["request_header_timeout"]?.value, let v = reader.duration(n, "request_header_timeout") {
      out.requestHeaderTimeout = v
    }
    if let n = m["idle_timeout"]?.value, let v = reader.duration(n, "idle_timeout") { out.idleTimeout = v }
    if let n = m["request_body_timeout"]?.value, let v = reader.duration(n, "request_body_timeout") {
      out.requestBodyTimeout = v
    }
    if let n = m["max_connection_age"]?.value, let v = reader.duration(n, "max_connection_age") {
      out.maxConnectionAge = v
    }
    return out
  }

  mutating func route(_ index: Int, _ node: YNode, listener: String, protocol: String) -> RouteConfig? {
    guard
      let m = reader.mapping(
        node, "route",
        known: [
          "name", "match", "rewrite", "request_headers", "response_headers", "timeout", "backend", "split",
          "direct_response", "auth", "authorize", "cors", "rate_limit", "stream_idle_timeout", "retries", "mirror",
          "fault", "websocket",
        ],
        later: ["progressive"])
    else { return nil }
    var name = "\(listener).\(index)"
    if let n = m["name"]?.value, let text = reader.string(n, "route name") {
      if Self.isName(text) {
        name = text
      } else {
        reader.error(n.location, "route name '\(text)' may only use letters, digits, '-', '_' and '.'")
      }
    }
    let what = "route '\(name)'"
    var match = RouteMatch()
    if let n = m["match"]?.value { match = routeMatch(n, what, protocol: `protocol`) }
    if `protocol` == "tls_passthrough" {
      // Bytes are spliced unread: nothing but the server name and the backend applies.
      let allowed: Set<String> = ["name", "match", "backend", "split", "stream_idle_timeout"]
      for pair in m.values.sorted(by: { $0.keyLocation.line < $1.keyLocation.line }) where !allowed.contains(pair.key) {
        reader.error(pair.keyLocation, "\(what): '\(pair.key)' needs HTTP; a tls_passthrough route splices bytes unread")
      }
    }

    let targets = ["backend", "split", "direct_response"].filter { m[$0] != nil }
    var action = RouteAction.directResponse(DirectResponse(status: 404, body: "", headers: []))
    if targets.count != 1 {
      let at = targets.count > 1 ? m[targets[1]]!.keyLocation : node.location
      reader.error(at, "\(what) needs exactly one of backend, split or direct_response")
    }
    if let pair = m["backend"], let text = reader.string(pair.value, "\(what).backend") {
      backendRefs.append((text, pair.value.location, name))
      action = .backend(text)
    } else if let pair = m["split"], let items = reader.list(pair.value, "\(what).split") {
      var entries: [(backend: String, weight: Int)] = []
      for item in items {
        guard let e = reader.mapping(item, "\(what) split entry", known: ["backend", "weight"]) else { continue }
        guard let b = e["backend"], let backend = reader.string(b.value, "split backend") else {
          reader.error(item.location, "\(what): each split entry needs 'backend'")
          continue
        }
        backendRefs.append((backend, b.value.location, name))
        var weight = 1
        if let w = e["weight"]?.value, let v = reader.int(w, "split weight", min: 0, max: 1_000_000) { weight = v }
        entries.append((backend, weight))
      }
      if items.isEmpty {
        reader.error(pair.value.location, "\(what): split must list at least one backend")
      } else if entries.count == items.count && entries.reduce(0, { $0 + $1.weight }) == 0 {
        reader.error(pair.value.location, "\(what): split weights sum to 0, so no backend could be chosen")
      }
      action = .split(entries)
    } else if let pair = m["direct_response"] {
      action = .directResponse(directResponse(pair.value, what))
    }

    var out = RouteConfig(name: name, match: match, action: action, location: node.location)
    if let n = m["rewrite"]?.value, let r = reader.mapping(n, "\(what).rewrite", known: ["strip_prefix", "add_prefix", "host"]) {
      var rewrite = PathRewrite()
      if let v = r["strip_prefix"]?.value, let text = reader.string(v, "strip_prefix") {
        if text.hasPrefix("/") { rewrite.stripPrefix = text } else { reader.error(v.location, "strip_prefix must start with /") }
      }
      if let v = r["add_prefix"]?.value, let text = reader.string(v, "add_prefix") {
        if text.hasPrefix("/") && PathNormalizer.isSafePrefix(text) {
          rewrite.addPrefix = text
        } else {
          reader.error(v.location, "add_prefix must be a path starting with / without spaces, '?' or '#'")
        }
      }
      if let v = r["host"]?.value, let text = reader.string(v, "rewrite.host") {
        if !text.isEmpty && HeaderRules.isValidValue(text) && !text.contains(" ") {
          rewrite.host = text
        } else {
          reader.error(v.location, "rewrite.host must be a host name")
        }
      }
      out.rewrite = rewrite
    }
    if let n = m["request_headers"]?.value { out.requestHeaders = headerMutation(n, "\(what).request_headers") }
    if let n = m["response_headers"]?.value { out.responseHeaders = headerMutation(n, "\(what).response_headers") }
    if let n = m["timeout"]?.value, let d = reader.duration(n, "\(what).timeout") { out.timeout = d }
    if let n = m["stream_idle_timeout"]?.value, let d = reader.duration(n, "\(what).stream_idle_timeout") {
      out.streamIdleTimeout = d
    }
    if let n = m["websocket"]?.value, let on = reader.bool(n, "\(what).websocket") {
      out.websocket = on
      if on, case .directResponse = out.action {
        reader.error(n.location, "\(what): websocket needs a backend or split to tunnel to")
      }
    }
    if let n = m["retries"]?.value {
      out.retries = retries(n, what, routeTimeout: out.timeout)
      if case .directResponse = out.action { reader.error(n.location, "\(what): retries need a backend or split") }
    }
    if let n = m["fault"]?.value { out.fault = fault(n, what) }
    if let n = m["mirror"]?.value {
      out.mirror = mirror(n, what, route: name)
      if case .directResponse = out.action { reader.error(n.location, "\(what): mirror needs a backend or split") }
    }
    if let n = m["auth"]?.value {
      var names: [(String, SourceLocation)] = []
      if case .scalar(let text, _, let loc) = n {
        names = [(text, loc)]
      } else if let items = reader.stringList(n, "\(what).auth") {
        names = items
        if items.isEmpty { reader.error(n.location, "\(what).auth must name at least one provider") }
      }
      out.auth = names.map(\.0)
      authRefs[name, default: []].append(contentsOf: names)
    }
    if let n = m["authorize"]?.value, let text = reader.string(n, "\(what).authorize") {
      out.authorize = text
      policyRefs[name] = n.location
    }
    if let n = m["cors"]?.value { out.cors = cors(n, what) }
    if let n = m["rate_limit"]?.value {
      var names: [(String, SourceLocation)] = []
      if case .scalar(let text, _, let loc) = n {
        names = [(text, loc)]
      } else if let items = reader.stringList(n, "\(what).rate_limit") {
        names = items
        if items.isEmpty { reader.error(n.location, "\(what).rate_limit must name at least one limit") }
      }
      var seen: Set<String> = []
      for (text, loc) in names where !seen.insert(text).inserted {
        reader.error(loc, "\(what): rate_limit lists '\(text)' twice")
      }
      out.rateLimit = names.map(\.0).filter { seen.remove($0) != nil }
      limitRefs[name, default: []].append(contentsOf: names)
    }
    return out
  }

  mutating func routeMatch(_ node: YNode, _ what: String, protocol: String) -> RouteMatch {
    var out = RouteMatch()
    guard
      let m = reader.mapping(
        node, "\(what) match",
        known: ["host", "path", "path_prefix", "path_regex", "methods", "headers", "server_name"])
    else { return out }
    if let n = m["server_name"]?.value, let text = reader.string(n, "match.server_name") {
      if `protocol` == "http" {
        reader.error(m["server_name"]!.keyLocation, "\(what): match.server_name needs an https or tls_passthrough listener")
      } else if let name = ServerNameTable<Int>.name(text) {
        out.serverName = name
      } else {
        reader.error(n.location, "match.server_name must be a host name or a '*.example.com' wildcard, got '\(text)'")
      }
    }
    if `protocol` == "tls_passthrough" {
      for pair in m.values where pair.key != "server_name" {
        reader.error(pair.keyLocation, "\(what): a tls_passthrough listener matches on server_name only (it does not read HTTP)")
      }
      return out
    }
    if let n = m["host"]?.value, let text = reader.string(n, "match.host") {
      let lower = text.lowercased()
      if lower.hasPrefix("*.") && lower.count > 2 && Self.isHostName(String(lower.dropFirst(2))) {
        out.host = .wildcard(suffix: String(lower.dropFirst(1)))
      } else if Self.isHostName(lower) {
        out.host = .exact(lower)
      } else {
        reader.error(n.location, "match.host must be a host name or a '*.example.com' wildcard, got '\(text)'")
      }
    }
    let paths = ["path", "path_prefix", "path_regex"].filter { m[$0] != nil }
    if paths.count > 1 {
      reader.error(m[paths[1]]!.keyLocation, "\(what): use only one of path, path_prefix and path_regex")
    }
    if let n = m["path"]?.value, let text = reader.string(n, "match.path") {
      if let canonical = canonicalPath(text, n.location, "match.path") { out.path = .exact(canonical) }
    }
    if let n = m["path_prefix"]?.value, let text = reader.string(n, "match.path_prefix") {
      if let canonical = canonicalPath(text, n.location, "match.path_prefix") { out.path = .prefix(canonical) }
    }
    if let n = m["path_regex"]?.value, let text = reader.string(n, "match.path_regex") {
      do {
        out.path = .regex(try PathRegex(text))
      } catch {
        reader.error(n.location, "match.path_regex is not a valid regular expression: '\(text)'")
      }
    }
    if let n = m["methods"]?.value, let items = reader.stringList(n, "match.methods") {
      var methods: Set<String> = []
      for (text, loc) in items {
        if HeaderRules.isToken(text) {
          methods.insert(text.uppercased())
        } else {
          reader.error(loc, "'\(text)' is not an HTTP method")
        }
      }
      if items.isEmpty { reader.error(n.location, "match.methods must not be empty (leave it out to match any method)") }
      out.methods = methods
    }
    if let n = m["headers"]?.value, let pairs = reader.stringMap(n, "match.headers") {
      for (name, value, loc) in pairs {
        if HeaderRules.isToken(name) {
          out.headers.append((name.lowercased(), value))
        } else {
          reader.error(loc, "'\(name)' is not a valid header name")
        }
      }
    }
    return out
  }

  mutating func canonicalPath(_ text: String, _ at: SourceLocation, _ what: String) -> String? {
    guard text.hasPrefix("/"), !text.contains("?") else {
      reader.error(at, "\(what) must start with / and hold no query, got '\(text)'")
      return nil
    }
    switch PathNormalizer.normalize(text) {
    case .success(let t):
      return t.path
    case .failure:
      reader.error(at, "\(what) '\(text)' holds bytes a request path may not have")
      return nil
    }
  }

  mutating func headerMutation(_ node: YNode, _ what: String) -> HeaderMutation {
    var out = HeaderMutation()
    guard let m = reader.mapping(node, what, known: ["set", "remove"]) else { return out }
    if let n = m["set"]?.value, let pairs = reader.stringMap(n, "\(what).set") {
      for (name, value, loc) in pairs {
        if !HeaderRules.isToken(name) {
          reader.error(loc, "'\(name)' is not a valid header name")
        } else if HeaderRules.isHopByHop(name) || ["host", "content-length"].contains(name.lowercased()) {
          reader.error(loc, "\(what) may not set '\(name)': the gateway manages it")
        } else if !HeaderRules.isValidValue(value) {
          reader.error(loc, "the value of '\(name)' may not contain CR, LF or NUL")
        } else {
          out.sets.append(HeaderPair(name: name.lowercased(), value: value))
        }
      }
    }
    if let n = m["remove"]?.value, let items = reader.stringList(n, "\(what).remove") {
      for (name, loc) in items {
        if HeaderRules.isToken(name) {
          out.remove.append(name.lowercased())
        } else {
          reader.error(loc, "'\(name)' is not a valid header name")
        }
      }
    }
    return out
  }

  mutating func directResponse(_ node: YNode, _ what: String) -> DirectResponse {
    var out = DirectResponse(status: 200, body: "", headers: [])
    guard let m = reader.mapping(node, "\(what).direct_response", known: ["status", "body", "headers", "echo"]) else {
      return out
    }
    if let n = m["status"]?.value, let v = reader.int(n, "direct_response.status", min: 200, max: 599) { out.status = v }
    if let n = m["body"]?.value, let text = reader.string(n, "direct_response.body") { out.body = text }
    if let n = m["echo"]?.value, let echo = reader.bool(n, "direct_response.echo") {
      out.echo = echo
      if echo && m["body"] != nil { reader.error(n.location, "direct_response: use either body or echo: true") }
    }
    if let n = m["headers"]?.value, let pairs = reader.stringMap(n, "direct_response.headers") {
      for (name, value, loc) in pairs {
        if !HeaderRules.isToken(name) || HeaderRules.isHopByHop(name) || name.lowercased() == "content-length" {
          reader.error(loc, "'\(name)' cannot be set on a direct response")
        } else if !HeaderRules.isValidValue(value) {
          reader.error(loc, "the value of '\(name)' may not contain CR, LF or NUL")
        } else {
          out.headers.append(HeaderPair(name: name.lowercased(), value: value))
        }
      }
    }
    return out
  }

  static func isName(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 128
      && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
  }

  static func isHostName(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 253
      && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-.".contains($0)) }
      && !text.hasPrefix(".") && !text.hasSuffix(".") && !text.contains("..")
  }
}

extension PathNormalizer {
  /// True for a prefix the gateway may prepend: path bytes only, no query or fragment.
  public static func isSafePrefix(_ text: String) -> Bool {
    text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "\\") }
  }
}
