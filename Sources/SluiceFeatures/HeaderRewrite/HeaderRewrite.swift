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
