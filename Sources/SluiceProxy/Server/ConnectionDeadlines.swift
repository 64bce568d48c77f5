import NIOCore

/// The deadlines of one client connection — keep-alive idle, header read (slow-loris) and the
/// current request's upstream timeout — served by a single timer that is re-armed lazily.
///
/// Why: scheduling and cancelling a NIO timer per request (idle, then timeout) cost two heap
/// allocations and timer-heap work on every request. Here a request only writes deadlines;
/// the one timer fires at the earliest one, acts on what has expired and re-arms for the rest.
/// A deadline that moves later needs no timer work at all.
struct ConnectionDeadlines: Equatable {
  enum Kind: Equatable { case header, body, upstream, idle }

  var idle: NIODeadline?
  var header: NIODeadline?
  /// Next body piece due (while a request body is being received).
  var body: NIODeadline?
  var upstream: NIODeadline?

  var earliest: NIODeadline? {
    var out: NIODeadline?
    for deadline in [header, body, upstream, idle] {
      if let deadline, out == nil || deadline < out! { out = deadline }
    }
    return out
  }

  /// The first expired deadline at `now` (header, body, upstream, idle), cleared.
  mutating func takeExpired(at now: NIODeadline) -> Kind? {
    if let h = header, h <= now {
      header = nil
      return .header
    }
    if let b = body, b <= now {
      body = nil
      return .body
    }
    if let u = upstream, u <= now {
      upstream = nil
      return .upstream
    }
    if let i = idle, i <= now {
      idle = nil
      return .idle
    }
    return nil
  }
}
