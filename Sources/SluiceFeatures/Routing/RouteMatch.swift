import Atomics
import SluiceCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

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
      case .wildcard(let suffix):
        let h = host.utf8
        let s = suffix.utf8
        return h.count > s.count && h.reversed().starts(with: s.reversed())
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
        // Byte comparison: canonical paths are ASCII, and `String.hasPrefix` pays for Unicode
        // equivalence (about 5 µs per request over 50 routes, bench/RESULTS.md).
        let bytes = path.utf8
        guard bytes.starts(with: p.utf8) else { return false }
        if p.utf8.last == UInt8(ascii: "/") || bytes.count == p.utf8.count { return true }
        return bytes[bytes.index(bytes.startIndex, offsetBy: p.utf8.count)] == UInt8(ascii: "/")
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
  /// The TLS server name (SNI) of an https or tls_passthrough listener's connection.
  public var serverName: Host?
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
    if let serverName, !serverName.matches(request.serverName ?? "") {
      return "server name \(request.serverName ?? "(none)") is not \(serverName)"
    }
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
    if let serverName, !serverName.matches(request.serverName ?? "") { return false }
    if let path, !path.matches(request.path) { return false }
    if let methods, !methods.contains(request.method) { return false }
    for (name, value) in headers where !request.headers.contains(name, value: value) { return false }
    return true
  }
}

/// A compiled `path_regex`: a POSIX extended regular expression (as `grep -E`), with the
/// shorthands `\d \w \s` (and `\D \W \S`) accepted. Search semantics: anchor with `^…$` for
/// a whole-path match, as nginx `location ~` does.
///
/// Why not Swift `Regex`: it cost ~15 % of a request's CPU on a route table whose last route
/// was a regex (bench/RESULTS.md); glibc's `regexec` is an order of magnitude cheaper. glibc
/// serialises `regexec` calls on one compiled pattern with a lock, so each event-loop thread
/// gets its own compiled copy (`ThreadSlot`): no lock is shared across loops.
public final class PathRegex: @unchecked Sendable {
  // Safe: slot i is only ever read or written by the thread whose ThreadSlot is i; the
  // overflow pattern (threads beyond `slots`) is guarded by `overflowLock`.
  public let source: String
  let pattern: String
  static let slotCount = 64
  let slots: UnsafeMutablePointer<UnsafeMutablePointer<regex_t>?>
  let overflow: UnsafeMutablePointer<regex_t>
  let overflowLock = Mutex()

  public struct Invalid: Error, Sendable {}

  public init(_ source: String) throws {
    let pattern = Self.translate(source)
    var compiled = regex_t()
    // Validate before any stored property is set: a throwing init then runs no deinit.
    guard regcomp(&compiled, pattern, REG_EXTENDED | REG_NOSUB) == 0 else { throw Invalid() }
    self.source = source
    self.pattern = pattern
    overflow = .allocate(capacity: 1)
    overflow.initialize(to: compiled)
    slots = .allocate(capacity: Self.slotCount)
    slots.initialize(repeating: nil, count: Self.slotCount)
  }

  deinit {
    for i in 0..<Self.slotCount {
      if let compiled = slots[i] {
        regfree(compiled)
        compiled.deallocate()
      }
    }
    slots.deallocate()
    regfree(overflow)
    overflow.deallocate()
  }

  public func matches(_ path: String) -> Bool {
    var path = path
    return path.withUTF8 { matches(bytes: $0) }
  }

  /// The path's bytes need not end in NUL: glibc is given their range (`REG_STARTEND`).
  public func matches(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    let slot = ThreadSlot.current
    guard slot < Self.slotCount else {
      return overflowLock.withLock { Self.exec(overflow, bytes) }
    }
    let compiled: UnsafeMutablePointer<regex_t>
    if let existing = slots[slot] {
      compiled = existing
    } else {
      compiled = .allocate(capacity: 1)
      guard regcomp(compiled, pattern, REG_EXTENDED | REG_NOSUB) == 0 else {
        compiled.deallocate()
        return false
      }
      slots[slot] = compiled
    }
    return Self.exec(compiled, bytes)
  }

