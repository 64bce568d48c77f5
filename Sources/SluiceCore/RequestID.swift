/// A request's id: the client's own (when it passed the checks) or 128 random bits shown as
/// 32 lower-case hex digits.
///
/// A generated id is held inline as its 32 digit bytes, not as a `String`: the proxy path
/// copies those bytes into the heads and the log line, and only a log message or an error body
/// makes a `String` of it. As a `String` it was one heap allocation per request (one of the two
/// left once head buffers were recycled; bench/RESULTS.md).
public struct RequestID: Sendable, Equatable {
  public let incoming: String?
  /// A generated id's 32 hex digits, rendered once when it is made: the proxy path writes the
  /// id into both heads, and rendering it per use was 0.4 % of a request's CPU.
  @usableFromInline let digits: (UInt64, UInt64, UInt64, UInt64)

  public init(incoming: String) {
    self.incoming = incoming
    self.digits = (0, 0, 0, 0)
  }

  public init(high: UInt64, low: UInt64) {
    self.incoming = nil
    var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    withUnsafeMutableBytes(of: &digits) { scratch in
      Self.hex(high, into: scratch, at: 0)
      Self.hex(low, into: scratch, at: 16)
    }
    self.digits = digits
  }

  public init(random: inout FastRandom) {
    self.init(high: random.next(), low: random.next())
  }

  /// Calls `body` with the id's UTF-8 bytes.
  @inline(__always) public func withUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
    if var incoming {
      return incoming.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
    return withUnsafeBytes(of: digits) { body($0) }
  }

  /// The id as text.
  public var text: String {
    if let incoming { return incoming }
    return String(unsafeUninitializedCapacity: 32) { buffer in
      withUTF8 { bytes in
        for i in 0..<32 { buffer[i] = bytes[i] }
      }
      return 32
    }
  }

  public static func == (a: RequestID, b: RequestID) -> Bool {
    a.incoming == b.incoming && a.digits == b.digits
  }

  static let hexDigits: StaticString = "0123456789abcdef"

  @inline(__always) static func hex(_ value: UInt64, into scratch: UnsafeMutableRawBufferPointer, at offset: Int) {
    let table = hexDigits.utf8Start
    for i in 0..<16 {
      scratch[offset + i] = table[Int((value >> UInt64(60 - i * 4)) & 0xF)]
    }
  }
}
