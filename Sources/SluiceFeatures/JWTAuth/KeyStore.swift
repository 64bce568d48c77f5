import Atomics
import SluiceCore

/// The port through which the request path asks for fresh keys (implemented by the JWKS
/// fetcher in SluiceAdapters). Single-flight and rate-limited by the implementation, so a
/// flood of random `kid`s costs the key server one fetch per interval.
public protocol KeyRefresher: AnyObject, Sendable {
  /// `done` runs (on any thread) when the refresh attempt ends, or at once when a refresh ran
  /// too recently to start another.
  func refreshForUnknownKID(_ done: @escaping @Sendable () -> Void)
}

/// One provider's current keys. It lives outside the runtime graph, keyed by the provider's
/// key source, so a reload keeps keys that were fetched (ARCHITECTURE.md rule 3). Written by
/// the fetcher (rarely), read by event loops on a cache miss; cache hits only read `version`.
public final class KeyStore: @unchecked Sendable {
  // Safe: `lock` guards `keys`, `available`, `lastError`, `fetchedAtMillis`; `version` is atomic.
  public enum Availability: Sendable { case waiting, ready, unavailable }

  let lock = Mutex()
  var keys: KeySet?
  var denyWhenStale: Bool
  var stale = false
  var lastError: String?
  var fetchedAtMillis: Int64 = 0
  let versionCounter = ManagedAtomic<Int>(0)
  var _refresher: (any KeyRefresher)?

  public init(keys: KeySet? = nil, denyWhenStale: Bool = false) {
    self.keys = keys
    self.denyWhenStale = denyWhenStale
    if keys != nil {
      versionCounter.store(1, ordering: .relaxed)
      fetchedAtMillis = WallClock.nowMilliseconds()
    }
  }

  /// Changes when the key set changes: cached verdicts of an older version are not used.
  @inline(__always) public var version: Int { versionCounter.load(ordering: .acquiring) }

  public var refresher: (any KeyRefresher)? {
    get { lock.withLock { _refresher } }
    set { lock.withLock { _refresher = newValue } }
  }

  /// The keys to verify with, or why there are none to use.
  public func current() -> (keys: KeySet?, availability: Availability) {
    lock.withLock {
      guard let keys else { return (nil, .waiting) }
      if stale && denyWhenStale { return (nil, .unavailable) }
      return (keys, .ready)
    }
  }

  public func install(_ new: KeySet) {
    lock.withLock {
      keys = new
      stale = false
      lastError = nil
      fetchedAtMillis = WallClock.nowMilliseconds()
    }
    versionCounter.wrappingIncrement(ordering: .releasing)
  }

  /// A refresh failed: the last good keys stay (`use_cached`) or stop admitting (`deny`).
  public func refreshFailed(_ error: String) {
    let deny = lock.withLock {
      stale = true
      lastError = error
      return denyWhenStale
    }
    // Cached verdicts must stop admitting too.
    if deny { versionCounter.wrappingIncrement(ordering: .releasing) }
  }

  public func setDenyWhenStale(_ deny: Bool) { lock.withLock { denyWhenStale = deny } }

  /// Seconds since the keys in use were fetched; nil while none were.
  public func ageSeconds(nowMillis: Int64 = WallClock.nowMilliseconds()) -> Double? {
    lock.withLock { keys == nil ? nil : Double(nowMillis - fetchedAtMillis) / 1000 }
  }

  public var isWaiting: Bool { lock.withLock { keys == nil } }
  public var error: String? { lock.withLock { lastError } }
}

/// A JWT provider as the request path uses it: the policy, where tokens come from, its keys.
public final class JWTProvider: Sendable {
  public let name: String
  public let policy: JWTPolicy
  public let sources: [TokenSource]
  public let keys: KeyStore
  /// Envoy's `forward`: when false (the default), the credential is removed before the request
  /// goes upstream.
  public let forwardToken: Bool
  /// A `jti` deny-list in a shared store.
  public let revocation: RevocationRule?

  public init(
    name: String, policy: JWTPolicy, sources: [TokenSource], keys: KeyStore, forwardToken: Bool,
    revocation: RevocationRule? = nil
  ) {
    self.revocation = revocation
    self.name = name
    self.policy = policy
    self.sources = sources
    self.keys = keys
    self.forwardToken = forwardToken
  }
}

/// `revocation` on a JWT provider, compiled.
public struct RevocationRule: Sendable {
  public let store: SharedStore
  public let keyPrefix: String
  public let denyOnStoreError: Bool

  public init(store: SharedStore, keyPrefix: String, denyOnStoreError: Bool) {
    self.store = store
    self.keyPrefix = keyPrefix
    self.denyOnStoreError = denyOnStoreError
  }
}
