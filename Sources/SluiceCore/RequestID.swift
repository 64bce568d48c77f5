/// A request's id: the client's own (when it passed the checks) or 128 random bits shown as
/// 32 lower-case hex digits.
///
/// A generated id stays two integers until text is needed: the proxy path writes it into the
/// heads as bytes, and only an access log line, a log message or an error body makes
/// characters of it. As a `String` it was one heap allocation per request (one of the two left
/// once head buffers were recycled; bench/RESULTS.md).
public struct RequestID: Sendable, Equatable {
  public let incoming: String?
  public let high: UInt64
  public let low: UInt64

  public init(incoming: String) {
    self.incoming = incoming
    self.high = 0
    self.low = 0
  }

  public init(high: UInt64, low: UInt64) {
    self.incoming = nil
    self.high = high
    self.low = low
  }

  public init(random: inout FastRandom) {
    self.init(high: random.next(), low: random.next())
  }

  /// Calls `body` with the id's UTF-8 bytes (stack scratch for a generated id).
  @inline(__always) public func withUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
    if var incoming {
      return incoming.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
    var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    return withUnsafeMutableBytes(of: &digits) { scratch in
      Self.hex(high, into: scratch, at: 0)
      Self.hex(low, into: scratch, at: 16)
      return body(UnsafeRawBufferPointer(scratch))
    }
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

  @inline(__always) static func hex(_ value: UInt64, into scratch: UnsafeMutableRawBufferPointer, at offset: Int) {
    for i in 0..<16 {
      let nibble = UInt8((value >> UInt64(60 - i * 4)) & 0xF)
      scratch[offset + i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
  }
}
