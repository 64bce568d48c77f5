import Crypto

/// Verified tokens of one event loop, so a hot RS256 or ES256 token costs a SHA-256 and a
/// lookup instead of a signature check. Keyed by SHA-256 of (provider, token): a collision
/// would need a SHA-256 collision. An entry is valid until the token's `exp` (plus clock
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
    var a: UInt64, b: UInt64, c: UInt64, d: UInt64
  }

  struct Entry {
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
    var hasher = SHA256()
    hasher.update(data: Array(provider.utf8))
    hasher.update(data: [0])
    hasher.update(data: token)
    let digest = hasher.finalize()
    return digest.withUnsafeBytes { raw in
      Key(
        a: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), b: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
        c: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), d: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }
  }

  public func lookup(_ key: Key, now: Int64, keysVersion: Int) -> VerifiedClaims? {
    guard let entry = entries[key] else { return nil }
    guard now < entry.validUntil, entry.keysVersion == keysVersion else {
      entries[key] = nil
      return nil
    }
    return entry.claims
  }

  public func insert(_ key: Key, claims: VerifiedClaims, now: Int64, clockSkew: Int64, keysVersion: Int) {
    let until = claims.expiresAt.map { $0 &+ clockSkew } ?? (now + Self.noExpiryTTL)
    guard until > now else { return }
    if entries[key] != nil {
      entries[key] = Entry(claims: claims, validUntil: until, keysVersion: keysVersion)
      return
    }
    if order.count < capacity {
      order.append(key)
    } else {
      entries[order[next]] = nil
      order[next] = key
      next = (next + 1) % capacity
    }
    entries[key] = Entry(claims: claims, validUntil: until, keysVersion: keysVersion)
  }
}
