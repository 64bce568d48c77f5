#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// First-match-wins routing over a listener's routes, in list order (SPEC section 2).
///
/// Generic over the route payload so the router stays pure: the config compiler stores its
/// runtime route objects here and tests store plain strings.
public struct Router<Payload: Sendable>: Sendable {
  public struct Entry: Sendable {
    public var name: String
    public var match: RouteMatch
    public var payload: Payload
    public init(name: String, match: RouteMatch, payload: Payload) {
      self.name = name
      self.match = match
      self.payload = payload
    }
  }

  public let entries: [Entry]
  /// The conditions most routes use (path and method), flattened for a scan that copies no
  /// reference-counted value: walking `entries` retained and released every route's strings
  /// and sets, and hashed the method once per route (together ~8 % of a request's CPU over
  /// the 50-route bench table). A route with more conditions is checked in full only after
  /// its fast ones pass.
  @usableFromInline let scan: RouteScan

  public init(_ entries: [Entry]) {
    self.entries = entries
    self.scan = RouteScan(entries.map(\.match))
  }

  /// Inlinable so that the request path gets a copy specialized for its header and payload
  /// types: called generically across modules it looked up type metadata per request.
  @inlinable public func route<H: RouteHeaders>(_ request: RouteRequest<H>) -> Entry? {
    let method = RouteScan.methodBit(request.method)
    var path = request.path
    return path.withUTF8 { path in
      var from = 0
      while let index = scan.next(from: from, method: method, path: path) {
        if !scan.needsFullCheck(index) || entries[index].match.matches(request) { return entries[index] }
        from = index + 1
      }
      return nil
    }
  }

  /// For each route in order: nil when it matches, or why it does not.
  public func explain<H: RouteHeaders>(_ request: RouteRequest<H>) -> [(name: String, mismatch: String?)] {
    entries.map { ($0.name, $0.match.mismatch(request)) }
  }

  /// Pairs (earlier, later) where the earlier route matches every request the later one does,
  /// so the later can never be chosen. Conservative: regex routes are never judged.
  public func shadowed() -> [(shadowing: Int, shadowed: Int)] {
    var out: [(Int, Int)] = []
    for j in entries.indices {
      for i in 0..<j where Self.covers(entries[i].match, entries[j].match) {
        out.append((i, j))
        break
      }
    }
    return out
  }

  static func covers(_ a: RouteMatch, _ b: RouteMatch) -> Bool {
    if let ah = a.host {
      guard let bh = b.host else { return false }
      switch (ah, bh) {
      case (.exact(let x), .exact(let y)): if x != y { return false }
      case (.wildcard(let s), .exact(let y)): if !ah.matches(y) || s.isEmpty { return false }
      case (.wildcard(let s), .wildcard(let t)): if !(t.hasSuffix(s)) { return false }
      case (.exact, .wildcard): return false
      }
    }
    if let ap = a.path {
      guard let bp = b.path else { return false }
      switch (ap, bp) {
      case (.exact(let x), .exact(let y)): if x != y { return false }
      case (.prefix, .exact(let y)), (.prefix, .prefix(let y)): if !ap.matches(y) { return false }
      default: return false
      }
    }
    if let am = a.methods {
      guard let bm = b.methods, bm.isSubset(of: am) else { return false }
    }
    for (name, value) in a.headers where !b.headers.contains(where: { $0.name == name && $0.value == value }) {
      return false
    }
    return true
  }
}

/// Routes' path and method conditions as plain values: a byte arena of exact paths and
/// prefixes, and per route a kind, an arena range and a method bit mask.
@usableFromInline struct RouteScan: Sendable {
  struct Item: Sendable {
    /// 0 any path, 1 exact, 2 prefix, 3 other (regex: decided by the full check)
    var kind: UInt8
    var needsFull: Bool
    var start: Int32
    var length: Int32
    var methods: UInt32
  }

  let items: [Item]
  let arena: [UInt8]

  static let standardMethods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
  /// Any method outside `standardMethods`.
  static let otherMethod: UInt32 = 1 << 31

  @usableFromInline static func methodBit(_ method: String) -> UInt32 {
    switch method {
    case "GET": return 1
    case "HEAD": return 1 << 1
    case "POST": return 1 << 2
    case "PUT": return 1 << 3
    case "DELETE": return 1 << 4
    case "PATCH": return 1 << 5
    case "OPTIONS": return 1 << 6
    case "CONNECT": return 1 << 7
    case "TRACE": return 1 << 8
    default: return otherMethod
    }
  }

  init(_ matches: [RouteMatch]) {
    var items: [Item] = []
    var arena: [UInt8] = []
    for match in matches {
      var item = Item(kind: 0, needsFull: match.host != nil || !match.headers.isEmpty, start: 0, length: 0, methods: ~0)
      switch match.path {
      case nil: break
      case .exact(let p)?, .prefix(let p)?:
        if case .exact = match.path { item.kind = 1 } else { item.kind = 2 }
        item.start = Int32(arena.count)
        item.length = Int32(p.utf8.count)
        arena.append(contentsOf: p.utf8)
      case .regex?:
        item.kind = 3
        item.needsFull = true
      }
      if let methods = match.methods {
        item.methods = 0
        for method in methods {
          let bit = Self.methodBit(method)
          item.methods |= bit
          // a custom method shares one bit with all others: the full check tells them apart
          if bit == Self.otherMethod { item.needsFull = true }
        }
      }
      items.append(item)
    }
    self.items = items
    self.arena = arena
  }

  @usableFromInline func needsFullCheck(_ index: Int) -> Bool { items[index].needsFull }

  /// The first route at or after `from` whose path and method conditions hold.
  @usableFromInline func next(from: Int, method: UInt32, path: UnsafeBufferPointer<UInt8>) -> Int? {
    items.withUnsafeBufferPointer { items in
      arena.withUnsafeBufferPointer { arena in
        var index = from
        while index < items.count {
          let item = items[index]
          if item.methods & method != 0 && Self.pathMatches(item, path, arena) { return index }
          index += 1
        }
        return nil
      }
    }
  }

  /// Same rules as `RouteMatch.Path.matches`, on bytes (a unit test checks they agree).
  @inline(__always) static func pathMatches(_ item: Item, _ path: UnsafeBufferPointer<UInt8>, _ arena: UnsafeBufferPointer<UInt8>)
    -> Bool
  {
    let length = Int(item.length)
    switch item.kind {
    case 1:
      return path.count == length && equal(path, arena, Int(item.start), length)
    case 2:
      guard path.count >= length, equal(path, arena, Int(item.start), length) else { return false }
      if length == path.count || (length > 0 && arena[Int(item.start) + length - 1] == UInt8(ascii: "/")) { return true }
      return path[length] == UInt8(ascii: "/")
    default:
      return true
    }
  }

  @inline(__always) static func equal(_ path: UnsafeBufferPointer<UInt8>, _ arena: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int)
    -> Bool
  {
    guard length > 0 else { return true }
    return memcmp(path.baseAddress!, arena.baseAddress! + start, length) == 0
  }
}
