import NIOCore
import NIOSSL
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// The first handler of an `https` connection: reads the ClientHello (reassembled across
/// reads, at most 16 KiB), picks the certificate for its server name, installs swift-nio-ssl's
/// server handler with that certificate's context, hands it the bytes read so far and steps
/// aside. The server name goes to the connection's `ServerHandler` (`match.server_name`, the
/// access log).
///
/// Why not NIOSSL's `sslContextCallback`: it runs inside BoringSSL's handshake with a promise
/// per connection; parsing the hello first costs one small buffer, and the same parser serves
/// `tls_passthrough`. The handshake's time limit is the `ServerHandler`'s (it starts at accept).
final class TLSHelloHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  let selector: CertificateSelector
  /// The connection's request handler, told the server name.
  let server: ServerHandler
  var buffered: ByteBuffer?
  /// Refused (closing): later bytes are dropped.
  var refused = false

  init(selector: CertificateSelector, server: ServerHandler) {
    self.selector = selector
    self.server = server
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if refused { return }
    var incoming = unwrapInboundIn(data)
    if buffered == nil {
      buffered = incoming
    } else {
      buffered!.writeBuffer(&incoming)
    }
    let result = buffered!.withUnsafeReadableBytes { ClientHelloParser.parse($0) }
    switch result {
    case .needMore:
      if buffered!.readableBytes > ClientHelloParser.maxBytes + 1024 { refuse(context, "ClientHello larger than 16 KiB") }
    case .invalid(let why):
      if let first = buffered!.getInteger(at: buffered!.readerIndex, as: UInt8.self),
        first >= UInt8(ascii: "A") && first <= UInt8(ascii: "Z")
      {
        // Plain HTTP sent to the TLS port (nginx answers the same way): say so, then close.
        refused = true
        buffered = nil
        server.plainHTTPOnTLSPort()
        return
      }
      refuse(context, why)
    case .hello(let hello):
      let certificate = selector.select(hello.serverName)
      server.tlsServerName = hello.serverName
      do {
        let tls = NIOSSLServerHandler(context: certificate.context)
        try context.pipeline.syncOperations.addHandler(tls, position: .after(self))
      } catch {
        refuse(context, "cannot start TLS: \(error)")
        return
      }
      let bytes = buffered!
      buffered = nil
      context.fireChannelRead(wrapInboundOut(bytes))
      context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
  }

  func refuse(_ context: ChannelHandlerContext, _ why: String) {
    refused = true
    buffered = nil
    if Log.enabled(.debug) { Log.debug("TLS connection refused", [("reason", why)]) }
    context.close(promise: nil)
  }
}
