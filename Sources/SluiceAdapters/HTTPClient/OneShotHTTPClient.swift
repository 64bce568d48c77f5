import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SluiceCore

/// The answer of one request of the gateway's own (a JWKS fetch, a webhook POST).
public struct OneShotResponse: Sendable {
  public var status: Int
  public var body: [UInt8]
}

public enum OneShotHTTPError: Error, Sendable, CustomStringConvertible {
  case timedOut
  case bodyTooLarge(Int)
  case closedEarly
  case tls(String)
  case connect(String)

  public var description: String {
    switch self {
    case .timedOut: "timed out"
    case .bodyTooLarge(let limit): "the response is larger than \(limit) bytes"
    case .closedEarly: "the connection closed before the response was complete"
    case .tls(let why): "TLS: \(why)"
    case .connect(let why): "cannot connect: \(why)"
    }
  }
}

/// A small HTTP/1.1 client for the control plane (JWKS, webhooks): one connection per request
/// (`connection: close`), http or https (verified against the system's CAs or a given CA
/// file), one deadline for the whole exchange, and a cap on the response body. Off the
/// request path, so NIO's own HTTP codec is fine here; no Foundation, no async-http-client
/// (its build time buys nothing these two callers need).
public enum OneShotHTTPClient {
  public static func request(
    method: HTTPMethod, url: HTTPURL, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: TimeAmount,
    maxBody: Int, tls: NIOSSLContext?, serverName: String? = nil, hostHeader: String? = nil, on eventLoop: any EventLoop
  ) -> EventLoopFuture<OneShotResponse> {
    let promise = eventLoop.makePromise(of: OneShotResponse.self)
    let host = url.host
    let bootstrap = ClientBootstrap(group: eventLoop)
      .connectTimeout(timeout)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        do {
          if let tls {
            let sni = serverName ?? (IPAddress.parse(host) == nil ? host : nil)
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: sni))
          }
          try channel.pipeline.syncOperations.addHTTPClientHandlers()
          try channel.pipeline.syncOperations.addHandler(Collector(promise: promise, maxBody: maxBody))
          return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
          return channel.eventLoop.makeFailedFuture(error)
        }
      }
    let deadline = eventLoop.scheduleTask(in: timeout) { promise.fail(OneShotHTTPError.timedOut) }
    bootstrap.connect(host: host, port: url.port).whenComplete { result in
      switch result {
      case .failure(let error):
        promise.fail(OneShotHTTPError.connect("\(error)"))
      case .success(let channel):
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: url.target)
        head.headers.add(name: "host", value: hostHeader ?? url.hostHeader)
        head.headers.add(name: "user-agent", value: "sluice/\(BuildInfo.version)")
        head.headers.add(name: "connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "content-length", value: String(body.count)) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body {
          channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
      }
    }
    promise.futureResult.whenComplete { _ in deadline.cancel() }
    return promise.futureResult
  }

  /// A client TLS context: the system's trust roots, or `caFile` (PEM) instead.
  public static func tlsContext(caFile: String?) throws -> NIOSSLContext {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.minimumTLSVersion = .tlsv12
    if let caFile { configuration.trustRoots = .file(caFile) }
    return try NIOSSLContext(configuration: configuration)
  }

  final class Collector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<OneShotResponse>
    let maxBody: Int
    var status = 0
    var body: [UInt8] = []

    init(promise: EventLoopPromise<OneShotResponse>, maxBody: Int) {
      self.promise = promise
      self.maxBody = maxBody
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let head):
        status = Int(head.status.code)
      case .body(var buffer):
        if body.count + buffer.readableBytes > maxBody {
          promise.fail(OneShotHTTPError.bodyTooLarge(maxBody))
          context.close(promise: nil)
          return
        }
        body += buffer.readBytes(length: buffer.readableBytes) ?? []
      case .end:
        promise.succeed(OneShotResponse(status: status, body: body))
        context.close(promise: nil)
      }
    }

    func channelInactive(context: ChannelHandlerContext) {
      promise.fail(OneShotHTTPError.closedEarly)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      if let tls = error as? NIOSSLError {
        promise.fail(OneShotHTTPError.tls("\(tls)"))
      } else {
        promise.fail(error)
      }
      context.close(promise: nil)
    }
  }
}
