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

  public init(_ entries: [Entry]) { self.entries = entries }

  @inline(__always) public func route<H: RouteHeaders>(_ request: RouteRequest<H>) -> Entry? {
    for entry in entries where entry.match.matches(request) { return entry }
    return nil
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