  static func exec(_ compiled: UnsafeMutablePointer<regex_t>, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    #if canImport(Glibc)
      var range = regmatch_t(rm_so: 0, rm_eo: regoff_t(bytes.count))
      guard let base = bytes.baseAddress else { return regexec(compiled, "", 0, nil, 0) == 0 }
      return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
        regexec(compiled, $0, 1, &range, REG_STARTEND) == 0
      }
    #else
      return String(decoding: bytes, as: UTF8.self).withCString { regexec(compiled, $0, 0, nil, 0) == 0 }
    #endif
  }

  /// `\d` → `[0-9]`, `\w` → `[A-Za-z0-9_]`, `\s` → `[[:space:]]` (and negations); other
  /// escapes are kept for regcomp to judge.
  static func translate(_ source: String) -> String {
    var out = ""
    var escaped = false
    for c in source {
      if escaped {
        escaped = false
        switch c {
        case "d": out += "[0-9]"
        case "D": out += "[^0-9]"
        case "w": out += "[A-Za-z0-9_]"
        case "W": out += "[^A-Za-z0-9_]"
        case "s": out += "[[:space:]]"
        case "S": out += "[^[:space:]]"
        default: out += "\\" + String(c)
        }
      } else if c == "\\" {
        escaped = true
      } else {
        out.append(c)
      }
    }
    if escaped { out += "\\" }
    return out
  }
}

/// A small per-thread number (0, 1, 2, … in order of first use), for per-thread copies of
/// state that must not be shared between event loops.
public enum ThreadSlot {
  static let key: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
  }()
  static let next = ManagedAtomic<Int>(0)

  public static var current: Int {
    if let value = pthread_getspecific(key) { return Int(bitPattern: value) - 1 }
    let slot = next.loadThenWrappingIncrement(ordering: .relaxed)
    pthread_setspecific(key, UnsafeRawPointer(bitPattern: slot + 1))
    return slot
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
  /// SNI of the connection (lower-case), for `match.server_name`.
  public var serverName: String?

  public init(method: String, host: String, path: String, headers: H, serverName: String? = nil) {
    self.serverName = serverName
    self.method = method
    self.host = host
    self.path = path
    self.headers = headers
  }
}

public enum HostName {
  /// Lower-cases a `Host` value and strips its port (`API.example.com:8080` → `api.example.com`).
  /// Works on contiguous UTF-8 bytes: `Character` operations (grapheme breaking) and then
  /// `String.UTF8View` index walks here were 0.6 % and then 0.2 % of a request's CPU. ASCII
  /// letters only are lower-cased (a request's `Host` is checked to be ASCII first). A host
  /// that needs no change is returned as is, without a copy.
  public static func canonicalHost(_ raw: String) -> String {
    var raw = raw
    return raw.withUTF8 { bytes -> String? in
      let count = bytes.count
      var end = count
      if count > 0 && bytes[0] == UInt8(ascii: "[") {
        var i = 0
        while i < count && bytes[i] != UInt8(ascii: "]") { i += 1 }
        if i < count { end = i + 1 }
      } else {
        var i = count
        while i > 0 && bytes[i - 1] != UInt8(ascii: ":") { i -= 1 }
        if i > 0 { end = i - 1 }
      }
      if end > 0 && bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
      var upper = false
      for i in 0..<end where bytes[i] >= UInt8(ascii: "A") && bytes[i] <= UInt8(ascii: "Z") {
        upper = true
        break
      }
      if !upper && end == count { return nil }
      return String(unsafeUninitializedCapacity: end) { out in
        for i in 0..<end {
          let byte = bytes[i]
          out[i] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
        }
        return end
      }
    } ?? raw
  }
}
