import NIOCore
import NIOHTTP1
import SluiceCore

/// Writes HTTP/1.1 response heads and body framing straight into `ByteBuffer`s.
///
/// Sluice frames client responses itself instead of using NIO's `HTTPResponseEncoder`: it must
/// know the request method (no body for HEAD), keep an upstream `Content-Length`, choose chunked
/// only when the length is unknown, and never emit framing the client did not ask for.
enum ResponseWriter {

  /// Error and direct responses (not the proxied path): written like the proxied heads, through
  /// a `ByteWriter`, so there is one header writer.
  static func head(
    status: HTTPResponseStatus, headers: HTTPHeaders, allocator: ByteBufferAllocator
  ) -> ByteBuffer {
    var out = ByteWriter(capacity: 256)
    out.append("HTTP/1.1 ")
    ByteText.append(Int(status.code), to: &out)
    out.append(" ")
    ByteText.append(status.reasonPhrase, to: &out)
    out.append("\r\n")
    for (name, value) in headers { writeHeader(&out, name, value) }
    out.append("\r\n")
    var buffer = allocator.buffer(capacity: out.count)
    out.withBytes { _ = buffer.writeBytes($0) }
    return buffer
  }

  @inline(__always) static func writeHeader(_ out: inout ByteWriter, _ name: String, _ value: String) {
    ByteText.append(name, to: &out)
    out.append(": ")
    ByteText.append(value, to: &out)
    out.append("\r\n")
  }

  @inline(__always) static func writeHeader(_ out: inout ByteWriter, _ name: String, _ id: RequestID) {
    ByteText.append(name, to: &out)
    out.append(": ")
    id.withUTF8 { out.append($0) }
    out.append("\r\n")
  }

  /// A head assembled in a `ByteWriter` (plain pointer writes, inlined) as one `ByteBuffer`
  /// write: building it with ~30 small `ByteBuffer` writes cost each one NIO's uniqueness and
  /// capacity checks and slice arithmetic, ~1.5 % of a proxied request's CPU (bench/RESULTS.md).
  @inline(__always) static func buffer(
    _ bytes: borrowing ByteWriter, spare: Int = 0, recycler: inout HeadRecycler, allocator: ByteBufferAllocator
  ) -> ByteBuffer {
    var buffer = recycler.buffer(capacity: bytes.count + spare, allocator: allocator)
    bytes.withBytes { _ = buffer.writeBytes($0) }
    return buffer
  }

  static func chunkHeader(size: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 12)
    buffer.writeString(String(size, radix: 16))
    buffer.writeStaticString("\r\n")
    return buffer
  }

  /// The last chunk, with the trailer lines a chunked body arrived with (already checked line
  /// by line by `BodyDecoder`).
  static func lastChunk(trailers: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 5 + (trailers?.readableBytes ?? 0))
    buffer.writeStaticString("0\r\n")
    if var trailers { buffer.writeBuffer(&trailers) }
    buffer.writeStaticString("\r\n")
    return buffer
  }

  /// The CRLF after a chunk's data; one shared buffer (writing it again copies nothing).
  static let crlf: ByteBuffer = {
    var buffer = ByteBuffer()
    buffer.writeStaticString("\r\n")
    return buffer
  }()
}
