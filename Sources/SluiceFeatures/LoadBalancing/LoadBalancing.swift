import Atomics
import SluiceCore

/// `load_balancing:` of a backend.
public enum LoadBalancingPolicy: Sendable, Hashable, CustomStringConvertible {
  case roundRobin
  /// Power of two choices over the endpoints' in-flight counts (as Envoy's LEAST_REQUEST).
  case leastRequest
  case random
  /// Ring hash with `HashRing.virtualNodes` points per endpoint: adding or removing one endpoint
  /// moves only about 1/N of the keys.
  case consistentHash(HashKey)

  public var description: String {
    switch self {
    case .roundRobin: "round_robin"
    case .leastRequest: "least_request"
    case .random: "random"
    case .consistentHash: "consistent_hash"
    }
  }
}

/// `hash_on:` — where the consistent-hash key comes from.
public enum HashKey: Sendable, Hashable, CustomStringConvertible {
  case header(String)
  case cookie(String)
  case clientIP

  public var description: String {
    switch self {
    case .header(let n): "header:\(n)"
    case .cookie(let n): "cookie:\(n)"
    case .clientIP: "client_ip"
    }
  }
}

/// Live per-endpoint numbers shared by every event loop and kept across reloads (looked up by
/// backend name and address), so `/backends` and least-request see the same truth.
public final class EndpointStats: Sendable {
  public let address: String
  public let inFlight = ManagedAtomic<Int>(0)
  public let requests = ManagedAtomic<Int>(0)
  /// Active health checking's verdict (only its prober writes it).
  public let unhealthy = ManagedAtomic<Bool>(false)
  /// Outlier ejection: out of rotation until this monotonic time (nanoseconds), 0 when in.
  public let ejectedUntil = ManagedAtomic<Int64>(0)
  /// Failures in a row (connect failure, reset, timeout, 5xx), for outlier detection.
  public let failureStreak = ManagedAtomic<Int>(0)

  /// Whether the picker may send this endpoint a request at `now` (read only when the
  /// backend checks availability, and the clock only while an ejection is recorded).
  @inline(__always) public func available(now: () -> Int64) -> Bool {
    if unhealthy.load(ordering: .relaxed) { return false }
    let until = ejectedUntil.load(ordering: .relaxed)
    return until == 0 || until <= now()
  }

  public init(address: String) { self.address = address }
}

/// The pure choice functions. The data plane passes in the state (a ticket, the in-flight
/// counts, a random source); nothing here does I/O or locks.
public enum LoadBalancer {
  @inline(__always) public static func roundRobin(ticket: Int, count: Int) -> Int {
    (ticket & Int.max) % count
  }

  @inline(__always) public static func random<R: RandomNumberGenerator>(count: Int, using rng: inout R) -> Int {
    Int(rng.next() % UInt64(count))
  }

  /// Two random distinct candidates; the one with fewer in-flight requests wins (first on ties).
  public static func leastRequest<R: RandomNumberGenerator>(
    count: Int, inFlight: (Int) -> Int, using rng: inout R
  ) -> Int {
    if count == 1 { return 0 }
    let a = Int(rng.next() % UInt64(count))
    var b = Int(rng.next() % UInt64(count - 1))
    if b >= a { b += 1 }
    return inFlight(b) < inFlight(a) ? b : a
  }
}

/// A consistent-hash ring over endpoint addresses.
public struct HashRing: Sendable {
  public static let virtualNodes = 160
  let points: [(hash: UInt64, endpoint: Int)]

  public init(addresses: [String]) {
    var points: [(UInt64, Int)] = []
    points.reserveCapacity(addresses.count * Self.virtualNodes)
    for (index, address) in addresses.enumerated() {
      for replica in 0..<Self.virtualNodes {
        points.append((Hashing.fnv1a("\(address)#\(replica)"), index))
      }
    }
    points.sort { $0.0 < $1.0 }
    self.points = points.map { (hash: $0.0, endpoint: $0.1) }
  }

  /// The first ring point clockwise from `hash`.
  public func endpoint(for hash: UInt64) -> Int {
    guard !points.isEmpty else { return 0 }
    var low = 0
    var high = points.count
    while low < high {
      let mid = (low + high) / 2
      if points[mid].hash < hash { low = mid + 1 } else { high = mid }
    }
    return points[low == points.count ? 0 : low].endpoint
  }
}

