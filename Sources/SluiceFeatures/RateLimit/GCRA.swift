/// A rate limit as the generic cell rate algorithm sees it: one request every `interval`, with
/// up to `burst` requests at once. GCRA keeps one number per key (the theoretical arrival time,
/// TAT), so a limit's state is 8 bytes a key, it is exact (no window edges that let 2× through),
/// and the same arithmetic runs in the local store and in the Redis script, which is what lets
/// a fleet and a single process agree on what `limit: 100, per: 1m` admits.
///
/// Times are nanoseconds on one clock (monotonic locally, Redis `TIME` in the shared store).
public struct GCRA: Sendable, Hashable {
  /// `per / limit`: the time one request uses up.
  public let interval: Int64
  /// Requests that may arrive at once after an idle period.
  public let burst: Int64
  /// `limit` as configured, for `RateLimit-Limit`.
  public let limit: Int64

  /// How far ahead of `now` the TAT may run: a request is admitted when its new TAT is at most
  /// this far in the future (`interval × burst`, saturated so no setting can overflow).
  public let tolerance: Int64

  public init(limit: Int64, perNanoseconds: Int64, burst: Int64? = nil) {
    self.limit = max(1, limit)
    self.interval = max(1, perNanoseconds / self.limit)
    self.burst = max(1, burst ?? limit)
    let (product, overflow) = interval.multipliedReportingOverflow(by: self.burst)
    self.tolerance = overflow ? Self.maxTolerance : min(product, Self.maxTolerance)
  }

  /// A quarter of `Int64` (73 years in nanoseconds): TATs stay far from overflow.
  public static let maxTolerance = Int64.max / 4

  /// The verdict for one request.
  public struct Decision: Sendable, Hashable {
    public var admitted: Bool
    /// The key's TAT after this request (unchanged when refused).
    public var newTAT: Int64
    /// Requests that could still be admitted right now.
    public var remaining: Int64
    /// Refused: nanoseconds until this request would be admitted (`Retry-After`).
    public var retryAfter: Int64
    /// Nanoseconds until the key is back to its full burst (`RateLimit-Reset`).
    public var reset: Int64
  }

  /// One request at `now` against a key whose TAT is `tat` (0 or any past time: a fresh key).
  public func decide(tat: Int64, now: Int64) -> Decision {
    let start = tat > now ? tat : now
    let newTAT = start &+ interval
    let ahead = newTAT &- now
    if ahead > tolerance {
      let used = start - now
      return Decision(
        admitted: false, newTAT: tat, remaining: 0, retryAfter: ahead - tolerance, reset: used)
    }
    return Decision(
      admitted: true, newTAT: newTAT, remaining: (tolerance - ahead) / interval, retryAfter: 0, reset: ahead)
  }

  /// Gives back one admitted request (another limit on the same route refused it): the key's
  /// TAT moves back by one interval, never below `now` (a key at or before `now` is fresh).
  public func refund(tat: Int64, now: Int64) -> Int64 {
    let back = tat &- interval
    return back > now ? back : now
  }

  /// Whether a key's state still matters at `now`: a TAT at or before `now` is the same as no
  /// entry, so such keys can be forgotten without changing any decision.
  public static func isIdle(tat: Int64, now: Int64) -> Bool { tat <= now }
}

extension Int64 {
  /// Nanoseconds as whole seconds, rounded up (`Retry-After`, `RateLimit-Reset`): a client that
  /// waits the advertised time must be admitted.
  public var secondsRoundedUp: Int64 {
    self <= 0 ? 0 : self / 1_000_000_000 + (self % 1_000_000_000 == 0 ? 0 : 1)
  }
}
