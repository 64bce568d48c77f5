#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Wall-clock and monotonic time without Foundation: the access log needs an RFC 3339 stamp per
/// request, and `Date` + `ISO8601DateFormatter` cost microseconds each.
public enum WallClock {
  /// Milliseconds since the Unix epoch.
  @inlinable public static func nowMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
  }

  /// Monotonic nanoseconds, for durations.
  @inlinable public static func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }

  /// `2026-11-26T10:00:00.123Z` for milliseconds since the epoch (proleptic Gregorian, UTC).
  /// Calendar fields of a UTC time (Howard Hinnant's civil_from_days).
  public static func civil(milliseconds: Int64) -> (
    year: Int, month: Int, day: Int, secondOfDay: Int, millisecond: Int
  ) {
    let ms = Int(((milliseconds % 1000) + 1000) % 1000)
    let seconds = (milliseconds - Int64(ms)) / 1000
    var days = seconds / 86_400
    var secOfDay = seconds % 86_400
    if secOfDay < 0 {
      secOfDay += 86_400
      days -= 1
    }
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    var year = yoe + era * 400
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    if month <= 2 { year += 1 }
    return (Int(year), Int(month), Int(day), Int(secOfDay), ms)
  }

  public static func rfc3339(milliseconds: Int64) -> String {
    var bytes = ByteWriter(capacity: 24)
    ByteText.appendRFC3339(milliseconds: milliseconds, to: &bytes)
    return bytes.string
  }

}

/// A fast, non-cryptographic generator (wyrand) for request ids, load-balancer picks and
/// split rolls. Seeded once per owner from the system generator; owned by one event loop.
public struct FastRandom: RandomNumberGenerator, Sendable {
  @usableFromInline var state: UInt64

  public init() {
    var system = SystemRandomNumberGenerator()
    state = system.next()
  }

  public init(seed: UInt64) { state = seed }

  @inlinable public mutating func next() -> UInt64 {
    state &+= 0xA076_1D64_78BD_642F
    let product = state.multipliedFullWidth(by: state ^ 0xE703_7ED1_A0B4_28DB)
    return product.high ^ product.low
  }
}
