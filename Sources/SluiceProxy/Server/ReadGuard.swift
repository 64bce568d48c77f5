import NIOCore

/// Sits before the HTTP decoder and watches raw bytes while the connection waits for a request
/// head: it starts the header-read timer on the first byte (slow-loris guard) and caps the
/// bytes a head may take before the decoder has seen its end, which bounds request lines the
/// decoder itself does not limit.
final class ReadGuard: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  weak var server: ServerHandler?
  let maxHeadBytes: Int
  var headBytes = 0

  init(maxHeadBytes: Int) { self.maxHeadBytes = maxHeadBytes }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let size = unwrapInboundIn(data).readableBytes
    guard let server else {
      context.fireChannelRead(data)
      return
    }
    let headsBefore = server.headsSeen
    if server.awaitingHead && headBytes == 0 && size > 0 { server.firstHeadByte() }
    context.fireChannelRead(data)
    if server.headsSeen != headsBefore {
      headBytes = 0
    } else if server.awaitingHead {
      headBytes += size
      if headBytes > maxHeadBytes { server.headTooLarge() }
    }
  }
}
