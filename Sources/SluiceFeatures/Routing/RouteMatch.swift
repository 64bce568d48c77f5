/// What a route matches on. All given conditions must hold (AND); an absent one matches all.
///
/// Matching runs on the canonical path (see `PathNormalizer`), on the `Host` without its port,
/// lower-cased, and on header names lower-cased at compile time, so nothing is lower-cased per
/// request except the request's own host.
public struct RouteMatch: Sendable {
  public enum Host: Sendable, Hashable, CustomStringConvertible {
    case exact(String)
    /// `*.example.com`: one or more labels before `.example.com` (stored as `.example.com`).
    case wildcard(suffix: String)

    public func matches(_ host: String) -> Bool {
      switch self {
      case .exact(let name): return host == name
      case .wildcard(let suffix): return host.count > suffix.count && host.hasSuffix(suffix)
      }
    }

    public var description: String {
      switch self {
      case .exact(let n): n
      case .wildcard(let s): "*" + s
      }
    }
  }

  public enum Path: Sendable, CustomStringConvertible {
    case exact(String)
    /// Segment-aware: `/users` matches `/users`, `/users/` and `/users/7`, not `/usersX`.
    /// A prefix ending in `/` matches any path that starts with it.
    case prefix(String)
    case regex(PathRegex)

    public func matches(_ path: String) -> Bool {
      switch self {
      case .exact(let p): return path == p
      case .prefix(let p):
        guard path.hasPrefix(p) else { return false }
        if p.hasSuffix("/") || path.utf8.count == p.utf8.count { return true }
        return path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: p.utf8.count)] == UInt8(ascii: "/")
      case .regex(let r): return r.matches(path)
      }
    }

    public var description: String {
      switch self {
      case .exact(let p): "path \(p)"
      case .prefix(let p): "path_prefix \(p)"
      case .regex(let r): "path_regex \(r.source)"
      }
    }
  }

  public var host: Host?
  public var path: Path?
  /// Upper-case method names; nil = any method.
  public var methods: Set<String>?
  /// Lower-case header name and exact value.
  public var headers: [(name: String, value: String)]

  public init(host: Host? = nil, path: Path? = nil, methods: Set<String>? = nil, headers: [(name: String, value: String)] = []) {
    self.host = host
    self.path = path
    self.methods = methods
    self.headers = headers
  }

  /// Why a request does not match, or nil when it does (used by `sluice routes` to explain).
  public func mismatch<H: RouteHeaders>(_ request: RouteRequest<H>) -> String? {
    if let host, !host.matches(request.host) { return "host \(request.host) is not \(host)" }
    if let path, !path.matches(request.path) { return "\(path) does not match \(request.path)" }
    if let methods, !methods.contains(request.method) {
      return "method \(request.method) not in [\(methods.sorted().joined(separator: ", "))]"
    }
    for (name, value) in headers where !request.headers.contains(name, value: value) {
      return "header \(name) is not \"\(value)\""
    }
    return nil
  }

  @inline(__always) public func matches<H: RouteHeaders>(_ request: RouteRequest<H>) -> Bool {
    if let host, !host.matches(request.host) { return false }
    if let path, !path.matches(request.path) { return false }
    if let methods, !methods.contains(request.method) { return false }
    for (name, value) in headers where !request.headers.contains(name, value: value) { return false }
    return true
  }
}

/// A compiled `path_regex`. Search semantics (anchor with `^…$` for a whole-path match), as
/// nginx `location ~` does.
public struct PathRegex: @unchecked Sendable {
  // Regex is immutable once built; matching does not mutate it.
  public let source: String
  let regex: Regex<AnyRegexOutput>

  public init(_ source: String) throws {
    self.source = source
    self.regex = try Regex(source)
  }

  public func matches(_ path: String) -> Bool {
    (try? regex.firstMatch(in: path)) != nil
  }
}

/// Header access for matching, so the data plane can answer from its own header storage
/// without copying it into a dictionary.
public protocol RouteHeaders {
  /// True when a header `name` (lower-case) has exactly `value`.
  func contains(_ name: String, value: String) -> Bool
}

/// A simple header list for tests and the `sluice routes` explain form.
public struct HeaderList: RouteHeaders, Sendable {
  public var pairs: [(String, String)]
  public init(_ pairs: [(String, String)]) { self.pairs = pairs }
  public func contains(_ name: String, value: String) -> Bool {
    pairs.contains { $0.0.lowercased() == name && $0.1 == value }
  }
}

/// The parts of a request routing looks at.
public struct RouteRequest<H: RouteHeaders> {
  public var method: String
  /// Lower-case, without port.
  public var host: String
  /// Canonical path.
  public var path: String
  public var headers: H

  public init(method: String, host: String, path: String, headers: H) {
    self.method = method
    self.host = host
    self.path = path
    self.headers = headers
  }
}

public enum HostName {
  /// Lower-cases a `Host` value and strips its port (`API.example.com:8080` → `api.example.com`).
  public static func canonicalHost(_ raw: String) -> String {
    var host = Substring(raw)
    if host.hasPrefix("[") {
      if let close = host.firstIndex(of: "]") { host = host[...close] }
    } else if let colon = host.lastIndex(of: ":") {
      host = host[..<colon]
    }
    var lowered = false
    for byte in host.utf8 where byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
      lowered = true
      break
    }
    if host.hasSuffix(".") { host = host.dropLast() }
    return lowered ? host.lowercased() : String(host)
  }
}
