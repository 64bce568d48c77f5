/// Which headers belong to one hop only (RFC 9110 §7.6.1) and must never cross the gateway.
///
/// Sluice removes these, and every header that `Connection` names, in both directions *before*
/// it adds its own identity headers, so `Connection: x-forwarded-for` cannot delete them
/// (SECURITY.md rule 4).
public enum HeaderRules {
  /// Lower-case names that are always hop-by-hop: the reference list that `isHopByHop` (which
  /// dispatches on length for speed) must agree with; a unit test checks they do.
  public static let hopByHop: Set<String> = [
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "http2-settings",
  ]

  /// True for a name that is hop-by-hop on its own (case-insensitive). Runs per header on the
  /// request path, so it dispatches on length and compares bytes without allocating.
  @inlinable public static func isHopByHop(_ name: String) -> Bool {
    switch name.utf8.count {
    case 2: return equalsIgnoringCase(name, "te")
    case 7: return equalsIgnoringCase(name, "upgrade") || equalsIgnoringCase(name, "trailer")
    case 10: return equalsIgnoringCase(name, "connection") || equalsIgnoringCase(name, "keep-alive")
    case 14: return equalsIgnoringCase(name, "http2-settings")
    case 16: return equalsIgnoringCase(name, "proxy-connection")
    case 17: return equalsIgnoringCase(name, "transfer-encoding")
    case 18: return equalsIgnoringCase(name, "proxy-authenticate")
    case 19: return equalsIgnoringCase(name, "proxy-authorization")
    default: return false
    }
  }

  /// ASCII case-insensitive equality of a header name with a lower-case name, without
  /// allocating (`String.lowercased()` allocates for names over 15 bytes).
  @inlinable public static func equalsIgnoringCase(_ name: String, _ lower: String) -> Bool {
    var a = name.utf8.makeIterator()
    var b = lower.utf8.makeIterator()
    while true {
      switch (a.next(), b.next()) {
      case (nil, nil): return true
      case (let x?, let y?):
        let folded = (x >= UInt8(ascii: "A") && x <= UInt8(ascii: "Z")) ? x | 0x20 : x
        if folded != y { return false }
      default: return false
      }
    }
  }

  /// The lower-cased tokens of one or more `Connection` header values.
  public static func connectionTokens<S: Sequence>(_ values: S) -> [String] where S.Element == String {
    var out: [String] = []
    for value in values {
      for token in value.split(separator: ",") {
        let trimmed = token.trimmingASCIIWhitespace().lowercased()
        if !trimmed.isEmpty { out.append(trimmed) }
      }
    }
    return out
  }

  /// True when `value` is a syntactically valid header field value (RFC 9110 §5.5): no CR, LF
  /// or NUL. Used for values the gateway itself writes from config or from claims.
  public static func isValidValue(_ value: String) -> Bool {
    !value.utf8.contains(where: { $0 == 0 || $0 == 0x0A || $0 == 0x0D })
  }

  /// True for an RFC 9110 token (header names, methods).
  public static func isToken(_ value: String) -> Bool {
    !value.isEmpty
      && value.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"):
          return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
      }
  }
}

extension StringProtocol {
  /// Trims spaces and tabs (the only whitespace HTTP allows around values).
  public func trimmingASCIIWhitespace() -> String {
    let bytes = Array(self.utf8)
    var start = 0
    var end = bytes.count
    while start < end && (bytes[start] == 0x20 || bytes[start] == 0x09) { start += 1 }
    while end > start && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
    return String(decoding: bytes[start..<end], as: UTF8.self)
  }
}
