import Atomics
import SluiceCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A fixed block of relaxed atomic counters in one allocation. Metric handles are these blocks
/// (or slots in them), resolved when the config is compiled; the data plane only increments.
public final class AtomicCounters: @unchecked Sendable {
  // Safe: the storage is only touched through atomic operations and freed in deinit.
  let storage: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
  public let count: Int

  public init(count: Int) {
    self.count = count
    storage = .allocate(capacity: count)
    storage.initialize(repeating: UnsafeAtomic<Int>.Storage(0), count: count)
  }

  deinit {
    storage.deinitialize(count: count)
    storage.deallocate()
  }

  @inline(__always) public func add(_ slot: Int, _ amount: Int = 1) {
    guard slot >= 0 && slot < count else { return }
    UnsafeAtomic<Int>(at: storage + slot).wrappingIncrement(by: amount, ordering: .relaxed)
  }

  @inline(__always) public func load(_ slot: Int) -> Int {
    guard slot >= 0 && slot < count else { return 0 }
    return UnsafeAtomic<Int>(at: storage + slot).load(ordering: .relaxed)
  }

  @inline(__always) public func store(_ slot: Int, _ value: Int) {
    guard slot >= 0 && slot < count else { return }
    UnsafeAtomic<Int>(at: storage + slot).store(value, ordering: .relaxed)
  }
}

public final class Counter: Sendable {
  let cell = AtomicCounters(count: 1)
  @inline(__always) public func increment(by amount: Int = 1) { cell.add(0, amount) }
  public var value: Int { cell.load(0) }
}

public final class Gauge: Sendable {
  let cell = AtomicCounters(count: 1)
  @inline(__always) public func add(_ amount: Int) { cell.add(0, amount) }
  public func set(_ value: Int) { cell.store(0, value) }
  public var value: Int { cell.load(0) }
}

/// HTTP status counters indexed by code (100…599): one handle per (listener, route, backend),
/// so counting a response is one relaxed increment whatever its status.
public final class StatusCounters: Sendable {
  let cells = AtomicCounters(count: 600)
  @inline(__always) public func record(status: Int) { cells.add(status) }
  public func value(status: Int) -> Int { cells.load(status) }
}

/// A Prometheus histogram with fixed upper bounds in seconds, observed in microseconds.
public final class Histogram: Sendable {
  /// SPEC section 6: 1 ms · 2^k up to ~2 s.
  public static let defaultBounds: [Double] = (0..<12).map { 0.001 * Double(1 << $0) }
  /// 50 µs · 2^k up to ~0.2 s: store round trips (Redis on the same network is sub-millisecond).
  public static let storeBounds: [Double] = (0..<13).map { 0.000_05 * Double(1 << $0) }
  public let bounds: [Double]
  let boundsMicros: [Int]
  // slots 0..<bounds.count: bucket counts (non-cumulative); then +Inf, count, sum (µs)
  let cells: AtomicCounters

  public init(bounds: [Double] = Histogram.defaultBounds) {
    self.bounds = bounds
    self.boundsMicros = bounds.map { Int($0 * 1_000_000) }
    cells = AtomicCounters(count: bounds.count + 3)
  }

  @inline(__always) public func observe(microseconds: Int) {
    var slot = boundsMicros.count
    for (i, bound) in boundsMicros.enumerated() where microseconds <= bound {
      slot = i
      break
    }
    cells.add(slot)
    cells.add(boundsMicros.count + 1)
    cells.add(boundsMicros.count + 2, microseconds)
  }

  public var count: Int { cells.load(bounds.count + 1) }
}

/// All metric series of the process. Series are created (or found again) by name and labels
/// when a config is compiled — under a lock, off the request path — and survive reloads, so
/// counters never go backwards for Prometheus.
public final class MetricsRegistry: @unchecked Sendable {
  // Safe: `lock` guards the maps; the metric objects themselves are atomics.
  public enum Kind: String, Sendable { case counter, gauge, histogram }

  struct Family {
    var kind: Kind
    var help: String
    var series: [String: AnyObject] = [:]  // rendered label set → metric
    var order: [String] = []
  }

  let lock = Mutex()
  var families: [String: Family] = [:]
  var familyOrder: [String] = []
  /// Extra text appended on render (process metrics, computed gauges).
  var collectors: [@Sendable () -> String] = []

