import SluiceCore
import SluiceFeatures

/// `auth`, `policies`, `audit` and the route keys that use them (`auth`, `authorize`, `cors`).
extension Validator {
  mutating func authProviders(_ node: YNode) -> [AuthProviderConfig] {
    guard case .mapping(let pairs, _) = node else {
      reader.error(node.location, "auth must be a mapping of provider names to providers, not \(node.kindName)")
      return []
    }
    var out: [AuthProviderConfig] = []
    for pair in pairs {
      declaredProviders.insert(pair.key)
      let what = "auth provider '\(pair.key)'"
      if !Self.isName(pair.key) {
        reader.error(pair.keyLocation, "\(what): names may only use letters, digits, '-', '_' and '.'")
        continue
      }
      guard case .mapping(let fields, _) = pair.value else {
        reader.error(pair.value.location, "\(what) must be a mapping, not \(pair.value.kindName)")
        continue
      }
      guard let typePair = fields.first(where: { $0.key == "type" }) else {
        reader.error(pair.keyLocation, "\(what) needs 'type: jwt' or 'type: api_key'")
        continue
      }
      switch reader.string(typePair.value, "\(what).type") {
      case "jwt":
        if let jwt = jwtProvider(pair.value, what) {
          out.append(AuthProviderConfig(name: pair.key, kind: .jwt(jwt), location: pair.keyLocation))
        }
      case "api_key":
        if let keys = apiKeyProvider(pair.value, what) {
          out.append(AuthProviderConfig(name: pair.key, kind: .apiKey(keys), location: pair.keyLocation))
        }
      case let other?:
        reader.error(typePair.value.location, "\(what): type must be jwt or api_key, got '\(other)'")
      case nil:
        break
      }
    }
    return out
  }

