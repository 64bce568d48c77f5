import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceConfig
import SluiceCore
import SluiceProxy

/// What the admin API asks of the running gateway. The app implements it; the admin server
/// only speaks HTTP.
public protocol AdminControl: Sendable {
  /// Bound listeners and a loaded config, and not draining.
  var isReady: Bool { get }
  /// The bearer token required for everything but /healthz and /readyz (nil: none).
  var adminToken: String? { get }
  func metricsText() -> String
  func configJSON() -> String
  func backendsJSON(_ done: @escaping @Sendable (String) -> Void)
  /// Reloads from the config source; answers an HTTP status and a JSON body.
  func reload(_ done: @escaping @Sendable (Int, String) -> Void)
}

/// The admin API (SPEC section 3) on its own listener, never on a public one.
public enum AdminServer {
  public static func bind(_ address: HostPort, group: any EventLoopGroup, control: any AdminControl) -> EventLoopFuture<any Channel> {
    ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
          try channel.pipeline.syncOperations.addHandler(AdminHandler(control: control))
        }
      }
      .bind(to: address)
  }
}

final class AdminHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let control: any AdminControl
  var head: HTTPRequestHead?
  var bodySize = 0

  init(control: any AdminControl) { self.control = control }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      self.head = head
      bodySize = 0
    case .body(let body):
      bodySize += body.readableBytes
    case .end:
      guard let head else { return }
      self.head = nil
      handle(head, context: context)
    }
  }

  func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    let keepAlive = head.isKeepAlive
    if path != "/healthz" && path != "/readyz", let token = control.adminToken {
      let given = head.headers.first(name: "authorization") ?? ""
      if !Self.constantTimeEquals(given, "Bearer " + token) {
        var headers = HTTPHeaders()
        headers.add(name: "www-authenticate", value: "Bearer realm=\"sluice-admin\"")
        respond(context, 401, "{\"error\":\"unauthenticated\",\"message\":\"admin token required\"}\n", json: true, headers, keepAlive)
        return
      }
    }
    switch (head.method, path) {
    case (.GET, "/healthz"), (.HEAD, "/healthz"):
      respond(context, 200, "ok\n", json: false, [:], keepAlive)
    case (.GET, "/readyz"), (.HEAD, "/readyz"):
      if control.isReady {
        respond(context, 200, "ready\n", json: false, [:], keepAlive)
      } else {
        respond(context, 503, "not ready\n", json: false, [:], keepAlive)
      }
    case (.GET, "/metrics"):
      var headers = HTTPHeaders()
      headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
      respond(context, 200, control.metricsText(), json: false, headers, keepAlive)
    case (.GET, "/config"):
      respond(context, 200, control.configJSON(), json: true, [:], keepAlive)
    case (.GET, "/backends"):
      let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
      control.backendsJSON { body in
        bound.eventLoop.execute {
          let (handler, context) = bound.value
          handler.respond(context, 200, body, json: true, [:], keepAlive)
        }
      }
    case (.POST, "/reload"):
      let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
      control.reload { status, body in
        bound.eventLoop.execute {
          let (handler, context) = bound.value
          handler.respond(context, status, body, json: true, [:], keepAlive)
        }
      }
    case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/config"), (_, "/backends"), (_, "/reload"):
      respond(context, 405, "{\"error\":\"method_not_allowed\",\"message\":\"method not allowed\"}\n", json: true, [:], keepAlive)
    default:
      respond(context, 404, "{\"error\":\"not_found\",\"message\":\"no such admin endpoint\"}\n", json: true, [:], keepAlive)
    }
  }

  func respond(_ context: ChannelHandlerContext, _ status: Int, _ body: String, json: Bool, _ extra: HTTPHeaders, _ keepAlive: Bool) {
    var headers = extra
    if !headers.contains(name: "content-type") {
      headers.add(name: "content-type", value: json ? "application/json" : "text/plain; charset=utf-8")
    }
    headers.add(name: "content-length", value: String(body.utf8.count))
    if !keepAlive { headers.add(name: "connection", value: "close") }
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))), promise: nil)
    var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
    buffer.writeString(body)
    context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
    if !keepAlive {
      done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
  }

  static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) {
      diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return diff == 0
  }
}
