import Atomics
import NIOCore
import NIOPosix
import SluiceConfig
import SluiceCore

/// Binds one listener. Each accepted connection gets one handler, a `ServerHandler` tied to its
/// event loop's `LoopContext`, which parses HTTP/1 itself with the listener's limits.
public enum ListenerServer {
  public static func bind(
    _ config: ListenerConfig, group: any EventLoopGroup, contexts: LoopContexts
  ) -> EventLoopFuture<any Channel> {
    let open = ManagedAtomic<Int>(0)
    let name = config.name
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 4)
      // First reads of 512 bytes instead of NIO's 2048: a typical request head fits, the
      // allocator grows for bodies, and each idle keep-alive connection keeps 1.1 KiB less
      // (7.0 → 5.8 KiB per connection in bench/RESULTS.md's idle1000 measure).
      .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          guard let loop = contexts.context(for: channel.eventLoop),
            let listener = loop.graph.listeners[name]
          else {
            throw ChannelError.ioOnClosedChannel
          }
          let limits = listener.config.limits
          // max_connections: refuse beyond the limit by closing at once (HAProxy maxconn).
          if open.loadThenWrappingIncrement(ordering: .relaxed) >= limits.maxConnections {
            open.wrappingDecrement(ordering: .relaxed)
            throw ChannelError.ioOnClosedChannel
          }
          channel.closeFuture.whenComplete { _ in open.wrappingDecrement(ordering: .relaxed) }
          let (peerIP, peerBytes) = Self.peer(channel.remoteAddress)
          if listener.config.protocol == "tls_passthrough" {
            try channel.pipeline.syncOperations.addHandler(PassthroughHandler(loop: loop, listener: listener))
            return
          }
          let server = ServerHandler(loop: loop, listener: listener, peerIP: peerIP, peerBytes: peerBytes)
          if let selector = listener.certificates {
            try channel.pipeline.syncOperations.addHandlers(TLSHelloHandler(selector: selector, server: server), server)
          } else {
            try channel.pipeline.syncOperations.addHandler(server)
          }
        }
      }
    return bootstrap.bind(to: config.listen)
  }

  static func peer(_ address: SocketAddress?) -> (String, [UInt8]) {
    guard let address, let ip = address.ipAddress else { return ("unknown", []) }
    var text = ip
    var bytes = IPAddress.parse(ip) ?? []
    // IPv4-mapped IPv6 peers are shown and matched as IPv4
    if text.hasPrefix("::ffff:"), let v4 = IPAddress.parse(String(text.dropFirst(7))) {
      text = String(text.dropFirst(7))
      bytes = v4
    }
    return (text, bytes)
  }
}

extension ServerBootstrap {
  /// Binds an IP literal directly; only a host name goes through the resolver. (NIO's
  /// `bind(host:port:)` calls `getaddrinfo`, whose `AI_ADDRCONFIG` netlink queries cost about
  /// a millisecond per listener at start-up.)
  public func bind(to address: HostPort) -> EventLoopFuture<any Channel> {
    if let ip = IPAddress.parse(address.host), let socketAddress = try? SocketAddress(ipAddress: IPAddress.format(ip), port: address.port) {
      return bind(to: socketAddress)
    }
    return bind(host: address.host, port: address.port)
  }
}
