/// Verified tokens of one event loop, so a hot RS256 or ES256 token costs a keyed hash and a
/// lookup instead of a signature check. Keyed by a keyed hash of (provider, token) — SipHash
/// (Swift's `Hasher`, seeded at random per process) — and the token's length; a hit must also
/// match the token's last 64 bytes (its signature) exactly. The seed never leaves the process,
/// so an attacker cannot aim a forged token at a cached one, and a forged token would need a
/// cached token's signature as well. SHA-256 cost 19k instructions per request on a 600-byte
/// token (a third of a proxied request), this about 2.7k (bench/RESULTS.md). An entry is valid until the token's `exp` (plus clock
/// skew; tokens without `exp` for at most 5 minutes) and only for the key-set version it was
/// verified with, so rotated-out keys stop admitting at once.
///
/// Bounded: at most `capacity` entries per loop (default 8,192, first in first out); with two
/// loops a flood of distinct tokens holds at most 16,384 entries (bench/RESULTS.md measures
/// the RSS). Loop-confined: no lock.
public final class TokenCache {
  public static let defaultCapacity = 8192
  /// Longest a token without `exp` stays cached.
  public static let noExpiryTTL: Int64 = 300

  public struct Key: Hashable, Sendable {
    var hash: Int, length: Int
  }

  struct Entry {
    var tail: ArraySlice<UInt8>
    var claims: VerifiedClaims
    var validUntil: Int64
    var keysVersion: Int
  }

  let capacity: Int
  var entries: [Key: Entry] = [:]
  var order: [Key] = []
  var next = 0

  public init(capacity: Int = TokenCache.defaultCapacity) {
    self.capacity = max(1, capacity)
  }

  public var count: Int { entries.count }

  public static func key(provider: String, token: [UInt8]) -> Key {
    var hasher = Hasher()
    hasher.combine(provider)
    token.withUnsafeBytes { hasher.combine(bytes: $0) }
    return Key(hash: hasher.finalize(), length: token.count)
  }

  static func tail(_ token: [UInt8]) -> ArraySlice<UInt8> { token.suffix(64) }

  public func lookup(_ key: Key, token: [UInt8], now: Int64, keysVersion: Int) -> VerifiedClaims? {
    guard let entry = entries[key], entry.tail == Self.tail(token) else { return nil }
    guard now < entry.validUntil, entry.keysVersion == keysVersion else {
      entries[key] = nil
      return nil
    }
    return entry.claims
  }

  public func insert(_ key: Key, token: [UInt8], claims: VerifiedClaims, now: Int64, clockSkew: Int64, keysVersion: Int) {
    let tail = Array(Self.tail(token))[...]
    let until = claims.expiresAt.map { $0 &+ clockSkew } ?? (now + Self.noExpiryTTL)
    guard until > now else { return }
    if entries[key] != nil {
      entries[key] = Entry(tail: tail, claims: claims, validUntil: until, keysVersion: keysVersion)
      return
    }
    if order.count < capacity {
      order.append(key)
    } else {
      entries[order[next]] = nil
      order[next] = key
      next = (next + 1) % capacity
    }
    entries[key] = Entry(tail: tail, claims: claims, validUntil: until, keysVersion: keysVersion)
  }
}
