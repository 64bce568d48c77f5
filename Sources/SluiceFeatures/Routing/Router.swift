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
/// runtime route objects here and tests store plain strings. A class: reading a struct router
/// out of its listener copied its five arrays (a retain and release each) per request.
public final class Router<Payload: Sendable>: Sendable {
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

  public convenience init(_ entries: [Entry]) {
    self.init(entries, filterFrom: 8)
  }

  /// `filterFrom`: the table size from which the scan's bit-set filter is built (tests set it
  /// low to check the filter against the plain scan on small tables).
  init(_ entries: [Entry], filterFrom: Int) {
    self.entries = entries
    self.scan = RouteScan(entries.map(\.match), filterFrom: filterFrom)
  }

  /// Inlinable so that the request path gets a copy specialized for its header and payload
  /// types: called generically across modules it looked up type metadata per request.
  @inlinable public func route<H: RouteHeaders>(_ request: RouteRequest<H>) -> Entry? {
    firstMatch(request).map { entries[$0] }
  }

  /// The chosen route's payload only: the request path copies no `Entry` (its name, match
  /// conditions and payload: a retain and release each).
  @inlinable public func payload<H: RouteHeaders>(_ request: RouteRequest<H>) -> Payload? {
    guard let index = firstMatch(request) else { return nil }
    return entries[index].payload
  }

