/// A span of time from the config (`250ms`, `2s`, `1m`, `1h`), kept as nanoseconds so that the
/// data plane can turn it into a timer without Foundation.
public struct ConfigDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
  public var nanoseconds: Int64

  public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
  public static func milliseconds(_ ms: Int64) -> ConfigDuration { .init(nanoseconds: ms * 1_000_000) }
  public static func seconds(_ s: Int64) -> ConfigDuration { .init(nanoseconds: s * 1_000_000_000) }

  public var milliseconds: Int64 { nanoseconds / 1_000_000 }

  public static func < (a: ConfigDuration, b: ConfigDuration) -> Bool { a.nanoseconds < b.nanoseconds }

  /// Parses `<integer><unit>` with unit `us`, `ms`, `s`, `m` or `h`. Returns nil for anything
  /// else (no unit, negative, fractional, overflow), so the caller can report the value.
  public static func parse(_ text: String) -> ConfigDuration? {
    let units: [(String, Int64)] = [
      ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000),
      ("h", 3_600_000_000_000),
    ]
    let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
    guard !digits.isEmpty, digits.count <= 12, let value = Int64(digits) else { return nil }
    let unit = text.dropFirst(digits.count)
    for (name, factor) in units where unit == name {
      let (product, overflow) = value.multipliedReportingOverflow(by: factor)
      return overflow ? nil : ConfigDuration(nanoseconds: product)
    }
    return nil
  }

  public var description: String {
    let ns = nanoseconds
    if ns == 0 { return "0s" }
    if ns % 3_600_000_000_000 == 0 { return "\(ns / 3_600_000_000_000)h" }
    if ns % 60_000_000_000 == 0 { return "\(ns / 60_000_000_000)m" }
    if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
    if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
    return "\(ns / 1_000)us"
  }
}

/// A byte count from the config (`512B`, `32KiB`, `10MiB`, `1GiB`); a bare integer means bytes.
public struct ByteSize: Sendable, Hashable, Comparable, CustomStringConvertible {
  public var bytes: Int

  public init(bytes: Int) { self.bytes = bytes }
  public static func < (a: ByteSize, b: ByteSize) -> Bool { a.bytes < b.bytes }

  public static func parse(_ text: String) -> ByteSize? {
    let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
    guard !digits.isEmpty, digits.count <= 15, let value = Int(digits) else { return nil }
    let factor: Int
    switch text.dropFirst(digits.count) {
    case "", "B": factor = 1
    case "KiB": factor = 1024
    case "MiB": factor = 1024 * 1024
    case "GiB": factor = 1024 * 1024 * 1024
    default: return nil
    }
    let (product, overflow) = value.multipliedReportingOverflow(by: factor)
    return overflow ? nil : ByteSize(bytes: product)
  }

  public var description: String {
    if bytes != 0 && bytes % (1024 * 1024 * 1024) == 0 { return "\(bytes / (1024 * 1024 * 1024))GiB" }
    if bytes != 0 && bytes % (1024 * 1024) == 0 { return "\(bytes / (1024 * 1024))MiB" }
    if bytes != 0 && bytes % 1024 == 0 { return "\(bytes / 1024)KiB" }
    return "\(bytes)B"
  }
}
