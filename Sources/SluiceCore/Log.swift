import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The control-plane logger: one JSON object per line on stderr (start, reload, drain,
/// errors). Requests are never logged here — they go to the access log (docs/logging.md).
public enum Log {
  public enum Level: Int, Sendable, Comparable, CaseIterable {
    case trace, debug, info, warning, error
    public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    public var name: String { String(describing: self) }
  }

  static let threshold = Atomic<Int>(Level.info.rawValue)

  public static func setLevel(_ level: Level) { threshold.store(level.rawValue, ordering: .relaxed) }

  public static func enabled(_ level: Level) -> Bool { level.rawValue >= threshold.load(ordering: .relaxed) }

  public static func log(_ level: Level, _ message: String, _ fields: [(String, String)] = []) {
    guard enabled(level) else { return }
    var line = "{\"time\":\"" + WallClock.rfc3339(milliseconds: WallClock.nowMilliseconds()) + "\",\"level\":\""
    line += level.name + "\",\"msg\":"
    JSON.appendQuoted(message, to: &line)
    for (key, value) in fields {
      line += ","
      JSON.appendQuoted(key, to: &line)
      line += ":"
      JSON.appendQuoted(value, to: &line)
    }
    line += "}\n"
    line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
  }

  public static func info(_ message: String, _ fields: [(String, String)] = []) { log(.info, message, fields) }
  public static func warning(_ message: String, _ fields: [(String, String)] = []) { log(.warning, message, fields) }
  public static func error(_ message: String, _ fields: [(String, String)] = []) { log(.error, message, fields) }
  public static func debug(_ message: String, _ fields: [(String, String)] = []) { log(.debug, message, fields) }
}
