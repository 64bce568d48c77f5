#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Verified tokens of one event loop, so a hot RS256 or ES256 token costs a lookup and a
/// `memcmp` instead of a signature check. An entry holds the whole token and a hit needs the
/// exact bytes, so no hash collision can admit a forged token; the hash (`Hasher` over the
/// provider, the token's length and its last 32 bytes — its signature) only finds the bucket.
/// SHA-256 of the token cost 19k instructions per request on a 600-byte token, a third of a
/// proxied request; this costs about 1k (bench/RESULTS.md). An entry is valid until the
/// token's `exp` (plus clock skew; tokens without `exp` for at most 5 minutes) and only for the
/// key-set version it was verified with, so rotated-out keys stop admitting at once.
///
/// Bounded: at most `capacity` entries per loop (default 4,096, first in first out), each the
/// token's bytes plus its parsed claims (about 2 KiB for a 1 KiB token); with two loops a flood
/// of distinct valid tokens holds at most 8,192 entries, ~16 MiB (bench/RESULTS.md measures
/// the RSS). Loop-confined: no lock.
public final class TokenCache {
  public static let defaultCapacity = 4096
  /// Longest a token without `exp` stays cached.
  public static let noExpiryTTL: Int64 = 300

  public struct Key: Hashable, Sendable {
    var hash: Int, length: Int
  }

  struct Entry {
    var token: [UInt8]
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
    token.withUnsafeBytes { raw in
      let tail = min(32, raw.count)
      hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: raw[(raw.count - tail)...]))
    }
    return Key(hash: hasher.finalize(), length: token.count)
  }

  public func lookup(_ key: Key, token: [UInt8], now: Int64, keysVersion: Int) -> VerifiedClaims? {
    guard let entry = entries[key] else { return nil }
    let same = entry.token.withUnsafeBytes { a in
      token.withUnsafeBytes { b in a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0) }
    }
    guard same else { return nil }
    guard now < entry.validUntil, entry.keysVersion == keysVersion else {
      entries[key] = nil
      return nil
    }
    return entry.claims
  }

  public func insert(_ key: Key, token: [UInt8], claims: VerifiedClaims, now: Int64, clockSkew: Int64, keysVersion: Int) {
    let until = claims.expiresAt.map { $0 &+ clockSkew } ?? (now + Self.noExpiryTTL)
    guard until > now else { return }
    if entries[key] != nil {
      entries[key] = Entry(token: token, claims: claims, validUntil: until, keysVersion: keysVersion)
      return
    }
    if order.count < capacity {
      order.append(key)
    } else {
      entries[order[next]] = nil
      order[next] = key
      next = (next + 1) % capacity
    }
    entries[key] = Entry(token: token, claims: claims, validUntil: until, keysVersion: keysVersion)
  }
}
