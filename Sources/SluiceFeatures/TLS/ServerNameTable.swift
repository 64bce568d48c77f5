import SluiceCore

/// Server names (SNI) to what they select: a listener's certificate, or a passthrough route.
/// Exact names win over wildcards, and a longer wildcard suffix over a shorter one, whatever
/// their order in the config (as nginx `server_name` and Envoy's filter-chain match do); the
/// first entry of a name wins over later ones. Names are compared lower-cased.
public struct ServerNameTable<Payload: Sendable>: Sendable {
  var exact: [String: Payload] = [:]
  /// `.example.com` suffixes, longest first.
  var wildcards: [(suffix: String, payload: Payload)] = []

  public init(_ entries: [(name: RouteMatch.Host, payload: Payload)]) {
    for entry in entries {
      switch entry.name {
      case .exact(let name):
        if exact[name] == nil { exact[name] = entry.payload }
      case .wildcard(let suffix):
        if !wildcards.contains(where: { $0.suffix == suffix }) { wildcards.append((suffix, entry.payload)) }
      }
    }
    wildcards.sort { $0.suffix.utf8.count > $1.suffix.utf8.count }
  }

  public var isEmpty: Bool { exact.isEmpty && wildcards.isEmpty }

  /// `name` must already be lower-case (the ClientHello parser makes it so).
  public func lookup(_ name: String) -> Payload? {
    if let hit = exact[name] { return hit }
    for entry in wildcards where RouteMatch.Host.wildcard(suffix: entry.suffix).matches(name) { return entry.payload }
    return nil
  }

  /// A name as written in the config (`api.example.com`, `*.example.com`), or nil when it is
  /// neither a host name nor a one-level wildcard.
  public static func name(_ text: String) -> RouteMatch.Host? {
    let lower = text.lowercased()
    if lower.hasPrefix("*.") {
      let rest = lower.dropFirst(2)
      return isHostName(rest) ? .wildcard(suffix: String(lower.dropFirst(1))) : nil
    }
    return isHostName(lower[...]) ? .exact(lower) : nil
  }

  static func isHostName(_ text: Substring) -> Bool {
    guard !text.isEmpty, text.utf8.count <= 253, !text.hasPrefix("."), !text.hasSuffix("."), !text.contains("..") else {
      return false
    }
    return text.utf8.allSatisfy {
      ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
        || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
    }
  }
}
