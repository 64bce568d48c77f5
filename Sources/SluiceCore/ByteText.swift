/// Appending text to a `ByteWriter` without `String` work: the access log is written this way
/// on the request path. `String +=` on a growing line cost ~40 appends with uniqueness and
/// UTF-8 flag updates per request; these helpers copy bytes (with the features bench config
/// the log line went from ~9 % of a request's CPU to ~3 %, bench/RESULTS.md).
public enum ByteText {
  @inlinable @inline(__always) public static func append(_ text: StaticString, to out: inout ByteWriter) {
    out.append(text)
  }

  @inlinable @inline(__always) public static func append(_ text: String, to out: inout ByteWriter) {
    // Borrowed in place: `withUTF8` needs a mutable copy (a retain and a release per call).
    if text.utf8.withContiguousStorageIfAvailable({ out.append($0) }) != nil { return }
    var text = text
    text.withUTF8 { out.append($0) }
  }

  /// Decimal digits of `value` (with `-` when negative), at least `width` of them.
  @inlinable @inline(__always) public static func append(_ value: Int, width: Int = 1, to out: inout ByteWriter) {
    // A single digit inline: four of a log line's ten numbers usually are one (`bytes_in`,
    // `retries`, the whole milliseconds of both durations), and a call each cost ~55
    // instructions.
    if value >= 0 && value < 10 && width <= 1 {
      out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
    } else {
      appendDigits(value, width: width, to: &out)
    }
  }

  @usableFromInline static func appendDigits(_ value: Int, width: Int, to out: inout ByteWriter) {
    // A log line's numbers are mostly below 10,000 (status, sizes, millisecond parts): their
    // digits are written directly, without the general path's scratch buffer.
    guard value >= 0 && value < 10_000 && width <= 4 else {
      appendGeneral(value, width: width, to: &out)
      return
    }
    let v = Int(truncatingIfNeeded: value)
    let count = Swift.max(width, v >= 1000 ? 4 : v >= 100 ? 3 : v >= 10 ? 2 : 1)
    // Two digits at a time from a table of "00"…"99": two table loads instead of four
    // divisions and four one-byte appends.
    let high = v / 100
    let low = v - high * 100
    let pairs = twoDigits.utf8Start
    let digits: (UInt8, UInt8, UInt8, UInt8) = (pairs[high * 2], pairs[high * 2 + 1], pairs[low * 2], pairs[low * 2 + 1])
    withUnsafeBytes(of: digits) { out.append(UnsafeRawBufferPointer(rebasing: $0[(4 - count)...])) }
  }

  static var twoDigits: StaticString {
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
  }

  @usableFromInline static func appendGeneral(_ value: Int, width: Int, to out: inout ByteWriter) {
    var magnitude = value.magnitude
    if value < 0 { out.append(UInt8(ascii: "-")) }
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, no allocation
    var count = 0
    withUnsafeMutableBytes(of: &digits) { scratch in
      repeat {
        scratch[23 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
        magnitude /= 10
        count += 1
      } while magnitude > 0 && count < 24
      while count < min(width, 24) {
        scratch[23 - count] = UInt8(ascii: "0")
        count += 1
      }
      out.append(UnsafeRawBufferPointer(rebasing: scratch[(24 - count)...]))
    }
  }

  /// `value` as a JSON string literal (RFC 8259 escaping), the same text as
  /// `JSON.appendQuoted`.
  public static func appendQuoted(_ value: String, to out: inout ByteWriter) {
    // Borrowed in place when contiguous (native strings always are): no mutable copy.
    if value.utf8.withContiguousStorageIfAvailable({ appendQuoted($0, to: &out) }) != nil { return }
    var value = value
    value.withUTF8 { appendQuoted($0, to: &out) }
  }

  static func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout ByteWriter) {
    out.append(UInt8(ascii: "\""))
    if !needsEscape(UnsafeRawBufferPointer(bytes)) {
      out.append(bytes)
    } else {
      for byte in bytes {
        switch byte {
        case 0x22: append("\\\"", to: &out)
        case 0x5C: append("\\\\", to: &out)
        case 0x0A: append("\\n", to: &out)
        case 0x0D: append("\\r", to: &out)
        case 0x09: append("\\t", to: &out)
        case ..<0x20:
          append("\\u00", to: &out)
          out.append(hexDigit(byte >> 4))
          out.append(hexDigit(byte & 0xF))
        default: out.append(byte)
        }
      }
    }
    out.append(UInt8(ascii: "\""))
  }

  /// Whether any byte needs a JSON escape (a control byte, `"` or `\`), eight bytes at a time:
  /// the log line's strings are short and almost never need one.
  @inline(__always) static func needsEscape(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let n = bytes.count
    guard n > 0, let base = bytes.baseAddress else { return false }
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    var i = 0
    while i + 8 <= n {
      let word = (base + i).loadUnaligned(as: UInt64.self)
      let quote = word ^ (ones &* 0x22)
      let backslash = word ^ (ones &* 0x5C)
      let flags =
        ((word &- ones &* 0x20) & ~word) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
      if flags & highs != 0 { return true }
      i += 8
    }
    while i < n {
      let byte = base.load(fromByteOffset: i, as: UInt8.self)
      if byte < 0x20 || byte == 0x22 || byte == 0x5C { return true }
      i += 1
    }
    return false
  }

