import NIOCore
import SluiceCore
import SluiceFeatures

/// Where one header line's name and value sit in a head's bytes (offsets from the head's
/// first byte). Four 32-bit offsets instead of two `String`s: most headers are copied to the
/// other side byte for byte and never need to become strings.
struct HeaderField: Sendable {
  var nameStart: Int32
  var nameLength: Int32
  var valueStart: Int32
  var valueLength: Int32
  /// Just past the line's CRLF.
  var lineEnd: Int32
}

/// Copies kept header lines to an outgoing head as received, joining lines that sit next to
/// each other in the incoming head into one copy (most heads keep most lines: one or two
/// `writeBytes` instead of four per header).
struct LineCopier {
  private var start = -1
  private var end = -1

  @inline(__always) mutating func keep(_ field: HeaderField, raw: UnsafeRawBufferPointer, to buffer: inout ByteWriter) {
    let lineStart = Int(field.nameStart)
    if lineStart == end {
      end = Int(field.lineEnd)
    } else {
      flush(raw: raw, to: &buffer)
      start = lineStart
      end = Int(field.lineEnd)
    }
  }

  /// Writes what is pending; call before writing anything else to `buffer`.
  @inline(__always) mutating func flush(raw: UnsafeRawBufferPointer, to buffer: inout ByteWriter) {
    guard start >= 0, let base = raw.baseAddress else { return }
    buffer.append(UnsafeRawBufferPointer(start: base + start, count: end - start))
    start = -1
    end = -1
  }
}

/// The header section of a parsed head: the head's bytes (a slice of the read buffer, not a
/// copy) and the position of each field. Lookups compare bytes case-insensitively and only
/// create a `String` for a value that is asked for.
struct HeadFields: Sendable {
  var bytes: ByteBuffer
  var fields: [HeaderField]

  init(bytes: ByteBuffer, fields: [HeaderField]) {
    self.bytes = bytes
    self.fields = fields
  }

  init() {
    self.bytes = ByteBuffer()
    self.fields = []
  }

  var count: Int { fields.count }

  func name(_ index: Int) -> String {
    let field = fields[index]
    return bytes.getString(at: bytes.readerIndex + Int(field.nameStart), length: Int(field.nameLength)) ?? ""
  }

  func value(_ index: Int) -> String {
    let field = fields[index]
    return bytes.getString(at: bytes.readerIndex + Int(field.valueStart), length: Int(field.valueLength)) ?? ""
  }

  /// True when field `index`'s name is `lower` (a lower-case name), ignoring case.
  func nameIs(_ index: Int, _ lower: String) -> Bool {
    let field = fields[index]
    return withRaw { raw in HTTP1Bytes.equalsLower(raw, Int(field.nameStart), Int(field.nameLength), lower) }
  }

  /// The first value of `lower`, if any.
  func first(_ lower: String) -> String? {
    guard let index = firstIndex(lower) else { return nil }
    return value(index)
  }

  func firstIndex(_ lower: String) -> Int? {
    withRaw { raw in
      for (index, field) in fields.enumerated()
      where HTTP1Bytes.equalsLower(raw, Int(field.nameStart), Int(field.nameLength), lower) {
        return index
      }
      return nil
    }
  }

  /// Every value of `lower`, in order.
  func values(_ lower: String) -> [String] {
    var out: [String] = []
    for index in fields.indices where nameIs(index, lower) { out.append(value(index)) }
    return out
  }

  /// The head's bytes for the duration of `body` (no copy).
  @inline(__always) func withRaw<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try bytes.withUnsafeReadableBytes(body)
  }

  /// The lower-cased tokens of every `Connection` field.
  func connectionTokens() -> [String] {
    HeaderRules.connectionTokens(values("connection"))
  }
}

extension HeadFields: RouteHeaders {
  func contains(_ name: String, value: String) -> Bool {
    values(name).contains(value)
  }
}

/// Byte-level helpers shared by the parsers and the handlers.
enum HTTP1Bytes {
  /// RFC 9110 `tchar`, as a 128-bit set (one shift and mask instead of a chain of range
  /// compares: header names are the parser's most-visited bytes).
  @inline(__always) static func isTokenByte(_ byte: UInt8) -> Bool {
    let low: UInt64 = 0x03FF_6CFA_0000_0000  // `!#$%&'*+-.` and digits (bytes 0-63)
    let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // letters, `^_`|~` (bytes 64-127)
    if byte < 64 { return (low >> UInt64(byte)) & 1 != 0 }
    if byte < 128 { return (high >> UInt64(byte &- 64)) & 1 != 0 }
    return false
  }

