import Crypto
import SluiceCore

/// One limit as a route uses it, compiled once per config: where its state lives, and its
/// refusal counter (`sluice_rate_limited_total{route,limit}`).
public final class CompiledLimit: Sendable {
  public enum Placement: Sendable {
    /// In this process (`LocalLimitStore`, shared by every event loop).
    case local(LocalLimitStore)
    /// In a Redis store, decided by one script per request.
    case shared(SharedStore, onError: StoreErrorPolicy)
  }

  public let name: String
  public let key: RateLimitKey
  public let rule: GCRA
  public let placement: Placement
  public let refused: Counter
  /// `sluice:rl:<name>:`, the Redis key prefix.
  public let keyPrefix: String

  public init(name: String, key: RateLimitKey, rule: GCRA, placement: Placement, refused: Counter) {
    self.name = name
    self.key = key
    self.rule = rule
    self.placement = placement
    self.refused = refused
    self.keyPrefix = "sluice:rl:\(name):"
  }

  /// The request's value for this limit's key, and whether it fell back to the client IP (the
  /// header or claim was absent). Header values are used as sent; claims as strings or numbers.
  public func keyValue(clientIP: String, header: (String) -> String?, claims: JSONValue?, route: String) -> (
    tag: UInt8, text: String
  ) {
    switch key {
    case .clientIP: return (0, clientIP)
    case .route: return (1, route)
    case .header(let name):
      if let value = header(name) { return (2, value) }
    case .claim(let name):
      if let claim = claims?[name] {
        if let text = claim.stringValue { return (3, text) }
        if case .int(let n) = claim { return (3, String(n)) }
      }
    }
    return (0, clientIP)
  }

  /// The Redis key for a value: the prefix, the tag, and the value (a SHA-256 hex digest past 128
  /// bytes, so a long header cannot make a long key).
  public func sharedKey(tag: UInt8, text: String) -> String {
    let value = text.utf8.count > 128 ? Self.sha256Hex(text) : text
    return keyPrefix + String(tag) + ":" + value
  }

  static func sha256Hex(_ text: String) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for byte in SHA256.hash(data: Array(text.utf8)) {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// What `store: <redis>` falls back to is counted: `sluice_store_fallbacks_total{store,use}`.
public enum StoreErrorPolicy: String, Sendable {
  /// Admit the request (the limit is off while Redis is away).
  case allow
  /// 503 `unavailable`.
  case deny
}

/// A route's `rate_limit` list, compiled: local limits are decided inline; limits in Redis
/// stores are decided by one round trip per store (all of a store's limits in one script).
public final class RateLimitStep: Sendable {
  public let locals: [CompiledLimit]
  /// Shared limits grouped by store, in the order the route lists them.
  public let shared: [(store: SharedStore, limits: [CompiledLimit])]
  public let route: String

  public init(route: String, limits: [CompiledLimit]) {
    self.route = route
    locals = limits.filter { if case .local = $0.placement { true } else { false } }
    var groups: [(store: SharedStore, limits: [CompiledLimit])] = []
    for limit in limits {
      guard case .shared(let store, _) = limit.placement else { continue }
      if let i = groups.firstIndex(where: { $0.store === store }) {
        groups[i].limits.append(limit)
      } else {
        groups.append((store, [limit]))
      }
    }
    shared = groups
  }
}
