import SluiceCore

/// Why a shared store gave no answer. Each is a fallback (`on_store_error`), counted.
public enum StoreFailure: String, Error, Sendable, CaseIterable {
  /// No connection (Redis down, or reconnecting after an error).
  case disconnected
  /// No reply within the store's `timeout`.
  case timeout
  /// Too many commands already waiting on the connection (`max_pending`).
  case overloaded
  /// A reply that was not what the command returns (an error reply, garbage).
  case badReply = "bad_reply"
}

/// The shared limits' verdict from the store: the same fields as a local `GCRA.Decision`.
public struct SharedLimitVerdict: Sendable, Hashable {
  public var admitted: Bool
  /// Which limit refused (index into the request's list), when refused.
  public var refusedBy: Int
  public var remaining: Int64
  public var retryAfterNanos: Int64
  public var resetNanos: Int64

  public init(admitted: Bool, refusedBy: Int, remaining: Int64, retryAfterNanos: Int64, resetNanos: Int64) {
    self.admitted = admitted
    self.refusedBy = refusedBy
    self.remaining = remaining
    self.retryAfterNanos = retryAfterNanos
    self.resetNanos = resetNanos
  }
}

/// The port through which admission asks a shared store (implemented by the Redis client in
/// SluiceAdapters). Both calls answer exactly once, on any thread, within the store's timeout:
/// a dead store answers `.failure` rather than never.
public protocol SharedStoreClient: AnyObject, Sendable {
  /// Decides one request against every `(key, rule)` at once, atomically in the store: all
  /// admit and all are charged, or none is (so a refusal by one does not use up the others).
  func takeLimits(
    _ keys: [String], rules: [GCRA], completion: @escaping @Sendable (Result<SharedLimitVerdict, StoreFailureError>) -> Void)
  /// Whether `key` exists (the revocation deny-list).
  func exists(_ key: String, completion: @escaping @Sendable (Result<Bool, StoreFailureError>) -> Void)
}

public struct StoreFailureError: Error, Sendable, Hashable {
  public var failure: StoreFailure
  public init(_ failure: StoreFailure) { self.failure = failure }
}

/// A named Redis store as the request path sees it: a stable object (it survives reloads while
/// the store's definition is unchanged) whose client the gateway attaches once connections are
/// set up. Without a client every call fails as `disconnected`, so a store is never a hang.
public final class SharedStore: @unchecked Sendable {
  // Safe: `lock` guards `_client`.
  public let name: String
  let lock = Mutex()
  var _client: (any SharedStoreClient)?

  public init(name: String) { self.name = name }

  public var client: (any SharedStoreClient)? {
    get { lock.withLock { _client } }
    set { lock.withLock { _client = newValue } }
  }
}
