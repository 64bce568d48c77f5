import SluiceCore

/// Route `cors` (Fetch standard, CORS protocol). The gateway answers preflights itself and
/// never forwards them; actual responses get `Access-Control-Allow-Origin` only for allowed
/// origins — the origin is echoed after it matched, never reflected unchecked. Pure.
public struct CORSPolicy: Sendable {
  public enum OriginPattern: Sendable, Hashable {
    case any
    case exact(String)
    /// `https://*.example.com`: scheme, then any non-empty subdomain label chain, then suffix.
    case wildcard(scheme: String, suffix: String)

    public func matches(_ origin: String) -> Bool {
      switch self {
      case .any: return true
      case .exact(let o): return origin.lowercased() == o
      case .wildcard(let scheme, let suffix):
        let lower = origin.lowercased()
        guard lower.hasPrefix(scheme + "://") else { return false }
        let host = lower.dropFirst(scheme.count + 3)
        guard host.hasSuffix(suffix), host.count > suffix.count else { return false }
        let label = host.dropLast(suffix.count)
        return label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
          && !label.hasPrefix(".")
      }
    }
  }

  public var allowOrigins: [OriginPattern] = []
  public var allowMethods: [String] = ["GET", "HEAD", "POST"]
  public var allowHeaders: [String] = []
  public var exposeHeaders: [String] = []
  public var allowCredentials = false
  public var maxAgeSeconds: Int?

  public init() {}

  public func allows(origin: String) -> Bool { allowOrigins.contains { $0.matches(origin) } }

  var anyOrigin: Bool { allowOrigins.contains(.any) }

  /// `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
  public static func isPreflight(method: String, origin: String?, requestMethod: String?) -> Bool {
    method == "OPTIONS" && origin != nil && requestMethod != nil
  }

  /// The preflight answer's headers (status 204). A disallowed origin, method or header gets
  /// a 204 without `Access-Control-Allow-*`, which the browser treats as a refusal.
  public func preflightHeaders(origin: String, requestMethod: String, requestHeaders: String?) -> [HeaderPair] {
    var out = [HeaderPair(name: "vary", value: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")]
    guard allows(origin: origin) else { return out }
    let simple = ["GET", "HEAD", "POST"]
    guard allowMethods.contains(requestMethod) || simple.contains(requestMethod) else { return out }
    if let requestHeaders {
      let asked = requestHeaders.split(separator: ",").map { $0.trimmingASCIIWhitespace().lowercased() }.filter { !$0.isEmpty }
      let allowed = Set(allowHeaders.map { $0.lowercased() })
      if !allowed.contains("*") || allowCredentials {
        for name in asked where !allowed.contains(name) { return out }
      }
    }
    out.append(HeaderPair(name: "access-control-allow-origin", value: anyOrigin && !allowCredentials ? "*" : origin))
    out.append(HeaderPair(name: "access-control-allow-methods", value: allowMethods.joined(separator: ", ")))
    if !allowHeaders.isEmpty {
      out.append(HeaderPair(name: "access-control-allow-headers", value: allowHeaders.joined(separator: ", ")))
    }
    if allowCredentials { out.append(HeaderPair(name: "access-control-allow-credentials", value: "true")) }
    if let maxAgeSeconds { out.append(HeaderPair(name: "access-control-max-age", value: String(maxAgeSeconds))) }
    return out
  }

  /// Headers for an actual (non-preflight) response to a request with `Origin`.
  public func responseHeaders(origin: String) -> [HeaderPair] {
    var out = [HeaderPair(name: "vary", value: "Origin")]
    guard allows(origin: origin) else { return out }
    out.append(HeaderPair(name: "access-control-allow-origin", value: anyOrigin && !allowCredentials ? "*" : origin))
    if allowCredentials { out.append(HeaderPair(name: "access-control-allow-credentials", value: "true")) }
    if !exposeHeaders.isEmpty {
      out.append(HeaderPair(name: "access-control-expose-headers", value: exposeHeaders.joined(separator: ", ")))
    }
    return out
  }
}
