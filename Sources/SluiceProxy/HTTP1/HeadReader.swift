import NIOCore

/// Takes one complete head off the front of incoming bytes. In the common case the head is in
/// one read and comes out as a slice of that read's buffer; a head split over reads is gathered
/// in `partial` (bounded by the caller's limit) and scanned only once.
struct HeadReader: Sendable {
  enum Outcome {
    case head(ByteBuffer)
    case incomplete
    case bareLF
    /// The start of a request line is already impossible (not a method token): binary
    /// garbage or TLS sent to a plain-text port is answered at once, not after a timeout.
    case notHTTP
    /// More than `limit` bytes without the end of a head. `sawLineEnd` tells whether the
    /// first line (request line or status line) was complete.
    case tooLarge(sawLineEnd: Bool)
  }

  private var scanner = HeadScanner()
  private var partial: ByteBuffer?
  /// Reading requests: skip empty lines before a head (RFC 9112 §2.2; some clients send CRLF
  /// after a body) and check the method of an incomplete head.
  let requests: Bool

  init(requests: Bool) { self.requests = requests }

  mutating func take(_ buffer: inout ByteBuffer, limit: Int) -> Outcome {
    if var gathered = partial {
      partial = nil
      gathered.writeBuffer(&buffer)
      buffer = gathered
    }
    if requests && scanner.scanned == 0 {
      while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
        buffer.moveReaderIndex(forwardBy: 2)
      }
    }
    guard buffer.readableBytes > 0 else { return .incomplete }
    let outcome = buffer.withUnsafeReadableBytes { raw in scanner.scan(raw) }
    switch outcome {
    case .complete(let length):
      return .head(buffer.readSlice(length: length)!)
    case .bareLF:
      scanner.reset()
      return .bareLF
    case .incomplete:
      if requests && !Self.plausibleMethod(buffer) {
        scanner.reset()
        return .notHTTP
      }
      if buffer.readableBytes > limit {
        scanner.reset()
        return .tooLarge(sawLineEnd: buffer.readableBytesView.contains(0x0A))
      }
      partial = buffer.readSlice(length: buffer.readableBytes)
      return .incomplete
    }
  }

  /// The bytes so far start with a method token (at most 32 bytes) and, if it has ended, a space.
  static func plausibleMethod(_ buffer: ByteBuffer) -> Bool {
    buffer.withUnsafeReadableBytes { raw in
      // A CR of an empty line before the head may arrive alone.
      var start = 0
      while start < raw.count && raw[start] == 0x0D { start += 1 }
      for i in start..<min(raw.count, start + 33) {
        if raw[i] == UInt8(ascii: " ") { return i > start }
        if !HTTP1Bytes.isTokenByte(raw[i]) { return false }
      }
      return raw.count - start <= 32
    }
  }

  mutating func reset() {
    scanner.reset()
    partial = nil
  }
}
