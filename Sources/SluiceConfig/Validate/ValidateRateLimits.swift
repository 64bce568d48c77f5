import SluiceCore
import SluiceFeatures

/// `rate_limits`, `stores`, route `rate_limit` and JWT `revocation`.
extension Validator {
  mutating func stores(_ node: YNode) -> [StoreConfig] {
    guard case .mapping(let pairs, _) = node else {
      reader.error(node.location, "stores must be a mapping of store names to stores, not \(node.kindName)")
      return []
    }
    var out: [StoreConfig] = []
    for pair in pairs {
      if pair.key != "local" { declaredStores.insert(pair.key) }
      let what = "store '\(pair.key)'"
      if !Self.isName(pair.key) || pair.key == "local" {
        reader.error(
          pair.keyLocation,
          pair.key == "local"
            ? "\(what): 'local' is the in-process store and cannot be redefined"
            : "\(what): names may only use letters, digits, '-', '_' and '.'")
        continue
      }
      guard let m = reader.mapping(pair.value, what, known: ["type", "url", "timeout", "max_pending", "tls"]) else { continue }
      if let n = m["type"]?.value, let text = reader.string(n, "\(what).type"), text != "redis" {
        reader.error(n.location, "\(what): type must be redis, got '\(text)'")
        continue
      }
      guard let u = m["url"] else {
        reader.error(pair.keyLocation, "\(what) needs 'url: redis://host:port/db'")
        continue
      }
      guard let text = reader.string(u.value, "\(what).url") else { continue }
      guard let url = RedisURL.parse(text) else {
        reader.error(
          u.value.location, "\(what): url must look like redis://[user:password@]host:port[/db], got '\(RedisURL.redactedGuess(text))'")
        continue
      }
      var store = StoreConfig(name: pair.key, url: url, location: pair.keyLocation)
      if let n = m["tls"]?.value {
        if url.tls {
          store.tls = backendTLS(n, what)
        } else {
          reader.error(m["tls"]!.keyLocation, "\(what): 'tls' needs a rediss:// url")
        }
      } else if url.tls {
        // rediss:// with the system's trust roots, verifying the URL's host.
        switch TLSLoader.client(BackendTLS()) {
        case .success(let context):
          var tls = BackendTLS()
          tls.context = context
          store.tls = tls
        case .failure(let problem): reader.error(u.value.location, "\(what): \(problem.message)")
        }
      }
      if let n = m["timeout"]?.value, let d = reader.duration(n, "\(what).timeout") {
        if d.nanoseconds < 1_000_000 || d.nanoseconds > 10_000_000_000 {
          reader.error(n.location, "\(what): timeout must be between 1ms and 10s")
        } else {
          store.timeout = d
        }
      }
      if let n = m["max_pending"]?.value, let v = reader.int(n, "\(what).max_pending", min: 1, max: 1_000_000) {
        store.maxPending = v
      }
      out.append(store)
    }
    return out
  }

  mutating func rateLimits(_ node: YNode) -> [RateLimitConfig] {
    guard case .mapping(let pairs, _) = node else {
      reader.error(node.location, "rate_limits must be a mapping of limit names to limits, not \(node.kindName)")
      return []
    }
    var out: [RateLimitConfig] = []
    for pair in pairs {
      declaredLimits.insert(pair.key)
      let what = "rate limit '\(pair.key)'"
      if !Self.isName(pair.key) {
        reader.error(pair.keyLocation, "\(what): names may only use letters, digits, '-', '_' and '.'")
        continue
      }
      guard
        let m = reader.mapping(
          pair.value, what, known: ["key", "limit", "per", "burst", "store", "on_store_error", "max_keys"])
      else { continue }
      var key = RateLimitKey.clientIP
      if let n = m["key"]?.value, let text = reader.string(n, "\(what).key") {
        if let k = Self.limitKey(text) {
          key = k
        } else {
          reader.error(n.location, "\(what): key must be client_ip, route, header:NAME or claim:NAME, got '\(text)'")
        }
      }
      guard let l = m["limit"] else {
        reader.error(pair.keyLocation, "\(what) needs 'limit' (requests per 'per')")
        continue
      }
      guard let limit = reader.int(l.value, "\(what).limit", min: 1, max: 1_000_000_000) else { continue }
      guard let p = m["per"] else {
        reader.error(pair.keyLocation, "\(what) needs 'per' (a duration such as 1s or 1m)")
        continue
      }
      guard let per = reader.duration(p.value, "\(what).per") else { continue }
      if per.nanoseconds < 1_000_000 || per.nanoseconds > 86_400_000_000_000 {
        reader.error(p.value.location, "\(what): per must be between 1ms and 24h")
        continue
      }
      if per.nanoseconds / Int64(limit) < 1_000 {
        reader.error(l.value.location, "\(what): \(limit) per \(per) is more than one request per microsecond")
        continue
      }
      var config = RateLimitConfig(name: pair.key, key: key, limit: limit, per: per, location: pair.keyLocation)
      if let n = m["burst"]?.value, let v = reader.int(n, "\(what).burst", min: 1, max: 1_000_000_000) { config.burst = v }
      if let n = m["store"]?.value, let text = reader.string(n, "\(what).store") {
        config.store = text
        if text != "local" { storeRefs.append((text, n.location, what)) }
      }
      if let n = m["on_store_error"]?.value, let text = reader.string(n, "\(what).on_store_error") {
        if let p = StoreErrorPolicy(rawValue: text) {
          config.onStoreError = p
        } else {
          reader.error(n.location, "\(what): on_store_error must be allow or deny, got '\(text)'")
        }
        if config.store == "local" {
          reader.warning(n.location, "\(what): on_store_error applies to a Redis store only (this limit is local)")
        }
      }
      if let n = m["max_keys"]?.value, let v = reader.int(n, "\(what).max_keys", min: 64, max: 10_000_000) {
        config.maxKeys = v
        if config.store != "local" {
          reader.warning(n.location, "\(what): max_keys applies to a local limit only (Redis keys expire on their own)")
        }
      }
      out.append(config)
    }
    return out
  }