  mutating func jwtProvider(_ node: YNode, _ what: String) -> JWTProviderConfig? {
    guard
      let m = reader.mapping(
        node, what,
        known: [
          "type", "issuer", "audiences", "algorithms", "jwks_url", "jwks_file", "secret", "jwks_refresh", "jwks_ca",
          "jwks_timeout", "on_jwks_unavailable", "clock_skew", "token_from", "forward_claims", "forward_token", "revocation",
        ])
    else { return nil }
    var algorithms: [JWTAlgorithm] = []
    if let n = m["algorithms"]?.value, let items = reader.stringList(n, "\(what).algorithms") {
      for (text, loc) in items {
        if let alg = JWTAlgorithm(rawValue: text) {
          if !algorithms.contains(alg) { algorithms.append(alg) }
        } else if text.lowercased() == "none" {
          reader.error(loc, "\(what): algorithm 'none' is never accepted (an unsigned token proves nothing)")
        } else {
          reader.error(
            loc, "\(what): unknown algorithm '\(text)' (use \(JWTAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
      }
      if items.isEmpty { reader.error(n.location, "\(what).algorithms must not be empty") }
    }
    let sources = ["jwks_url", "jwks_file", "secret"].filter { m[$0] != nil }
    if sources.count != 1 {
      let at = sources.count > 1 ? m[sources[1]]!.keyLocation : node.location
      reader.error(at, "\(what) needs exactly one of jwks_url, jwks_file or secret")
      return nil
    }
    if m["algorithms"] == nil {
      // Without a list: what the key source can verify (HS256 for a secret; the asymmetric
      // algorithms for key sets, whose keys pin their own).
      algorithms =
        m["secret"] != nil ? [.HS256] : JWTAlgorithm.allCases.filter { $0.family != .hmac }
    }
    let allowed = Set(algorithms)
    var keySource: JWTKeySource?
    if let pair = m["secret"], let secret = reader.string(pair.value, "\(what).secret") {
      if !algorithms.contains(where: { $0.family == .hmac }) {
        reader.error(pair.keyLocation, "\(what): a secret verifies HS256/384/512 only; add one of them to algorithms")
      }
      if algorithms.contains(where: { $0.family != .hmac }) {
        reader.error(
          m["algorithms"]?.value.location ?? pair.keyLocation,
          "\(what): with a secret, algorithms may only list HS256, HS384, HS512 (a shared secret must never verify RS/ES/PS tokens)")
      }
      if secret.utf8.count < 32 {
        reader.error(pair.value.location, "\(what): the secret must be at least 32 bytes (256 bits) long")
      }
      keySource = .secret(secret)
    }
    if let pair = m["jwks_url"], let url = reader.string(pair.value, "\(what).jwks_url") {
      if HTTPURL.parse(url) == nil {
        reader.error(pair.value.location, "\(what): jwks_url must be an http:// or https:// URL, got '\(url)'")
      } else {
        keySource = .url(url)
      }
    }
    if let pair = m["jwks_file"], let path = reader.string(pair.value, "\(what).jwks_file") {
      let full = resolve(path)
      if let text = ProcessFiles.read(full, limit: JWKSParser.maxBytes) {
        switch JWKSParser.parse(Array(text.utf8), allowed: allowed) {
        case .success(let keys): keySource = .file(path: full, keys: keys)
        case .failure(let error): reader.error(pair.value.location, "\(what): jwks_file \(path): \(error)")
        }
      } else {
        reader.error(pair.value.location, "\(what): cannot read jwks_file '\(path)'")
      }
    }
    guard let keySource else { return nil }
    var out = JWTProviderConfig(keySource: keySource)
    out.algorithms = algorithms
    if let n = m["issuer"]?.value, let text = reader.string(n, "\(what).issuer") { out.issuer = text }
    if let n = m["audiences"]?.value, let items = reader.stringList(n, "\(what).audiences") {
      out.audiences = items.map(\.0)
    }
    if let n = m["jwks_refresh"]?.value, let d = reader.duration(n, "\(what).jwks_refresh") {
      if d.nanoseconds < 10_000_000_000 {
        reader.error(n.location, "\(what): jwks_refresh must be at least 10s")
      } else {
        out.jwksRefresh = d
      }
    }
    if let n = m["jwks_timeout"]?.value, let d = reader.duration(n, "\(what).jwks_timeout") { out.jwksTimeout = d }
    if let n = m["jwks_ca"]?.value, let path = reader.string(n, "\(what).jwks_ca") {
      let full = resolve(path)
      if ProcessFiles.read(full) == nil {
        reader.error(n.location, "\(what): cannot read jwks_ca '\(path)'")
      } else {
        out.jwksCA = full
      }
      if case .url(let url) = keySource, !url.hasPrefix("https://") {
        reader.warning(n.location, "\(what): jwks_ca is used for https URLs only")
      }
    }
    for key in ["jwks_refresh", "jwks_ca", "jwks_timeout", "on_jwks_unavailable"] where m[key] != nil {
      if case .url = keySource {
      } else {
        reader.error(m[key]!.keyLocation, "\(what): \(key) applies to jwks_url only")
      }
    }
    if let n = m["on_jwks_unavailable"]?.value, let text = reader.string(n, "\(what).on_jwks_unavailable") {
      if let p = JWKSUnavailablePolicy(rawValue: text) {
        out.onJWKSUnavailable = p
      } else {
        reader.error(n.location, "\(what): on_jwks_unavailable must be use_cached or deny, got '\(text)'")
      }
    }
    if let n = m["clock_skew"]?.value, let d = reader.duration(n, "\(what).clock_skew", allowZero: true) {
      if d.nanoseconds > 600_000_000_000 {
        reader.error(n.location, "\(what): clock_skew must be at most 10m")
      } else {
        out.clockSkew = d
      }
    }
    if let n = m["token_from"]?.value, let items = reader.stringList(n, "\(what).token_from") {
      var sources: [TokenSource] = []
      for (text, loc) in items {
        if let s = TokenSource.parse(text) {
          sources.append(s)
        } else {
          reader.error(loc, "\(what): token_from entries are header:NAME, query:NAME or cookie:NAME, got '\(text)'")
        }
      }
      if items.isEmpty { reader.error(n.location, "\(what).token_from must not be empty") }
      out.tokenFrom = sources
    }
    if let n = m["forward_claims"]?.value, let pairs = reader.stringMap(n, "\(what).forward_claims") {
      for (claim, header, loc) in pairs {
        let lower = header.lowercased()
        if !HeaderRules.isToken(header) {
          reader.error(loc, "\(what): '\(header)' is not a valid header name")
        } else if HeaderRules.isHopByHop(lower) || ["host", "content-length", "authorization", "cookie"].contains(lower) {
          reader.error(loc, "\(what): forward_claims may not set '\(header)'")
        } else {
          out.forwardClaims.append((claim, lower))
        }
      }
    }
    if let n = m["forward_token"]?.value, let b = reader.bool(n, "\(what).forward_token") { out.forwardToken = b }
    if let n = m["revocation"]?.value { out.revocation = revocation(n, what) }
    return out
  }

  mutating func apiKeyProvider(_ node: YNode, _ what: String) -> APIKeyProviderConfig? {
    guard let m = reader.mapping(node, what, known: ["type", "header", "query", "keys", "forward_key"]) else { return nil }
    var out = APIKeyProviderConfig()
    if m["header"] != nil && m["query"] != nil {
      reader.error(m["query"]!.keyLocation, "\(what): use either header or query")
    }
    if let n = m["header"]?.value, let text = reader.string(n, "\(what).header") {
      if HeaderRules.isToken(text) {
        out.source = .header(text.lowercased())
      } else {
        reader.error(n.location, "\(what): '\(text)' is not a valid header name")
      }
    }
    if let n = m["query"]?.value, let text = reader.string(n, "\(what).query") {
      if !text.isEmpty && !text.contains("&") && !text.contains("=") {
        out.source = .query(text)
      } else {
        reader.error(n.location, "\(what): '\(text)' is not a query parameter name")
      }
    }
    guard let keysPair = m["keys"] else {
      reader.error(node.location, "\(what) needs 'keys' (name: key)")
      return nil
    }
    if let pairs = reader.stringMap(keysPair.value, "\(what).keys") {
      for (name, key, loc) in pairs {
        // A value whose `${env:}`/`${file:}` failed is already reported on its line.
        if reader.diagnostics.contains(where: { $0.severity == .error && $0.line == loc.line }) { continue }
        if key.utf8.count < 16 {
          reader.error(loc, "\(what): key '\(name)' must be at least 16 characters long")
        } else if !HeaderRules.isValidValue(key) {
          reader.error(loc, "\(what): key '\(name)' may not contain CR, LF or NUL")
        } else if out.keys.contains(where: { $0.key == key }) {
          reader.error(loc, "\(what): key '\(name)' has the same value as another key")
        } else {
          out.keys.append((name, key))
        }
      }
      if pairs.isEmpty { reader.error(keysPair.value.location, "\(what).keys must not be empty") }
    }
    if let n = m["forward_key"]?.value, let b = reader.bool(n, "\(what).forward_key") { out.forwardKey = b }
    return out
  }

  mutating func policies(_ node: YNode) -> [AccessPolicy] {
    guard case .mapping(let pairs, _) = node else {
      reader.error(node.location, "policies must be a mapping of policy names to policies, not \(node.kindName)")
      return []
    }
    var out: [AccessPolicy] = []
    for pair in pairs {
      let what = "policy '\(pair.key)'"
      policyLocations[pair.key] = pair.keyLocation
      guard let m = reader.mapping(pair.value, what, known: ["allow"]) else { continue }
      guard let allow = m["allow"], let items = reader.list(allow.value, "\(what).allow") else {
        reader.error(pair.keyLocation, "\(what) needs 'allow': a list of rules")
        continue
      }
      var rules: [AccessPolicy.Rule] = []
      for item in items {
        guard let r = reader.mapping(item, "\(what) rule", known: ["claims", "source_ip", "methods", "paths"]) else { continue }
        var rule = AccessPolicy.Rule()
        if r.isEmpty { reader.error(item.location, "\(what): an empty rule would admit everyone; remove the policy instead") }
        if let n = r["claims"]?.value, case .mapping(let claimPairs, _) = n {
          for c in claimPairs {
            switch c.value {
            case .scalar(let v, _, _): rule.claims.append(.init(claim: c.key, values: [v]))
            case .sequence:
              if let values = reader.stringList(c.value, "\(what) claim '\(c.key)'") {
                rule.claims.append(.init(claim: c.key, values: values.map(\.0)))
              }
            default: reader.error(c.value.location, "\(what): claim '\(c.key)' must be a value or a list of values")
            }
          }
        } else if let n = r["claims"]?.value {
          reader.error(n.location, "\(what): claims must be a mapping of claim names to values")
        }
        if let n = r["source_ip"]?.value, let ips = reader.stringList(n, "\(what).source_ip") {
          for (text, loc) in ips {
            if let cidr = CIDR(text) {
              rule.sourceIPs.append(cidr)
            } else {
              reader.error(loc, "\(what): '\(text)' is not an IP network like 10.0.0.0/8")
            }
          }
        }
        if let n = r["methods"]?.value, let ms = reader.stringList(n, "\(what).methods") {
          for (text, loc) in ms {
            if HeaderRules.isToken(text) {
              rule.methods.insert(text.uppercased())
            } else {
              reader.error(loc, "'\(text)' is not an HTTP method")
            }
          }
        }
        if let n = r["paths"]?.value, let ps = reader.stringList(n, "\(what).paths") {
          for (text, loc) in ps {
            if let canonical = canonicalPath(text, loc, "\(what).paths") { rule.paths.append(canonical) }
          }
        }
        rules.append(rule)
      }
      out.append(AccessPolicy(name: pair.key, rules: rules))
    }
    return out
  }

  mutating func cors(_ node: YNode, _ what: String) -> CORSPolicy? {
    guard
      let m = reader.mapping(
        node, "\(what).cors",
        known: ["allow_origins", "allow_methods", "allow_headers", "expose_headers", "allow_credentials", "max_age"])
    else { return nil }
    var out = CORSPolicy()
    if let n = m["allow_origins"]?.value, let items = reader.stringList(n, "\(what).cors.allow_origins") {
      for (text, loc) in items {
        let lower = text.lowercased()
        if lower == "*" {
          out.allowOrigins.append(.any)
        } else if let star = lower.firstIndex(of: "*") {
          let scheme = String(lower[..<star].dropLast(3))
          let suffix = String(lower[lower.index(after: star)...])
          let host = suffix.dropFirst().split(separator: ":").first.map(String.init) ?? ""
          if lower[..<star].hasSuffix("://") && (scheme == "http" || scheme == "https") && suffix.hasPrefix(".")
            && Self.isHostName(host)
          {
            out.allowOrigins.append(.wildcard(scheme: scheme, suffix: suffix))
          } else {
            reader.error(loc, "\(what): cors: '\(text)' is not an origin pattern like https://*.example.com")
          }
        } else if (lower.hasPrefix("http://") || lower.hasPrefix("https://")) && !lower.dropFirst(8).contains("/") {
          out.allowOrigins.append(.exact(lower))
        } else {
          reader.error(loc, "\(what): cors: '\(text)' is not an origin (scheme://host[:port], no path)")
        }
      }
    } else {
      reader.error(node.location, "\(what): cors needs allow_origins")
    }
    if let n = m["allow_methods"]?.value, let items = reader.stringList(n, "\(what).cors.allow_methods") {
      out.allowMethods = items.map { $0.0.uppercased() }
      for (text, loc) in items where !HeaderRules.isToken(text) { reader.error(loc, "'\(text)' is not an HTTP method") }
    }
    if let n = m["allow_headers"]?.value, let items = reader.stringList(n, "\(what).cors.allow_headers") {
      out.allowHeaders = items.map(\.0)
      for (text, loc) in items where !HeaderRules.isToken(text) { reader.error(loc, "'\(text)' is not a header name") }
    }
    if let n = m["expose_headers"]?.value, let items = reader.stringList(n, "\(what).cors.expose_headers") {
      out.exposeHeaders = items.map(\.0)
      for (text, loc) in items where !HeaderRules.isToken(text) { reader.error(loc, "'\(text)' is not a header name") }
    }
    if let n = m["allow_credentials"]?.value, let b = reader.bool(n, "\(what).cors.allow_credentials") {
      out.allowCredentials = b
      if b && out.allowOrigins.contains(.any) {
        reader.error(
          n.location,
          "\(what): cors: allow_credentials cannot be used with the '*' origin (browsers refuse it; list the origins)")
      }
    }
    if let n = m["max_age"]?.value, let d = reader.duration(n, "\(what).cors.max_age", allowZero: true) {
      out.maxAgeSeconds = Int(d.nanoseconds / 1_000_000_000)
    }
    return out
  }

  mutating func audit(_ node: YNode) -> AuditSettings {
    var out = AuditSettings()
    guard let m = reader.mapping(node, "audit", known: ["sinks"]) else { return out }
    guard let n = m["sinks"]?.value, let items = reader.list(n, "audit.sinks") else { return out }
    for (index, item) in items.enumerated() {
      let what = "audit sink \(index + 1)"
      guard
        let s = reader.mapping(
          item, what, known: ["type", "name", "url", "events", "queue", "batch", "timeout", "retries"])
      else { continue }
      if let t = s["type"]?.value, let text = reader.string(t, "\(what).type"), text != "webhook" {
        reader.error(t.location, "\(what): type must be webhook, got '\(text)'")
      } else if s["type"] == nil {
        reader.error(item.location, "\(what) needs 'type: webhook'")
      }
      guard let u = s["url"], let url = reader.string(u.value, "\(what).url") else {
        reader.error(item.location, "\(what) needs 'url'")
        continue
      }
      guard let parsed = HTTPURL.parse(url) else {
        reader.error(u.value.location, "\(what): url must be an http:// or https:// URL, got '\(url)'")
        continue
      }
      var sink = AuditSinkConfig(url: url, name: parsed.host + ":" + String(parsed.port))
      if let n = s["name"]?.value, let text = reader.string(n, "\(what).name") {
        if Self.isName(text) { sink.name = text } else { reader.error(n.location, "\(what): invalid name '\(text)'") }
      }
      if let n = s["events"]?.value, let evs = reader.stringList(n, "\(what).events") {
        var set: Set<AuditEventKind> = []
        for (text, loc) in evs {
          if let k = AuditEventKind(rawValue: text) {
            set.insert(k)
          } else {
            reader.error(
              loc, "\(what): unknown event '\(text)' (\(AuditEventKind.allCases.map(\.rawValue).joined(separator: ", ")))")
          }
        }
        sink.events = set
      }
      if let n = s["queue"]?.value, let v = reader.int(n, "\(what).queue", min: 1, max: 1_000_000) { sink.queue = v }
      if let n = s["batch"]?.value, let v = reader.int(n, "\(what).batch", min: 1, max: 1000) { sink.batch = v }
      if let n = s["timeout"]?.value, let d = reader.duration(n, "\(what).timeout") { sink.timeout = d }
      if let n = s["retries"]?.value, let v = reader.int(n, "\(what).retries", min: 0, max: 10) { sink.retries = v }
      if out.sinks.contains(where: { $0.name == sink.name }) {
        reader.error(item.location, "\(what): another sink is named '\(sink.name)'; give one a 'name'")
      }
      out.sinks.append(sink)
    }
    return out
  }

  /// Cross-references once every section is read.
  mutating func checkAuthReferences(_ config: SluiceConfiguration) {
    for listener in config.listeners {
      for route in listener.routes {
        for (name, at) in authRefs[route.name] ?? [] where !declaredProviders.contains(name) {
          reader.error(at, "route '\(route.name)' names auth provider '\(name)', which is not defined in 'auth'")
        }
        guard let policyName = route.authorize, let at = policyRefs[route.name] else { continue }
        guard let policy = config.policies.first(where: { $0.name == policyName }) else {
          if policyLocations[policyName] != nil { continue }  // declared, with errors of its own
          reader.error(at, "route '\(route.name)' names policy '\(policyName)', which is not defined in 'policies'")
          continue
        }
        let hasJWT = route.auth.contains { name in
          if case .jwt? = config.authProvider(named: name)?.kind { return true }
          return false
        }
        if policy.usesClaims && !hasJWT {
          reader.error(
            at,
            "route '\(route.name)': policy '\(policyName)' has a claims rule, but the route has no JWT provider in 'auth' to take claims from"
          )
        }
      }
    }
  }
}
