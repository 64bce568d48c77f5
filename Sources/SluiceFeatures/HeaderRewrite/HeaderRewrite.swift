/// `request_headers` / `response_headers`: names are lower-cased and values checked when the
/// config is compiled, so the data plane only applies them.
public struct HeaderMutation: Sendable, Hashable {
  public var sets: [HeaderPair]
  public var remove: [String]

  public init(set setPairs: [HeaderPair] = [], remove: [String] = []) {
    self.sets = setPairs
    self.remove = remove
  }

  public var isEmpty: Bool { sets.isEmpty && remove.isEmpty }

  /// Whether these edits remove or set `name` (lower-case): the gateway then does not add its
  /// own value for it.
  public func names(_ name: String) -> Bool {
    remove.contains(name) || sets.contains { $0.name == name }
  }
}

/// The gateway's own request headers (`Host`, `X-Forwarded-*`, the request id) that a route's
/// edits remove or set: it then leaves its own value out.
public struct IdentityHeaders: OptionSet, Sendable {
  public let rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }
  public static let host = IdentityHeaders(rawValue: 1)
  public static let xForwardedFor = IdentityHeaders(rawValue: 2)
  public static let xForwardedProto = IdentityHeaders(rawValue: 4)
  public static let xForwardedHost = IdentityHeaders(rawValue: 8)
  public static let requestID = IdentityHeaders(rawValue: 16)
}

/// What a `HeaderMutation` touches, worked out once per config: which identity headers it
/// replaces, and the lengths of the names it removes or sets, so a received header whose name
/// length is not among them is forwarded without comparing names. Asking the mutation itself
/// (`names(_:)`, string compares over both lists) for five identity headers and every received
/// header was ~800 instructions per request with one `set` edit (bench/RESULTS.md).
public struct HeaderEditIndex: Sendable {
  public let identity: IdentityHeaders
  /// Bit n: a name of n bytes (n < 63); bit 63: any longer name.
  public let lengths: UInt64

  public init(_ mutation: HeaderMutation, requestIDHeader: String) {
    var identity: IdentityHeaders = []
    let pairs: [(String, IdentityHeaders)] = [
      ("host", .host), ("x-forwarded-for", .xForwardedFor), ("x-forwarded-proto", .xForwardedProto),
      ("x-forwarded-host", .xForwardedHost), (requestIDHeader, .requestID),
    ]
    for (name, bit) in pairs where mutation.names(name) { identity.insert(bit) }
    self.identity = identity
    var lengths: UInt64 = 0
    for name in mutation.remove + mutation.sets.map(\.name) { lengths |= 1 << UInt64(min(name.utf8.count, 63)) }
    self.lengths = lengths
  }

  /// Whether the edits may name a header of `length` bytes (false: they certainly do not).
  @inline(__always) public func mayName(length: Int) -> Bool { lengths & (1 << UInt64(min(length, 63))) != 0 }
}

public struct HeaderPair: Sendable, Hashable {
  public var name: String
  public var value: String
  public init(name: String, value: String) {
    self.name = name
    self.value = value
  }
}

/// `rewrite:` — path prefix surgery and the upstream `Host`. Applied to the canonical path.
public struct PathRewrite: Sendable, Hashable {
  public var stripPrefix: String?
  public var addPrefix: String?
  public var host: String?

  public init(stripPrefix: String? = nil, addPrefix: String? = nil, host: String? = nil) {
    self.stripPrefix = stripPrefix
    self.addPrefix = addPrefix
    self.host = host
  }

  public var rewritesPath: Bool { stripPrefix != nil || addPrefix != nil }

  /// `strip_prefix: /users` turns `/users/7` into `/7` and `/users` into `/`; then
  /// `add_prefix: /v1` gives `/v1/7` (never a doubled slash).
  public func apply(to path: String) -> String {
    var result = path
    if let strip = stripPrefix, strip != "/", result.hasPrefix(strip) {
      let rest = result.dropFirst(strip.count)
      if rest.isEmpty {
        result = "/"
      } else if rest.first == "/" {
        result = String(rest)
      } else if strip.hasSuffix("/") {
        result = "/" + rest
      }
    }
    if let add = addPrefix, add != "/" {
      if add.hasSuffix("/") {
        result = add + result.dropFirst()
      } else if result == "/" {
        result = add
      } else {
        result = add + result
      }
    }
    return result
  }
}