  static func limitKey(_ text: String) -> RateLimitKey? {
    switch text {
    case "client_ip": return .clientIP
    case "route": return .route
    default:
      if text.hasPrefix("header:") {
        let name = String(text.dropFirst(7)).lowercased()
        return HeaderRules.isToken(name) ? .header(name) : nil
      }
      if text.hasPrefix("claim:") {
        let name = String(text.dropFirst(6))
        return name.isEmpty ? nil : .claim(name)
      }
      return nil
    }
  }

  mutating func revocation(_ node: YNode, _ what: String) -> RevocationConfig? {
    guard let m = reader.mapping(node, "\(what).revocation", known: ["store", "key_prefix", "on_store_error"]) else {
      return nil
    }
    guard let s = m["store"], let store = reader.string(s.value, "\(what).revocation.store") else {
      reader.error(node.location, "\(what).revocation needs 'store' (a Redis store from 'stores')")
      return nil
    }
    storeRefs.append((store, s.value.location, "\(what).revocation"))
    var out = RevocationConfig(store: store, location: node.location)
    if let n = m["key_prefix"]?.value, let text = reader.string(n, "\(what).revocation.key_prefix") {
      if text.utf8.count > 256 {
        reader.error(n.location, "\(what).revocation.key_prefix must be at most 256 bytes")
      } else {
        out.keyPrefix = text
      }
    }
    if let n = m["on_store_error"]?.value, let text = reader.string(n, "\(what).revocation.on_store_error") {
      if let p = StoreErrorPolicy(rawValue: text) {
        out.onStoreError = p
      } else {
        reader.error(n.location, "\(what).revocation: on_store_error must be allow or deny, got '\(text)'")
      }
    }
    return out
  }

  /// Cross-references once every section is read: stores named by limits and revocation, limits
  /// named by routes, and `claim:` keys on routes without a JWT provider.
  mutating func checkRateLimitReferences(_ config: SluiceConfiguration) {
    for (name, at, who) in storeRefs where !declaredStores.contains(name) {
      reader.error(
        at,
        name == "local" && who.hasSuffix(".revocation")
          ? "\(who): a revocation list needs a Redis store from 'stores', not 'local'"
          : "\(who) names store '\(name)', which is not defined in 'stores'")
    }
    for listener in config.listeners {
      for route in listener.routes {
        for (name, at) in limitRefs[route.name] ?? [] {
          guard let limit = config.rateLimits.first(where: { $0.name == name }) else {
            if !declaredLimits.contains(name) {
              reader.error(at, "route '\(route.name)' names rate limit '\(name)', which is not defined in 'rate_limits'")
            }
            continue
          }
          if case .claim(let claim) = limit.key {
            let hasJWT = route.auth.contains { provider in
              if case .jwt? = config.authProvider(named: provider)?.kind { return true }
              return false
            }
            if !hasJWT {
              reader.error(
                at,
                "route '\(route.name)': rate limit '\(name)' counts by claim '\(claim)', but the route has no JWT provider in 'auth' to take claims from"
              )
            }
          }
        }
      }
    }
  }
}

extension RedisURL {
  /// A URL that failed to parse, for an error message: anything between `//` and `@` hidden.
  static func redactedGuess(_ text: String) -> String {
    guard let at = text.lastIndex(of: "@") else { return text }
    let head = text[..<at]
    guard let slashes = head.firstIndex(of: "/") else { return "***" + String(text[at...]) }
    let start = head[slashes...].prefix { $0 == "/" }.endIndex
    return String(text[..<start]) + "***" + String(text[at...])
  }
}