  public init() {}

  public func counter(_ name: String, help: String, labels: [(String, String)] = []) -> Counter {
    series(name, .counter, help, labels) { Counter() }
  }

  public func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Gauge {
    series(name, .gauge, help, labels) { Gauge() }
  }

  public func histogram(
    _ name: String, help: String, labels: [(String, String)] = [], bounds: [Double] = Histogram.defaultBounds
  ) -> Histogram {
    series(name, .histogram, help, labels) { Histogram(bounds: bounds) }
  }

  /// Status counters appear as the counter `name` with an extra `code` label.
  public func statusCounters(_ name: String, help: String, labels: [(String, String)]) -> StatusCounters {
    series(name, .counter, help, labels) { StatusCounters() }
  }

  public func addCollector(_ collector: @escaping @Sendable () -> String) {
    lock.withLock { collectors.append(collector) }
  }

  func series<M: AnyObject>(
    _ name: String, _ kind: Kind, _ help: String, _ labels: [(String, String)], make: () -> M
  ) -> M {
    let key = Self.renderLabels(labels)
    return lock.withLock {
      if families[name] == nil {
        families[name] = Family(kind: kind, help: help)
        familyOrder.append(name)
      }
      if let existing = families[name]!.series[key] as? M { return existing }
      let metric = make()
      families[name]!.series[key] = metric
      families[name]!.order.append(key)
      return metric
    }
  }

  static func renderLabels(_ labels: [(String, String)]) -> String {
    labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
  }

  static func escape(_ value: String) -> String {
    var out = ""
    for c in value {
      switch c {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      default: out.append(c)
      }
    }
    return out
  }

  /// Prometheus text exposition format 0.0.4.
  public func render() -> String {
    let (snapshot, extra) = lock.withLock { (familyOrder.map { ($0, families[$0]!) }, collectors) }
    var out = ""
    for (name, family) in snapshot {
      out += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.kind.rawValue)\n"
      for key in family.order {
        let metric = family.series[key]
        let braces = key.isEmpty ? "" : "{\(key)}"
        switch metric {
        case let c as Counter: out += "\(name)\(braces) \(c.value)\n"
        case let g as Gauge: out += "\(name)\(braces) \(g.value)\n"
        case let s as StatusCounters:
          for code in 100..<600 {
            let v = s.value(status: code)
            if v > 0 { out += "\(name){\(key.isEmpty ? "" : key + ",")code=\"\(code)\"} \(v)\n" }
          }
        case let h as Histogram:
          var cumulative = 0
          let sep = key.isEmpty ? "" : key + ","
          for (i, bound) in h.bounds.enumerated() {
            cumulative += h.cells.load(i)
            out += "\(name)_bucket{\(sep)le=\"\(bound)\"} \(cumulative)\n"
          }
          cumulative += h.cells.load(h.bounds.count)
          out += "\(name)_bucket{\(sep)le=\"+Inf\"} \(cumulative)\n"
          let sum = Double(h.cells.load(h.bounds.count + 2)) / 1_000_000
          out += "\(name)_sum\(braces) \(sum)\n\(name)_count\(braces) \(h.cells.load(h.bounds.count + 1))\n"
        default: break
        }
      }
    }
    for collector in extra { out += collector() }
    return out
  }
}

/// `process_*` metrics read from /proc at scrape time.
public enum ProcessMetrics {
  public static func render() -> String {
    var out = ""
    if let status = ProcessFiles.read("/proc/self/status") {
      for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        out += "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes \(kb * 1024)\n"
      }
    }
    if let stat = ProcessFiles.read("/proc/self/stat"), let close = stat.lastIndex(of: ")") {
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      // after ")": state is field 3 → index 0; utime = field 14 → index 11, stime → 12
      if fields.count > 12, let ut = Double(fields[11]), let st = Double(fields[12]) {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        out += "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        out += "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total \((ut + st) / ticks)\n"
      }
    }
    var fds = 0
    if let dir = opendir("/proc/self/fd") {
      while readdir(dir) != nil { fds += 1 }
      closedir(dir)
      fds = max(0, fds - 3)  // ".", ".." and the directory's own fd
    }
    out += "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds \(fds)\n"
    return out
  }

}
