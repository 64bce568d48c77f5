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
  public static func append(_ value: Int, width: Int = 1, to out: inout ByteWriter) {
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
    var value = value
    value.withUTF8 { bytes in
      out.append(UInt8(ascii: "\""))
      var plain = true
      for byte in bytes where byte < 0x20 || byte == 0x22 || byte == 0x5C {
        plain = false
        break
      }
      if plain {
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
  }

  @inline(__always) static func hexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
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
