import SluiceCore

/// A limit's per-key state for this process: what `store: local` means. One store per limit
/// definition for the whole process (not per event loop), so `limit: 100` admits 100 whatever
/// `event_loops` is. Keys are spread over 64 shards, each a dictionary under its own mutex: a
/// decision holds one shard's lock for a dictionary lookup and an add, and two loops contend
/// only when their keys land in the same shard. Exact by construction (every decision is a
/// read-modify-write under the key's lock); docs/architecture.md says why not per-loop shards.
///
/// Memory is bounded: at most `maxKeys` keys (each shard its share). Idle keys (TAT in the
/// past) carry no state, so they are dropped first and dropping them changes no decision; if a
/// shard is still full, the keys closest to idle go next, so the keys that are over their limit
/// (the ones that matter) are the last to be forgotten.
public final class LocalLimitStore: @unchecked Sendable {
  // Safe: each shard's dictionary is only touched under that shard's mutex.
  public let rule: GCRA
  public let maxKeys: Int
  let shards: [Shard]
  static let shardCount = 64

  final class Shard {
    let lock = Mutex()
    var tats: [UInt64: Int64] = [:]
    let capacity: Int
    init(capacity: Int) { self.capacity = capacity }
  }

  public init(rule: GCRA, maxKeys: Int) {
    self.rule = rule
    self.maxKeys = maxKeys
    let per = max(1, (maxKeys + Self.shardCount - 1) / Self.shardCount)
    shards = (0..<Self.shardCount).map { _ in Shard(capacity: per) }
  }

  @inline(__always) func shard(_ key: UInt64) -> Shard {
    // The low bits chose nothing else (dictionaries rehash), but mix anyway: keys are hashes.
    shards[Int((key ^ (key >> 29)) & UInt64(Self.shardCount - 1))]
  }

  /// Decides one request for `key` at `now` (nanoseconds) and records it when admitted.
  public func take(key: UInt64, now: Int64) -> GCRA.Decision {
    let shard = shard(key)
    return shard.lock.withLock {
      let tat = shard.tats[key] ?? 0
      let decision = rule.decide(tat: tat, now: now)
      if decision.admitted {
        if shard.tats.count >= shard.capacity && shard.tats[key] == nil { Self.evict(shard, now: now, interval: rule.interval) }
        shard.tats[key] = decision.newTAT
      }
      return decision
    }
  }

  /// Gives back a request `take` admitted (another limit of the route refused it).
  public func refund(key: UInt64, now: Int64) {
    let shard = shard(key)
    shard.lock.withLock {
      guard let tat = shard.tats[key] else { return }
      let back = rule.refund(tat: tat, now: now)
      if GCRA.isIdle(tat: back, now: now) { shard.tats[key] = nil } else { shard.tats[key] = back }
    }
  }

  /// Frees at least an eighth of a full shard: idle keys first, then those whose TAT is
  /// nearest `now` (least debt), widening the cut-off until enough are gone.
  static func evict(_ shard: Shard, now: Int64, interval: Int64) {
    let goal = max(1, shard.capacity / 8)
    var cutoff = now
    var step = interval
    var removed = 0
    while removed < goal {
      let before = shard.tats.count
      shard.tats = shard.tats.filter { $0.value > cutoff }
      removed += before - shard.tats.count
      if shard.tats.isEmpty { break }
      cutoff = cutoff &+ step
      step = step &* 2
    }
  }

  /// Keys tracked now (tests, `/debug`-style checks): sums every shard under its lock.
  public var trackedKeys: Int {
    shards.reduce(0) { sum, shard in sum + shard.lock.withLock { shard.tats.count } }
  }

  /// The key's TAT, for tests.
  public func tat(key: UInt64) -> Int64? {
    let shard = shard(key)
    return shard.lock.withLock { shard.tats[key] }
  }
}

/// What a limit counts requests by (`rate_limits.<name>.key`).
public enum RateLimitKey: Sendable, Hashable, CustomStringConvertible {
  case clientIP
  case header(String)
  case claim(String)
  case route

  public var description: String {
    switch self {
    case .clientIP: "client_ip"
    case .header(let h): "header:\(h)"
    case .claim(let c): "claim:\(c)"
    case .route: "route"
    }
  }

  /// A key's 64-bit identity: SipHash with the process's random seed over a tag and the bytes,
  /// so a client cannot aim two values at one bucket, and a request allocates nothing to find
  /// its key. Two distinct values share a bucket with probability about n²/2⁶⁵ (10⁻⁸ for a
  /// million keys). A request without the header or claim is counted by its client IP instead
  /// (tag 0), so leaving the header out is not a way around the limit.
  public static func hash(tag: UInt8, _ text: String) -> UInt64 {
    var hasher = Hasher()
    hasher.combine(tag)
    var text = text
    text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    return UInt64(bitPattern: Int64(hasher.finalize()))
  }
}
