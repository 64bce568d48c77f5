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

/// Standard base64 with padding (RFC 4648 §4), for showing binary bytes in JSON.
public enum Base64 {
  public static func encode(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 2 < bytes.count {
      let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
      for shift in [18, 12, 6, 0] { out.append(alphabet[Int((v >> UInt32(shift)) & 63)]) }
      i += 3
    }
    let rest = bytes.count - i
    if rest > 0 {
      var v = UInt32(bytes[i]) << 16
      if rest == 2 { v |= UInt32(bytes[i + 1]) << 8 }
      out.append(alphabet[Int((v >> 18) & 63)])
      out.append(alphabet[Int((v >> 12) & 63)])
      out.append(rest == 2 ? alphabet[Int((v >> 6) & 63)] : UInt8(ascii: "="))
      out.append(UInt8(ascii: "="))
    }
    return String(decoding: out, as: UTF8.self)
  }
}
