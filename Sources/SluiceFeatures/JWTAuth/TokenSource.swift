import SluiceCore

/// Where a provider looks for its credential (`token_from`, API key `header`/`query`).
public enum TokenSource: Sendable, Hashable, CustomStringConvertible {
  /// `header:Authorization` takes the `Bearer` scheme (RFC 6750 §2.1); another header's whole
  /// value is the credential.
  case header(String)
  case query(String)
  case cookie(String)

  public static func parse(_ text: String) -> TokenSource? {
    guard let colon = text.firstIndex(of: ":") else { return nil }
    let kind = text[..<colon]
    let name = String(text[text.index(after: colon)...])
    guard !name.isEmpty else { return nil }
    switch kind {
    case "header": return HeaderRules.isToken(name) ? .header(name.lowercased()) : nil
    case "query": return .query(name)
    case "cookie": return HeaderRules.isToken(name) ? .cookie(name) : nil
    default: return nil
    }
  }

  public var description: String {
    switch self {
    case .header(let n): "header:\(n)"
    case .query(let n): "query:\(n)"
    case .cookie(let n): "cookie:\(n)"
    }
  }
}

/// The request facts credential extraction reads, whatever the protocol (HTTP/1.1 today,
/// HTTP/2 streams next).
public protocol CredentialSource {
  func headerValues(_ lowercasedName: String) -> [String]
  var query: String? { get }
}

public enum Credentials {
  /// The first source that is present, in the provider's order. `nil` when none is.
  public static func extract(_ sources: [TokenSource], from request: some CredentialSource) -> (TokenSource, String)? {
    for source in sources {
      if let value = value(source, from: request) { return (source, value) }
    }
    return nil
  }

  /// `extract`, as bytes: the `Authorization` header's token is copied once, not three times.
  public static func extractBytes(_ sources: [TokenSource], from request: some CredentialSource) -> (TokenSource, [UInt8])? {
    for source in sources {
      if case .header("authorization") = source {
        let values = request.headerValues("authorization")
        guard let first = values.first else { continue }
        if values.count > 1 { return (source, []) }
        if let token = bearerBytes(first) { return (source, token) }
        continue
      }
      if let value = value(source, from: request) { return (source, Array(value.utf8)) }
    }
    return nil
  }

  public static func value(_ source: TokenSource, from request: some CredentialSource) -> String? {
    switch source {
    case .header(let name):
      let values = request.headerValues(name)
      guard let first = values.first else { return nil }
      // Two copies of a credential header are ambiguous: treat as a malformed credential.
      if values.count > 1 { return "" }
      if name == "authorization" { return bearer(first) }
      return first.trimmingASCIIWhitespace()
    case .query(let name):
      guard let query = request.query else { return nil }
      return queryParameter(name, in: query)
    case .cookie(let name):
      for header in request.headerValues("cookie") {
        for part in header.split(separator: ";") {
          let pair = part.trimmingASCIIWhitespace()
          if let eq = pair.firstIndex(of: "="), pair[..<eq] == name {
            var value = pair[pair.index(after: eq)...]
            if value.count >= 2 && value.first == "\"" && value.last == "\"" { value = value.dropFirst().dropLast() }
            return String(value)
          }
        }
      }
      return nil
    }
  }

  /// `Bearer <b64token>` (RFC 6750 §2.1: the scheme is case-insensitive, then one or more
  /// spaces). Another scheme (`Basic …`) is no bearer token: nil. A bearer credential with
  /// bytes outside b64token is present but malformed: "".
  public static func bearer(_ value: String) -> String? {
    bearerBytes(value).map { String(decoding: $0, as: UTF8.self) }
  }

  /// `bearer` as bytes, copied once out of the header value (the hot path of a JWT route).
  /// The token's alphabet is not checked here: a JWT is decoded strictly (base64url) before
  /// it is verified, and a cache hit needs the exact bytes of a verified token.
  public static func bearerBytes(_ value: String) -> [UInt8]? {
    var value = value
    return value.withUTF8 { bytes -> [UInt8]? in
      guard bytes.count > 7,
        bytes[0] | 0x20 == UInt8(ascii: "b"), bytes[1] | 0x20 == UInt8(ascii: "e"), bytes[2] | 0x20 == UInt8(ascii: "a"),
        bytes[3] | 0x20 == UInt8(ascii: "r"), bytes[4] | 0x20 == UInt8(ascii: "e"), bytes[5] | 0x20 == UInt8(ascii: "r"),
        bytes[6] == UInt8(ascii: " ")
      else { return nil }
      var start = 7
      while start < bytes.count && bytes[start] == UInt8(ascii: " ") { start += 1 }
      return Array(bytes[start..<bytes.count])
    }
  }

  /// The value of `name` in a raw query string, percent-decoded; nil when absent.
  public static func queryParameter(_ name: String, in query: String) -> String? {
    for part in query.split(separator: "&", omittingEmptySubsequences: true) {
      let key: Substring
      let value: Substring
      if let eq = part.firstIndex(of: "=") {
        key = part[..<eq]
        value = part[part.index(after: eq)...]
      } else {
        key = part
        value = ""
      }
      if key == name { return percentDecode(value) ?? "" }
    }
    return nil
  }

  /// The query without parameter `name` (a credential that must not reach the upstream).
  public static func removingQueryParameter(_ name: String, from query: String) -> String? {
    let kept = query.split(separator: "&", omittingEmptySubsequences: true).filter { part in
      let key = part.firstIndex(of: "=").map { part[..<$0] } ?? part
      return key != name
    }
    return kept.isEmpty ? nil : kept.joined(separator: "&")
  }

  static func percentDecode(_ text: Substring) -> String? {
    guard text.utf8.contains(UInt8(ascii: "%")) || text.utf8.contains(UInt8(ascii: "+")) else { return String(text) }
    var out: [UInt8] = []
    var it = Array(text.utf8)[...]
    while let b = it.popFirst() {
      if b == UInt8(ascii: "%") {
        guard let h = it.popFirst(), let l = it.popFirst(), let hv = hexValue(h), let lv = hexValue(l) else { return nil }
        out.append(hv << 4 | lv)
      } else if b == UInt8(ascii: "+") {
        out.append(UInt8(ascii: " "))
      } else {
        out.append(b)
      }
    }
    return String(validating: out, as: UTF8.self)
  }

  static func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
