import SluiceCore

/// A `policies` entry: allow rules after authentication. Any rule admits; within a rule every
/// condition must hold; no rule admits → 403. Pure.
public struct AccessPolicy: Sendable {
  public struct ClaimCondition: Sendable {
    public var claim: String
    /// One value (equality) or several (membership).
    public var values: [String]
    public init(claim: String, values: [String]) {
      self.claim = claim
      self.values = values
    }
  }

  public struct Rule: Sendable {
    public var claims: [ClaimCondition] = []
    public var sourceIPs: [CIDR] = []
    public var methods: Set<String> = []
    /// Segment-aware prefixes on the canonical path (as route `path_prefix`).
    public var paths: [String] = []
    public init() {}
  }

  public var name: String
  public var rules: [Rule]

  public init(name: String, rules: [Rule]) {
    self.name = name
    self.rules = rules
  }

  public var usesClaims: Bool { rules.contains { !$0.claims.isEmpty } }

  public func allows(claims: JSONValue?, clientIP: [UInt8]?, method: String, path: String) -> Bool {
    rules.contains { rule in
      if !rule.methods.isEmpty && !rule.methods.contains(method) { return false }
      if !rule.paths.isEmpty && !rule.paths.contains(where: { Self.hasPathPrefix(path, $0) }) { return false }
      if !rule.sourceIPs.isEmpty {
        guard let ip = clientIP, rule.sourceIPs.contains(where: { $0.contains(ip) }) else { return false }
      }
      for condition in rule.claims {
        guard let value = claims?[condition.claim], Self.claim(value, matches: condition.values) else { return false }
      }
      return true
    }
  }

  /// A claim that is a list matches when it holds one of the values; a scalar when it equals one.
  static func claim(_ value: JSONValue, matches wanted: [String]) -> Bool {
    switch value {
    case .array(let items): return items.contains { $0.headerText.map(wanted.contains) ?? false }
    case .bool(let b): return wanted.contains(b ? "true" : "false")
    default: return value.headerText.map(wanted.contains) ?? false
    }
  }

  static func hasPathPrefix(_ path: String, _ prefix: String) -> Bool {
    let bytes = path.utf8
    guard bytes.starts(with: prefix.utf8) else { return false }
    if prefix.utf8.last == UInt8(ascii: "/") || bytes.count == prefix.utf8.count { return true }
    return bytes[bytes.index(bytes.startIndex, offsetBy: prefix.utf8.count)] == UInt8(ascii: "/")
  }
}
