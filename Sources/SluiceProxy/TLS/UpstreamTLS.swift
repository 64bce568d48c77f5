import NIOCore
import NIOSSL
import NIOTLS
import SluiceCore

/// TLS to an upstream endpoint: swift-nio-ssl's client handler in front of the connection,
/// verified against the backend's `tls.ca` (or the system's roots) and its `server_name`.
enum UpstreamTLS {
  /// Why an upstream handshake failed, for the log and the 502's message.
  struct Failure: Error, CustomStringConvertible {
    let reason: String
    var description: String { "TLS handshake failed: \(reason)" }
  }

  /// Adds the TLS handler and succeeds with `channel` once the handshake is complete.
  static func handshake(
    _ channel: any Channel, _ context: NIOSSLContext, serverName: String?, timeout: TimeAmount
  ) -> EventLoopFuture<any Channel> {
    let promise = channel.eventLoop.makePromise(of: (any Channel).self)
    do {
      let tls = try NIOSSLClientHandler(context: context, serverHostname: serverName)
      let watcher = HandshakeWatcher(promise: promise, channel: channel, tls: tls, serverName: serverName)
      try channel.pipeline.syncOperations.addHandlers(tls, watcher)
      let timer = channel.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
        watcher.fail(Failure(reason: "no handshake within \(timeout.nanoseconds / 1_000_000)ms"))
      }
      promise.futureResult.whenComplete { _ in timer.cancel() }
    } catch {
      channel.close(promise: nil)
      promise.fail(Failure(reason: "\(error)"))
    }
    return promise.futureResult
  }

  /// Completes the handshake promise, then leaves the pipeline to the upstream connection.
  final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    var promise: EventLoopPromise<any Channel>?
    let channel: any Channel
    let tls: NIOSSLClientHandler
    let serverName: String?

    init(promise: EventLoopPromise<any Channel>, channel: any Channel, tls: NIOSSLClientHandler, serverName: String?) {
      self.promise = promise
      self.channel = channel
      self.tls = tls
      self.serverName = serverName
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
      if let event = event as? TLSUserEvent, case .handshakeCompleted = event, let promise {
        // swift-nio-ssl also accepts a certificate whose IP address entry matches the socket
        // even when the expected name does not: a configured name must be in the certificate.
        if let serverName, let leaf = tls.peerCertificate, !Self.certificate(leaf, isValidFor: serverName) {
          fail(Failure(reason: "the upstream's certificate is not valid for '\(serverName)'"))
          return
        }
        self.promise = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        promise.succeed(channel)
        return
      }
      context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      fail(Failure(reason: Self.describe(error, serverName: serverName)))
    }

    func channelInactive(context: ChannelHandlerContext) {
      fail(Failure(reason: "the upstream closed the connection during the handshake"))
      context.fireChannelInactive()
    }

    func fail(_ failure: Failure) {
      guard let promise else { return }
      self.promise = nil
      channel.close(promise: nil)
      promise.fail(failure)
    }

    /// RFC 6125: a DNS subjectAltName equal to `name`, or a `*.` wildcard for its first label.
    static func certificate(_ leaf: NIOSSLCertificate, isValidFor name: String) -> Bool {
      for entry in leaf._subjectAlternativeNames() where entry.nameType == .dnsName {
        let dns = String(decoding: entry.contents, as: UTF8.self).lowercased()
        if dns == name { return true }
        if dns.hasPrefix("*."), let dot = name.firstIndex(of: "."), name[dot...] == dns.dropFirst(1),
          name[..<dot].count > 0
        {
          return true
        }
      }
      return false
    }

    static func describe(_ error: any Error, serverName: String?) -> String {
      if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
        return "the upstream's certificate is not valid for '\(serverName ?? "its IP address")'"
      }
      switch error {
      case let ssl as NIOSSLError:
        if case .handshakeFailed(let inner) = ssl {
          // BoringSSL's reason (`…:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at <file>`),
          // without the source path.
          let text = "\(inner)"
          var reason = text
          let parts = text.split(separator: ":")
          if let at = parts.firstIndex(of: "OPENSSL_internal"), at + 1 < parts.count {
            reason = String(parts[at + 1].prefix { $0 != " " && $0 != "]" })
          }
          if reason == "CERTIFICATE_VERIFY_FAILED" { return "the upstream's certificate chain is not trusted" }
          return "TLS error \(reason)"
        }
        return "\(ssl)"
      default:
        return "\(error)"
      }
    }
  }
}