  @inline(__always) static func hexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
  }

  /// UTC time as RFC 3339 with milliseconds, the date and time of day formatted once per second
  /// (`cache`): a log line per request mostly repeats the previous line's second.
  public static func appendRFC3339(milliseconds: Int64, cache: inout RFC3339Cache, to out: inout ByteWriter) {
    let second = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
    if second != cache.second {
      var scratch = ByteWriter(capacity: 32)
      appendRFC3339(milliseconds: second * 1000, to: &scratch)
      guard scratch.count == 24 else {  // a year outside 0000-9999: no fixed-width prefix
        appendRFC3339(milliseconds: milliseconds, to: &out)
        return
      }
      scratch.withBytes { bytes in
        withUnsafeMutableBytes(of: &cache.prefix) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<20])) }
      }
      cache.second = second
    }
    withUnsafeBytes(of: cache.prefix) { out.append(UnsafeRawBufferPointer(rebasing: $0[0..<20])) }  // "…T10:00:00."
    append(Int(milliseconds - second * 1000), width: 3, to: &out)
    out.append(UInt8(ascii: "Z"))
  }

  /// UTC time as RFC 3339 with milliseconds (`2026-11-26T10:00:00.123Z`), as
  /// `WallClock.rfc3339`.
  public static func appendRFC3339(milliseconds: Int64, to out: inout ByteWriter) {
    let civil = WallClock.civil(milliseconds: milliseconds)
    append(civil.year, width: 4, to: &out)
    out.append(UInt8(ascii: "-"))
    append(civil.month, width: 2, to: &out)
    out.append(UInt8(ascii: "-"))
    append(civil.day, width: 2, to: &out)
    out.append(UInt8(ascii: "T"))
    append(civil.secondOfDay / 3600, width: 2, to: &out)
    out.append(UInt8(ascii: ":"))
    append(civil.secondOfDay % 3600 / 60, width: 2, to: &out)
    out.append(UInt8(ascii: ":"))
    append(civil.secondOfDay % 60, width: 2, to: &out)
    out.append(UInt8(ascii: "."))
    append(civil.millisecond, width: 3, to: &out)
    out.append(UInt8(ascii: "Z"))
  }
}

/// A string held as its JSON literal, quoted and escaped once. Names from the config (route,
/// backend, endpoint), a connection's client address and the common methods are written into
/// every access log line: quoting each per request cost ~150 instructions (escape scan, quotes,
/// `String` storage checks), copying the finished literal is a few word moves.
public struct JSONString: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
  /// The literal with its quotes (`"users"`).
  public let quoted: [UInt8]

  public init(_ value: String) {
    var writer = ByteWriter(capacity: value.utf8.count + 2)
    ByteText.appendQuoted(value, to: &writer)
    quoted = writer.bytes
  }

  public init(stringLiteral value: String) { self.init(value) }

  public var description: String { String(decoding: quoted, as: UTF8.self) }

  public static let empty: JSONString = ""
  public static let http10: JSONString = "HTTP/1.0"
  public static let http11: JSONString = "HTTP/1.1"
  public static let http10TLS12: JSONString = "HTTP/1.0+TLSv1.2"
  public static let http10TLS13: JSONString = "HTTP/1.0+TLSv1.3"
  public static let http11TLS12: JSONString = "HTTP/1.1+TLSv1.2"
  public static let http11TLS13: JSONString = "HTTP/1.1+TLSv1.3"
  /// A tls_passthrough connection (the gateway did not read the TLS inside).
  public static let tlsPassthrough: JSONString = "TLS"
  public static let websocket: JSONString = "HTTP/1.1 websocket"
  static let get: JSONString = "GET"
  static let head: JSONString = "HEAD"
  static let post: JSONString = "POST"
  static let put: JSONString = "PUT"
  static let delete: JSONString = "DELETE"
  static let patch: JSONString = "PATCH"
  static let options: JSONString = "OPTIONS"

  /// A request method, from the shared literals when it is a common one (no allocation).
  public static func method(_ method: String) -> JSONString {
    switch method {
    case "GET": get
    case "POST": post
    case "HEAD": head
    case "PUT": put
    case "DELETE": delete
    case "PATCH": patch
    case "OPTIONS": options
    default: JSONString(method)
    }
  }
}

extension ByteText {
  @inlinable @inline(__always) public static func append(_ text: JSONString, to out: inout ByteWriter) {
    text.quoted.withUnsafeBytes { out.append($0) }
  }
}

/// The last second `ByteText.appendRFC3339(milliseconds:cache:to:)` formatted, and its first 20
/// bytes (`2026-11-26T10:00:00.`). Owned by one writer (a loop's access log buffer).
public struct RFC3339Cache: Sendable {
  @usableFromInline var second: Int64 = .min
  @usableFromInline var prefix: (UInt64, UInt64, UInt64) = (0, 0, 0)

  public init() {}
}
