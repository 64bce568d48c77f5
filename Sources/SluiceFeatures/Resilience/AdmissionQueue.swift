/// `max_concurrent_requests` and `queue` on a backend: at most `limit` requests in flight for
/// the process; the next `size` wait in FIFO order for at most `timeout`; beyond that, 503 at
/// once. A waiter that leaves (its client closed) gives its place back. Plain data: the gateway
/// keeps one per backend behind a lock and wakes waiters on their own event loops.
public struct AdmissionQueue<Waiter>: Sendable where Waiter: Sendable {
  public let limit: Int
  public let size: Int
  public let timeout: Int64
  public internal(set) var inFlight = 0
  var waiting: [(id: UInt64, waiter: Waiter, deadline: Int64)] = []
  var head = 0
  var nextID: UInt64 = 0

  public init(limit: Int, size: Int, timeout: Int64) {
    self.limit = max(1, limit)
    self.size = max(0, size)
    self.timeout = timeout
  }

  public var queued: Int { waiting.count - head }

  public enum Entry: Sendable, Hashable {
    /// Go on now (a slot is held: call `release` when the request ends).
    case admitted
    /// Wait; `id` identifies the place for `cancel`.
    case queued(id: UInt64)
    /// 503 at once.
    case rejected
  }

  public mutating func enter(_ waiter: Waiter, now: Int64) -> Entry {
    if inFlight < limit && queued == 0 {
      inFlight += 1
      return .admitted
    }
    guard queued < size else { return .rejected }
    nextID &+= 1
    waiting.append((nextID, waiter, now + timeout))
    return .queued(id: nextID)
  }

  /// A request ended: its slot goes to the oldest waiter whose deadline has not passed, who is
  /// returned (to be resumed); expired waiters passed over are returned in `expired`.
  public mutating func release(now: Int64) -> (next: Waiter?, expired: [Waiter]) {
    inFlight -= 1
    var expired: [Waiter] = []
    while head < waiting.count {
      let entry = waiting[head]
      head += 1
      if entry.deadline <= now {
        expired.append(entry.waiter)
        continue
      }
      inFlight += 1
      compact()
      return (entry.waiter, expired)
    }
    compact()
    return (nil, expired)
  }

  /// Waiters whose deadline passed (503 for each), removed from the queue.
  public mutating func expire(now: Int64) -> [Waiter] {
    var out: [Waiter] = []
    var kept: [(id: UInt64, waiter: Waiter, deadline: Int64)] = []
    for entry in waiting[head...] {
      if entry.deadline <= now { out.append(entry.waiter) } else { kept.append(entry) }
    }
    waiting = kept
    head = 0
    return out
  }

  /// The waiter with `id` left: true when it was still queued (its place is freed).
  public mutating func cancel(_ id: UInt64) -> Bool {
    guard let i = waiting[head...].firstIndex(where: { $0.id == id }) else { return false }
    waiting.remove(at: i)
    return true
  }

  /// The earliest deadline among waiters, for the expiry timer.
  public var nextDeadline: Int64? { waiting[head...].map(\.deadline).min() }

  mutating func compact() {
    if head > 64 && head * 2 > waiting.count {
      waiting.removeFirst(head)
      head = 0
    }
  }
}