  /// A byte allowed inside a field value (RFC 9110 §5.5: VCHAR, obs-text, SP, HTAB).
  @inline(__always) static func isValueByte(_ byte: UInt8) -> Bool {
    byte >= 0x20 ? byte != 0x7F : byte == 0x09
  }

  /// A mask with the high bit set in the byte of `word` that is below 0x20 (a control byte;
  /// HTAB too, which the caller allows) or is DEL, for the first such byte and possibly
  /// later ones; zero when there is none. `word` is little-endian (first byte lowest). The
  /// borrow tricks (`hasless`, `haszero`) may flag a harmless byte only *above* a real one,
  /// so the lowest flag is exact.
  @inline(__always) static func controlOrDELMask(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    let below20 = (word &- ones &* 0x20) & ~word & highs
    let del = word ^ (ones &* 0x7F)
    let isDEL = (del &- ones) & ~del & highs
    return below20 | isDEL
  }

  /// A mask with the high bit set in each byte of `word` (little-endian) that is not an ASCII
  /// letter, digit or `-`: the bytes nearly every header name is made of, checked eight at a
  /// time (one at a time, names were most of the parser's work). Exact for every byte: the
  /// sums run on 7-bit values, so no carry crosses into the next byte; bytes ≥ 0x80 are flagged.
  @inline(__always) static func nonNameCharMask(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    let x = word & ~highs
    let folded = x | (ones &* 0x20)  // A-Z onto a-z (and nothing else into a-z)
    // `v + (0x80 - lo)` has its high bit set exactly when v ≥ lo
    let letter = (folded &+ ones &* (0x80 - 0x61)) & ~(folded &+ ones &* (0x80 - 0x7B))
    let digit = (x &+ ones &* (0x80 - 0x30)) & ~(x &+ ones &* (0x80 - 0x3A))
    let d = x ^ (ones &* 0x2D)
    let dash = ~(d &+ ones &* 0x7F)  // high bit set exactly when d == 0
    return (~(letter | digit | dash) | word) & highs
  }

  @inline(__always) static func lower(_ byte: UInt8) -> UInt8 {
    (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
  }

  /// `raw[start..<start+length]` equals the lower-case ASCII `lower`, ignoring case.
  @inline(__always) static func equalsLower(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ lower: String)
    -> Bool
  {
    var lower = lower
    guard lower.utf8.count == length else { return false }
    return lower.withUTF8 { target in
      for i in 0..<length where Self.lower(raw[start + i]) != target[i] { return false }
      return true
    }
  }

  /// `raw[start..<start+length]` equals `lower` ignoring case, `lower` given as a static string.
  @inline(__always) static func equalsLower(
    _ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ lower: StaticString
  ) -> Bool {
    HeaderRules.equalsLower(raw, start, length, lower)
  }

  /// `raw[start..<start+length]` with spaces and tabs trimmed, equals `lower` ignoring case.
  static func trimmedEqualsLower(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ lower: StaticString) -> Bool {
    var s = start
    var e = start + length
    while s < e && (raw[s] == 0x20 || raw[s] == 0x09) { s += 1 }
    while e > s && (raw[e - 1] == 0x20 || raw[e - 1] == 0x09) { e -= 1 }
    return equalsLower(raw, s, e - s, lower)
  }

  /// The last item of a comma-separated list, trimmed, compared with `token`.
  static func lastItemIs(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ token: StaticString) -> Bool {
    var i = start + length
    while i > start && raw[i - 1] != UInt8(ascii: ",") { i -= 1 }
    return trimmedEqualsLower(raw, i, start + length - i, token)
  }

  /// A decimal `Content-Length`: digits only, at most 18 of them (no overflow).
  static func parseLength(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Int? {
    guard length > 0 && length <= 18 else { return nil }
    var value = 0
    for i in start..<(start + length) {
      let byte = raw[i]
      guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
      value = value * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return value
  }
}
