/// `fault:` of a route, decided per request before the upstream is touched. Delay and abort
/// roll independently, as in Envoy's fault filter: a request may be delayed and then aborted.
public enum FaultInjection {
  public struct Decision: Sendable, Hashable {
    /// Nanoseconds to wait before going on; nil: no delay.
    public var delay: Int64?
    /// The status to answer instead of forwarding; nil: forward.
    public var abort: Int?

    public init(delay: Int64? = nil, abort: Int? = nil) {
      self.delay = delay
      self.abort = abort
    }
  }

  /// `rolls`: two uniformly random 64-bit values (the event loop's generator).
  public static func decide(
    delayShare: Double, delay: Int64, abortShare: Double, abortStatus: Int, rolls: (UInt64, UInt64)
  ) -> Decision {
    var out = Decision()
    if delayShare > 0 && delay > 0 && unit(rolls.0) < delayShare { out.delay = delay }
    if abortShare > 0 && unit(rolls.1) < abortShare { out.abort = abortStatus }
    return out
  }

  /// A value in [0, 1) from the top 53 bits.
  @inline(__always) public static func unit(_ roll: UInt64) -> Double { Double(roll >> 11) / Double(1 << 53) }
}
