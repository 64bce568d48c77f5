import NIOCore

/// Takes a message body off the bytes that follow a head, in pieces as they arrive: a fixed
/// length, chunked coding (RFC 9112 §7.1: sizes checked, extensions ignored, trailers kept as
/// raw lines), or everything until the connection closes. Data comes out as slices of the read
/// buffer, never copied. A pure state machine; fuzzed with the head parser.
struct BodyDecoder: Sendable {
  enum Event: Equatable {
    case data(ByteBuffer)
    /// The body is complete. `trailers` holds the trailer lines (each ending in CRLF, without
    /// the final empty line) when a chunked body had any.
    case end(trailers: ByteBuffer?)
  }

  enum Failure: Error, Equatable {
    case invalidChunkSize
    case invalidChunkFraming
    case trailersTooLarge
    case invalidTrailer(String)
  }

  enum State: Equatable {
    case length(remaining: Int)
    /// `lineBytes` counts the size line so far: chunk extensions are capped at
    /// `maxChunkLineBytes` (their bytes are never stored, but an endless one must not pass).
    case chunkSize(value: Int, digits: Int, inExtension: Bool, sawCR: Bool, lineBytes: Int)
    case chunkData(remaining: Int)
    case chunkDataCR
    case chunkDataLF
    /// After `0\r\n`: trailer lines until an empty one.
    case trailers(lineStart: Int)
    case untilClose
    /// The body is complete; the next call reports `.end`.
    case ending
    case done
  }

  private(set) var state: State
  static let maxChunkLineBytes = 4096
  /// Trailer bytes gathered so far (chunked bodies only).
  private var trailerBytes = ByteBuffer()
  let maxTrailerBytes: Int

  init(_ framing: BodyFraming, maxTrailerBytes: Int = 16384) {
    self.maxTrailerBytes = maxTrailerBytes
    switch framing {
    case .none, .length(0): state = .ending
    case .length(let n): state = .length(remaining: n)
    case .chunked: state = .chunkSize(value: 0, digits: 0, inExtension: false, sawCR: false, lineBytes: 0)
    case .untilClose: state = .untilClose
    }
  }

  /// A decoder with no body to read (a connection waiting for its next head).
  init() {
    self.maxTrailerBytes = 16384
    state = .done
  }

  /// True once `.end` has been returned.
  var isDone: Bool { state == .done }

  /// The next event from `buffer` (consuming only what it uses), or nil when more bytes are
  /// needed. After `.end`, what is left in `buffer` belongs to the next message.
  mutating func next(_ buffer: inout ByteBuffer) throws(Failure) -> Event? {
    while true {
      switch state {
      case .done:
        return nil
      case .ending:
        state = .done
        let trailers = trailerBytes.readableBytes > 0 ? trailerBytes : nil
        trailerBytes = ByteBuffer()
        return .end(trailers: trailers)
      case .untilClose:
        guard buffer.readableBytes > 0, let slice = buffer.readSlice(length: buffer.readableBytes) else { return nil }
        return .data(slice)
      case .length(let remaining):
        let take = min(remaining, buffer.readableBytes)
        guard take > 0, let slice = buffer.readSlice(length: take) else { return nil }
        state = take == remaining ? .ending : .length(remaining: remaining - take)
        return .data(slice)
      case .chunkData(let remaining):
        let take = min(remaining, buffer.readableBytes)
        guard take > 0, let slice = buffer.readSlice(length: take) else { return nil }
        state = take == remaining ? .chunkDataCR : .chunkData(remaining: remaining - take)
        return .data(slice)
      case .chunkDataCR:
        guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
        guard byte == 0x0D else { throw .invalidChunkFraming }
        state = .chunkDataLF
      case .chunkDataLF:
        guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
        guard byte == 0x0A else { throw .invalidChunkFraming }
        state = .chunkSize(value: 0, digits: 0, inExtension: false, sawCR: false, lineBytes: 0)
      case .chunkSize(var value, var digits, var inExtension, var sawCR, var lineBytes):
        var complete = false
        while !complete {
          guard let byte = buffer.readInteger(as: UInt8.self) else {
            state = .chunkSize(value: value, digits: digits, inExtension: inExtension, sawCR: sawCR, lineBytes: lineBytes)
            return nil
          }
          lineBytes += 1
          guard lineBytes <= Self.maxChunkLineBytes else { throw .invalidChunkSize }
          if sawCR {
            guard byte == 0x0A, digits > 0 else { throw .invalidChunkSize }
            complete = true
          } else if byte == 0x0D {
            sawCR = true
          } else if inExtension {
            // chunk-ext (`;name[=value]`): its bytes are checked, its meaning ignored.
            guard HTTP1Bytes.isValueByte(byte) else { throw .invalidChunkSize }
          } else if byte == UInt8(ascii: ";") || byte == 0x20 || byte == 0x09 {
            guard digits > 0 else { throw .invalidChunkSize }
            inExtension = true
          } else {
            // At most 15 hex digits: a size can never overflow.
            guard let digit = Self.hexValue(byte), digits < 15 else { throw .invalidChunkSize }
            value = value << 4 | digit
            digits += 1
          }
        }
        state = value == 0 ? .trailers(lineStart: 0) : .chunkData(remaining: value)
      case .trailers(var lineStart):
        // Trailers are rare and small: byte by byte into `trailerBytes`, a line checked as it ends.
        while let byte = buffer.readInteger(as: UInt8.self) {
          guard trailerBytes.readableBytes < maxTrailerBytes else { throw .trailersTooLarge }
          trailerBytes.writeInteger(byte)
          guard byte == 0x0A else { continue }
          let end = trailerBytes.writerIndex
          let lineLength = end - lineStart
          guard lineLength >= 2, trailerBytes.getInteger(at: end - 2, as: UInt8.self) == 0x0D else {
            throw .invalidChunkFraming
          }
          if lineLength == 2 {
            trailerBytes.moveWriterIndex(to: end - 2)
            state = .ending
            break
          }
          let problem = trailerBytes.withUnsafeReadableBytes { raw -> String? in
            let line = UnsafeRawBufferPointer(rebasing: raw[lineStart..<end])
            var i = 0
            switch HeadParser.parseField(line, &i) {
            case .field: return i == line.count ? nil : "malformed trailer"
            case .end: return "malformed trailer"
            case .invalid(let why): return why
            }
          }
          if let problem { throw .invalidTrailer(problem) }
          lineStart = end
        }
        if case .trailers = state {
          state = .trailers(lineStart: lineStart)
          return nil
        }
      }
    }
  }

  /// The connection closed: for an `untilClose` body that is its end.
  mutating func finishAtClose() -> Bool {
    guard state == .untilClose else { return false }
    state = .ending
    return true
  }

  @inline(__always) static func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
    default: return nil
    }
  }
}
