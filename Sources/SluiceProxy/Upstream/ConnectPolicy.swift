/// When a request finds no idle upstream connection: how many new connections the pool opens,
/// and who fails when one cannot be opened. Plain arithmetic, kept apart from the pool's I/O so
/// the rules can be tested densely.
///
/// Requests that find no idle connection wait in their endpoint's queue and take whichever
/// connection is free first: a keep-alive connection whose response just ended, or a new one
/// (Go's `http.Transport` and Envoy's pools hand connections over the same way). New connections
/// are opened for waiting requests, but only `minInFlight` connects are in flight at once per
/// endpoint and event loop while the endpoint is near (its fastest connect took under
/// `remoteConnectNanos`).
///
/// Why the cap: after the event loop was held up (a VM pause, a noisy neighbour), the backlog
/// arrives as one burst. A near endpoint's connect costs the loop CPU, not waiting: about 100k
/// user-space instructions against about 35k for a whole proxied request (`bench/instructions.sh`),
/// plus the kernel's handshake. Meanwhile the keep-alive connections in use come back within an
/// upstream round trip. With one connect per waiting request (as nginx, Envoy and Go do), a
/// fresh Sluice drained a 20 ms stall at 5k req/s slower than nginx; with the cap it drains it
/// sooner than nginx and opens 25-50 % fewer connections (bench/RESULTS.md, stall injection).
/// Two connects in flight still open thousands of connections a second to a near
/// endpoint, enough for a slow upstream that needs many.
///
/// A far endpoint (connects take a network round trip of a millisecond or more) leaves the loop
/// idle while they are in flight, so there the cap grows with the pool: up to `open` connects in
/// flight, at least doubling the pool per round trip.
enum ConnectPolicy {
  /// Connects allowed in flight per endpoint and event loop to a near endpoint.
  static let minInFlight = 2
  /// An endpoint whose fastest connect took at least this long is far (1 ms).
  static let remoteConnectNanos: UInt64 = 1_000_000

  /// New connects to start now, for `waiting` requests in the queue while `connecting` connects
  /// are in flight and `open` connections are established (idle or busy). `fastestConnectNanos`
  /// is the endpoint's fastest connect so far on this loop, nil before the first.
  static func connectsToStart(waiting: Int, connecting: Int, open: Int, fastestConnectNanos: UInt64?) -> Int {
    var limit = minInFlight
    if let fastest = fastestConnectNanos, fastest >= remoteConnectNanos { limit = max(limit, open) }
    return max(0, min(waiting, limit) - connecting)
  }

  /// Waiting requests to fail after a connect failed, oldest first. With no connection open the
  /// endpoint is unreachable: every waiting request not covered by a connect still in flight
  /// fails now, instead of waiting for connects one after another. With connections open, the
  /// failed connect's own share (one request) fails and the rest wait for those connections.
  static func failuresAfterConnectError(waiting: Int, connecting: Int, open: Int) -> Int {
    guard waiting > 0 else { return 0 }
    if open == 0 { return max(1, waiting - connecting) }
    return 1
  }
}