  @inlinable func firstMatch<H: RouteHeaders>(_ request: RouteRequest<H>) -> Int? {
    let method = RouteScan.methodBit(request.method)
    var path = request.path
    return path.withUTF8 { path in
      var from = 0
      while let index = scan.next(from: from, method: method, path: path) {
        if !scan.needsFullCheck(index) || entries[index].match.matches(request) { return index }
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
    if !covers(a.host, b.host) || !covers(a.serverName, b.serverName) { return false }
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

  /// Whether every name `b` matches is matched by `a` (nil matches every name).
  static func covers(_ a: RouteMatch.Host?, _ b: RouteMatch.Host?) -> Bool {
    guard let a else { return true }
    guard let b else { return false }
    switch (a, b) {
    case (.exact(let x), .exact(let y)): return x == y
    case (.wildcard(let s), .exact(let y)): return a.matches(y) && !s.isEmpty
    case (.wildcard(let s), .wildcard(let t)): return t.hasSuffix(s)
    case (.exact, .wildcard): return false
    }
  }
}

/// Routes' path and method conditions as plain values: a byte arena of exact paths and
/// prefixes, and per route a kind, an arena range and a method bit mask.
@usableFromInline struct RouteScan: Sendable {
  struct Item: Sendable {
    /// 0 any path, 1 exact, 2 prefix, 3 regex (`start` is its index in `regexes`)
    var kind: UInt8
    var needsFull: Bool
    var start: Int32
    var length: Int32
    var methods: UInt32
  }

  let items: [Item]
  let arena: [UInt8]
  /// The regex routes' patterns, matched on the path's bytes here: in the full check (a
  /// `RouteMatch` copy, the enum dispatch and a C string of the path) a regex route cost ~400
  /// instructions more per request.
  let regexes: [PathRegex]

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

  /// Bit sets over blocks of 64 routes that rule routes out before their bytes are compared
  /// (empty for tables under `filterFrom` routes, where the plain scan is as cheap). Per block,
  /// `filterStride` words: for each path length 0…63 and "64 or more", the routes a path of
  /// that length may match; for each method bit, the routes that allow it; for each of the
  /// path's bytes 1…`filterBytes` and each byte value, the routes whose path condition allows
  /// that byte there. A request ANDs one word of each and compares only the routes left: with
  /// 49 prefix routes before a regex route (the features bench config) the scan went from
  /// ~640 instructions per request to ~50 (bench/RESULTS.md).
  let filter: [UInt64]
  static let filterBytes = 4
  static let methodSlots = 10
  static let filterStride = 65 + methodSlots + filterBytes * 256

  init(_ matches: [RouteMatch], filterFrom: Int = 8) {
    var items: [Item] = []
    var arena: [UInt8] = []
    var regexes: [PathRegex] = []
    for match in matches {
      var item = Item(
        kind: 0, needsFull: match.host != nil || match.serverName != nil || !match.headers.isEmpty, start: 0, length: 0, methods: ~0)
      switch match.path {
      case nil: break
      case .exact(let p)?, .prefix(let p)?:
        if case .exact = match.path { item.kind = 1 } else { item.kind = 2 }
        item.start = Int32(arena.count)
        item.length = Int32(p.utf8.count)
        arena.append(contentsOf: p.utf8)
      case .regex(let regex)?:
        item.kind = 3
        item.start = Int32(regexes.count)
        regexes.append(regex)
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
    self.regexes = regexes
    self.filter = items.count >= filterFrom ? Self.buildFilter(items, arena) : []
  }

  static func buildFilter(_ items: [Item], _ arena: [UInt8]) -> [UInt64] {
    let blocks = (items.count + 63) / 64
    var filter = [UInt64](repeating: 0, count: blocks * filterStride)
    for (index, item) in items.enumerated() {
      let base = index / 64 * filterStride
      let bit: UInt64 = 1 << UInt64(index % 64)
      let length = Int(item.length)
      let constrained = item.kind == 1 || item.kind == 2
      for pathLength in 0...64 {
        let may: Bool
        switch item.kind {
        // exact: only its own length ("64 or more" holds every length from 64 on)
        case 1: may = pathLength == min(length, 64)
        // prefix: any path at least as long
        case 2: may = pathLength >= min(length, 64)
        default: may = true
        }
        if may { filter[base + pathLength] |= bit }
      }
      for slot in 0..<methodSlots where item.methods & methodBit(slot: slot) != 0 {
        filter[base + 65 + slot] |= bit
      }
      for position in 1...filterBytes {
        let row = base + 65 + methodSlots + (position - 1) * 256
        if constrained && position < length {
          filter[row + Int(arena[Int(item.start) + position])] |= bit
        } else {
          for byte in 0..<256 { filter[row + byte] |= bit }
        }
      }
    }
    return filter
  }

  /// The method bit of filter slot `slot` (0…8 the standard methods, 9 any other).
  static func methodBit(slot: Int) -> UInt32 { slot < 9 ? 1 << UInt32(slot) : otherMethod }

  @inline(__always) static func methodSlot(_ method: UInt32) -> Int {
    method == otherMethod ? 9 : method.trailingZeroBitCount
  }

  @usableFromInline func needsFullCheck(_ index: Int) -> Bool { items[index].needsFull }

  /// The first route at or after `from` whose path and method conditions hold.
  @usableFromInline func next(from: Int, method: UInt32, path: UnsafeBufferPointer<UInt8>) -> Int? {
    items.withUnsafeBufferPointer { items in
      arena.withUnsafeBufferPointer { arena in
        guard !filter.isEmpty else {
          var index = from
          while index < items.count {
            let item = items[index]
            if item.methods & method != 0 && Self.pathMatches(item, path, arena, regexes) { return index }
            index += 1
          }
          return nil
        }
        return filter.withUnsafeBufferPointer { filter in
          let length = min(path.count, 64)
          let slot = 65 + Self.methodSlot(method)
          let bytes = min(path.count - 1, Self.filterBytes)
          var block = from >> 6
          var first = true
          while block * 64 < items.count {
            let base = block * Self.filterStride
            var candidates = filter[base + length] & filter[base + slot]
            var position = 1
            while position <= bytes {
              candidates &= filter[base + 65 + Self.methodSlots + (position - 1) * 256 + Int(path[position])]
              position += 1
            }
            if first {
              candidates &= ~0 << UInt64(from & 63)
              first = false
            }
            while candidates != 0 {
              let index = block * 64 + candidates.trailingZeroBitCount
              if Self.pathMatches(items[index], path, arena, regexes) { return index }
              candidates &= candidates &- 1
            }
            block += 1
          }
          return nil
        }
      }
    }
  }

  /// Same rules as `RouteMatch.Path.matches`, on bytes (a unit test checks they agree).
  @inline(__always) static func pathMatches(
    _ item: Item, _ path: UnsafeBufferPointer<UInt8>, _ arena: UnsafeBufferPointer<UInt8>, _ regexes: [PathRegex]
  ) -> Bool {
    let length = Int(item.length)
    switch item.kind {
    case 1:
      return path.count == length && equal(path, arena, Int(item.start), length)
    case 2:
      guard path.count >= length, equal(path, arena, Int(item.start), length) else { return false }
      if length == path.count || (length > 0 && arena[Int(item.start) + length - 1] == UInt8(ascii: "/")) { return true }
      return path[length] == UInt8(ascii: "/")
    case 3:
      return regexes[Int(item.start)].matches(bytes: path)
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
