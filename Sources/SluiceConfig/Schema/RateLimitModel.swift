import SluiceCore
import SluiceFeatures

/// `rate_limits.<name>`.
public struct RateLimitConfig: Sendable {
  public var name: String
  public var key: RateLimitKey
  public var limit: Int
  public var per: ConfigDuration
  /// Requests admitted at once after an idle period (default `limit`).
  public var burst: Int?
  /// `local`, or the name of a Redis store under `stores`.
  public var store = "local"
  public var onStoreError = StoreErrorPolicy.allow
  /// Keys tracked at once by a local limit; beyond it the keys closest to idle are forgotten.
  public var maxKeys = 100_000
  public var location: SourceLocation

  public var rule: GCRA { GCRA(limit: Int64(limit), perNanoseconds: per.nanoseconds, burst: burst.map(Int64.init)) }

  /// What must stay equal for a local limit's state to survive a reload (SPEC 4).
  public var fingerprint: String { "\(key)|\(limit)|\(per.nanoseconds)|\(burst ?? limit)|\(store)|\(maxKeys)" }
}

/// A `redis://` or `rediss://` URL, split.
public struct RedisURL: Sendable, Hashable {
  public var host: String
  public var port: Int
  public var username: String?
  public var password: String?
  public var database: Int
  public var tls: Bool

  public init(host: String, port: Int, username: String? = nil, password: String? = nil, database: Int = 0, tls: Bool = false) {
    self.host = host
    self.port = port
    self.username = username
    self.password = password
    self.database = database
    self.tls = tls
  }

  /// `redis://[user[:password]@]host[:port][/db]`; the password may come from `${env:…}`.
  public static func parse(_ text: String) -> RedisURL? {
    var rest: Substring
    let tls: Bool
    if text.hasPrefix("redis://") {
      rest = text.dropFirst(8)
      tls = false
    } else if text.hasPrefix("rediss://") {
      rest = text.dropFirst(9)
      tls = true
    } else {
      return nil
    }
    var username: String?
    var password: String?
    if let at = rest.lastIndex(of: "@") {
      let info = rest[..<at]
      rest = rest[rest.index(after: at)...]
      if let colon = info.firstIndex(of: ":") {
        let user = info[..<colon]
        username = user.isEmpty ? nil : String(user)
        password = String(info[info.index(after: colon)...])
      } else if !info.isEmpty {
        password = String(info)  // redis://secret@host, as redis-cli -u reads it
      }
    }
    var database = 0
    if let slash = rest.firstIndex(of: "/") {
      let db = rest[rest.index(after: slash)...]
      rest = rest[..<slash]
      if !db.isEmpty {
        guard let n = Int(db), n >= 0, n < 65536 else { return nil }
        database = n
      }
    }
    var host = String(rest)
    var port = 6379
    if host.hasPrefix("[") {
      guard let close = host.firstIndex(of: "]") else { return nil }
      let after = host[host.index(after: close)...]
      let inner = String(host[host.index(after: host.startIndex)..<close])
      if after.hasPrefix(":") {
        guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
        port = p
      } else if !after.isEmpty {
        return nil
      }
      host = inner
    } else if let colon = host.lastIndex(of: ":") {
      guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else { return nil }
      port = p
      host = String(host[..<colon])
    }
    guard !host.isEmpty, !host.contains("/"), !host.contains("?") else { return nil }
    return RedisURL(host: host, port: port, username: username, password: password, database: database, tls: tls)
  }

  /// The URL with its password replaced (logs, `/config`).
  public var redacted: String {
    var out = tls ? "rediss://" : "redis://"
    if username != nil || password != nil {
      out += username ?? ""
      if password != nil { out += ":***" }
      out += "@"
    }
    out += host.contains(":") ? "[\(host)]" : host
    out += ":\(port)/\(database)"
    return out
  }
}

/// `stores.<name>` (`type: redis`).
public struct StoreConfig: Sendable {
  public var name: String
  public var url: RedisURL
  /// Per command: a reply later than this is a store error.
  public var timeout = ConfigDuration.milliseconds(50)
  /// Commands waiting for a reply on one connection; beyond it a command fails at once.
  public var maxPending = 1024
  /// rediss://: the TLS settings (`tls: { ca, server_name, cert, key }`, else the system's roots).
  public var tls: BackendTLS?
  public var location: SourceLocation

  /// What must stay equal for a client (and its connections) to survive a reload.
  public var fingerprint: String { "\(url)|\(timeout.nanoseconds)|\(maxPending)|\(tls?.poolKey ?? "")" }
}

/// `revocation` on a JWT provider: a `jti` deny-list in a Redis store.
public struct RevocationConfig: Sendable {
  public var store: String
  public var keyPrefix = "sluice:revoked:"
  /// When the store cannot answer: deny (503, the default: a revoked token must not get in
  /// because Redis is away) or allow.
  public var onStoreError = StoreErrorPolicy.deny
  public var location: SourceLocation
}
