import SluiceCore

/// `max_concurrent_requests` and `queue` on a backend, for the whole process: the seed's
/// bounded channel. At most `limit` requests are in flight; the next `size` wait in FIFO order
/// for at most `timeout`; beyond that a request gets 503 at once. Waiters are callbacks that
/// run (outside the lock, on any thread) with `true` when a slot is theirs, or `false` when
/// their wait timed out; the frontend hops back to the request's own event loop.
public final class ConcurrencyGate: @unchecked Sendable {
  // Safe: `queue` is only touched under `lock`.
  public typealias Waiter = @Sendable (Bool) -> Void
  let lock = Mutex()
  var queue: AdmissionQueue<Waiter>
  public let limit: Int
  public let size: Int
  public let timeout: Int64

  public init(limit: Int, size: Int, timeout: Int64) {
    self.limit = limit
    self.size = size
    self.timeout = timeout
    queue = AdmissionQueue(limit: limit, size: size, timeout: timeout)
  }

  /// A slot now, when one is free and nobody waits: the common case, without building a waiter.
  public func tryAcquire() -> Bool {
    lock.withLock {
      guard queue.inFlight < queue.limit && queue.queued == 0 else { return false }
      queue.inFlight += 1
      return true
    }
  }

  public func enter(now: Int64, _ waiter: @escaping Waiter) -> AdmissionQueue<Waiter>.Entry {
    lock.withLock { queue.enter(waiter, now: now) }
  }

  /// A request that held a slot ended: the slot goes to the oldest live waiter.
  public func release(now: Int64) {
    let (next, expired) = lock.withLock { queue.release(now: now) }
    for waiter in expired { waiter(false) }
    next?(true)
  }

  /// The waiter with `id` gave up (its timeout, or its client left): true when it was still
  /// waiting, so no slot will come to it.
  public func cancel(_ id: UInt64) -> Bool { lock.withLock { queue.cancel(id) } }

  public var inFlight: Int { lock.withLock { queue.inFlight } }
  public var queued: Int { lock.withLock { queue.queued } }
}
