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

  /// True for a name that is hop-by-hop on its own (case-insensitive). Config checks use this;
  /// the proxy path uses the byte form below on header names it never turns into strings.
  public static func isHopByHop(_ name: String) -> Bool {
    var name = name
    return name.withUTF8 { isHopByHop(UnsafeRawBufferPointer($0), 0, $0.count) }
  }

  /// `raw[start..<start+length]` is a hop-by-hop name. Runs per header on the request path,
  /// so it dispatches on length and compares bytes without allocating.
  @inlinable public static func isHopByHop(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Bool {
    let s = start
    let n = length
    switch n {
    case 2: return equalsLower(raw, s, n, "te")
    case 7: return equalsLower(raw, s, n, "upgrade") || equalsLower(raw, s, n, "trailer")
    case 10: return equalsLower(raw, s, n, "connection") || equalsLower(raw, s, n, "keep-alive")
    case 14: return equalsLower(raw, s, n, "http2-settings")
    case 16: return equalsLower(raw, s, n, "proxy-connection")
    case 17: return equalsLower(raw, s, n, "transfer-encoding")
    case 18: return equalsLower(raw, s, n, "proxy-authenticate")
    case 19: return equalsLower(raw, s, n, "proxy-authorization")
    default: return false
    }
  }

  /// `raw[start..<start+length]` equals the lower-case ASCII `lower`, ignoring case.
  @inlinable @inline(__always) public static func equalsLower(
    _ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ lower: StaticString
  ) -> Bool {
    guard lower.utf8CodeUnitCount == length else { return false }
    let target = lower.utf8Start
    for i in 0..<length {
      let byte = raw[start + i]
      let folded = (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
      if folded != target[i] { return false }
    }
    return true
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