public enum Hashing {
  /// FNV-1a 64 with a final avalanche (splitmix64), stable across processes and replicas so a
  /// fleet sends a key to the same endpoint.
  public static func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01B3
    }
    hash ^= hash >> 30
    hash = hash &* 0xBF58_476D_1CE4_E5B9
    hash ^= hash >> 27
    hash = hash &* 0x94D0_49BB_1331_11EB
    hash ^= hash >> 31
    return hash
  }

  /// The value of cookie `name` in a `Cookie` header value, if present.
  public static func cookie(_ name: String, in header: String) -> String? {
    for part in header.split(separator: ";") {
      let pair = part.trimmingASCIIWhitespace()
      if let eq = pair.firstIndex(of: "="), pair[..<eq] == name {
        return String(pair[pair.index(after: eq)...])
      }
    }
    return nil
  }
}

/// One backend's endpoint choice, built once per config. Shared state (round-robin ticket,
/// endpoint stats) comes from the reload-surviving store.
public final class EndpointPicker: Sendable {
  public let policy: LoadBalancingPolicy
  public let endpoints: [EndpointStats]
  let ring: HashRing?
  let ticket: ManagedAtomic<Int>

  public init(policy: LoadBalancingPolicy, endpoints: [EndpointStats], ticket: ManagedAtomic<Int>) {
    self.policy = policy
    self.endpoints = endpoints
    self.ticket = ticket
    if case .consistentHash = policy {
      ring = HashRing(addresses: endpoints.map(\.address))
    } else {
      ring = nil
    }
  }

  /// Picks an endpoint index. `hashKey` is the request's key for consistent hashing (nil when
  /// absent: then the pick is random, as Envoy does).
  @inline(__always) public func pick<R: RandomNumberGenerator>(hashKey: String?, using rng: inout R) -> Int {
    let count = endpoints.count
    if count == 1 { return 0 }
    return choose(hashKey: hashKey, count: count, using: &rng)
  }

  /// Like `pick`, skipping endpoints that are unhealthy or ejected (and `avoid`, the endpoint
  /// a retry leaves, while another is available): the policy's choice when it is available,
  /// else the next available one after it in the list. Nil when none is available.
  public func pickAvailable<R: RandomNumberGenerator>(
    hashKey: String?, avoid: Int? = nil, now: () -> Int64, using rng: inout R
  ) -> Int? {
    let count = endpoints.count
    let first = count == 1 ? 0 : start(hashKey: hashKey, avoid: avoid, count: count, using: &rng)
    var fallback: Int?
    for step in 0..<count {
      let index = (first + step) % count
      guard endpoints[index].available(now: now) else { continue }
      if index != avoid { return index }
      fallback = index
    }
    return fallback
  }

  /// A retry's endpoint: another one than `avoid` when the backend has several. Round robin
  /// takes the one after `avoid` without drawing a ticket, so retries do not shift the
  /// rotation (which would send every first try to the same failing endpoint).
  public func pickRetry<R: RandomNumberGenerator>(hashKey: String?, avoid: Int, using rng: inout R) -> Int {
    let count = endpoints.count
    if count == 1 { return 0 }
    let index = start(hashKey: hashKey, avoid: avoid, count: count, using: &rng)
    return index == avoid ? (index + 1) % count : index
  }

  @inline(__always) func start<R: RandomNumberGenerator>(hashKey: String?, avoid: Int?, count: Int, using rng: inout R)
    -> Int
  {
    if let avoid, case .roundRobin = policy { return (avoid + 1) % count }
    return choose(hashKey: hashKey, count: count, using: &rng)
  }

  @inline(__always) func choose<R: RandomNumberGenerator>(hashKey: String?, count: Int, using rng: inout R) -> Int {
    switch policy {
    case .roundRobin:
      return LoadBalancer.roundRobin(ticket: ticket.loadThenWrappingIncrement(ordering: .relaxed), count: count)
    case .random:
      return LoadBalancer.random(count: count, using: &rng)
    case .leastRequest:
      return LoadBalancer.leastRequest(
        count: count, inFlight: { self.endpoints[$0].inFlight.load(ordering: .relaxed) }, using: &rng)
    case .consistentHash:
      guard let hashKey, let ring else { return LoadBalancer.random(count: count, using: &rng) }
      return ring.endpoint(for: Hashing.fnv1a(hashKey))
    }
  }
}
