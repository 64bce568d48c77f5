import NIOCore
import NIOSSL
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// An audit webhook: events go into a bounded queue (`queue`), a sender on one event loop
/// POSTs them (one JSON object, or an array of up to `batch`), retrying a failed POST with
/// jittered exponential backoff (`retries` times), each POST under `timeout`. A dead, slow or
/// erroring receiver never slows a request or grows memory: when the queue is full new events
/// are dropped and counted in `sluice_audit_events_dropped_total{sink}`, as are batches that
/// used up their retries.
public final class WebhookSink: AuditPublisher, @unchecked Sendable {
  // Safe: `lock` guards `queue` and `sending`; the rest is touched only on `eventLoop`.
  public let config: AuditSinkConfig
  let url: HTTPURL
  let eventLoop: any EventLoop
  let lock = Mutex()
  var queue: [AuditEvent] = []
  var head = 0
  var sending = false
  var stopped = false
  var tls: NIOSSLContext?
  let dropped: Counter
  let delivered: Counter
  var random = FastRandom()

  public init?(config: AuditSinkConfig, eventLoop: any EventLoop, metrics: MetricsRegistry) {
    guard let url = HTTPURL.parse(config.url) else { return nil }
    self.config = config
    self.url = url
    self.eventLoop = eventLoop
    dropped = metrics.counter(
      "sluice_audit_events_dropped_total", help: "Audit events dropped: queue full or delivery failed.",
      labels: [("sink", config.name)])
    delivered = metrics.counter(
      "sluice_audit_events_delivered_total", help: "Audit events delivered to a sink.", labels: [("sink", config.name)])
    if url.tls { tls = try? OneShotHTTPClient.tlsContext(caFile: nil) }
  }

  public func publish(_ event: AuditEvent) {
    let (accepted, start) = lock.withLock { () -> (Bool, Bool) in
      if stopped || queue.count - head >= config.queue { return (false, false) }
      queue.append(event)
      if sending { return (true, false) }
      sending = true
      return (true, true)
    }
    if !accepted { dropped.increment() }
    if start { eventLoop.execute { self.sendNext(attempt: 0, batch: nil) } }
  }

  /// Pending events (for tests and /metrics).
  public var pending: Int { lock.withLock { queue.count - head } }

  public func stop() { lock.withLock { stopped = true } }

  func takeBatch() -> [AuditEvent]? {
    lock.withLock {
      let available = queue.count - head
      if available == 0 || stopped {
        sending = false
        queue.removeAll(keepingCapacity: false)
        head = 0
        return nil
      }
      let n = min(available, config.batch)
      let batch = Array(queue[head..<(head + n)])
      head += n
      if head > 1024 && head * 2 > queue.count {
        queue.removeFirst(head)
        head = 0
      }
      return batch
    }
  }

  func sendNext(attempt: Int, batch pending: [AuditEvent]?) {
    guard let batch = pending ?? takeBatch() else { return }
    let body: JSONValue = config.batch == 1 ? batch[0].json : .array(batch.map(\.json))
    OneShotHTTPClient.request(
      method: .POST, url: url, headers: [("content-type", "application/json")], body: Array(body.rendered().utf8),
      timeout: .nanoseconds(config.timeout.nanoseconds), maxBody: 64 * 1024, tls: tls, on: eventLoop
    ).whenComplete { result in
      var ok = false
      if case .success(let response) = result, (200..<300).contains(response.status) { ok = true }
      if ok {
        self.delivered.increment(by: batch.count)
        self.sendNext(attempt: 0, batch: nil)
        return
      }
      if attempt >= self.config.retries {
        self.dropped.increment(by: batch.count)
        Log.warning("audit webhook failed; events dropped", [("sink", self.config.name), ("events", String(batch.count))])
        self.sendNext(attempt: 0, batch: nil)
        return
      }
      // 100 ms doubling, capped at 5 s, with full jitter.
      let cap = min(5_000, 100 << min(attempt, 6))
      let delay = Int64(self.random.next() % UInt64(cap)) + 1
      self.eventLoop.scheduleTask(in: .milliseconds(delay)) {
        self.sendNext(attempt: attempt + 1, batch: batch)
      }
    }
  }
}
