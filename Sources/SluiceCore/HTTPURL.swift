/// An `http://` or `https://` URL as the gateway's own clients use it (JWKS fetches, audit
/// webhooks): host, port, and the request target. No userinfo, no fragment.
public struct HTTPURL: Sendable, Hashable, CustomStringConvertible {
  public var tls: Bool
  public var host: String
  public var port: Int
  /// Path and query, starting with `/`.
  public var target: String

  public static func parse(_ text: String) -> HTTPURL? {
    let tls: Bool
    var rest: Substring
    if text.hasPrefix("http://") {
      tls = false
      rest = text.dropFirst(7)
    } else if text.hasPrefix("https://") {
      tls = true
      rest = text.dropFirst(8)
    } else {
      return nil
    }
    guard !text.contains("#"), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
    let slash = rest.firstIndex(of: "/") ?? rest.firstIndex(of: "?") ?? rest.endIndex
    var authority = rest[..<slash]
    var target = String(rest[slash...])
    if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
    guard !authority.contains("@"), !authority.isEmpty else { return nil }
    var port = tls ? 443 : 80
    var host: Substring
    if authority.hasPrefix("[") {
      guard let close = authority.firstIndex(of: "]") else { return nil }
      host = authority[authority.index(after: authority.startIndex)..<close]
      let after = authority[authority.index(after: close)...]
      if !after.isEmpty {
        guard after.hasPrefix(":"), let p = Int(after.dropFirst()), p > 0, p < 65536 else { return nil }
        port = p
      }
    } else {
      if let colon = authority.lastIndex(of: ":") {
        guard let p = Int(authority[authority.index(after: colon)...]), p > 0, p < 65536 else { return nil }
        port = p
        authority = authority[..<colon]
      }
      host = authority
    }
    guard !host.isEmpty else { return nil }
    rest = ""
    return HTTPURL(tls: tls, host: host.lowercased(), port: port, target: target)
  }

  /// The `Host` header value.
  public var hostHeader: String {
    let h = host.contains(":") ? "[\(host)]" : host
    return (tls && port == 443) || (!tls && port == 80) ? h : "\(h):\(port)"
  }

  public var description: String { (tls ? "https://" : "http://") + hostHeader + target }
}
