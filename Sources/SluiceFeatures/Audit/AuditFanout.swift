/// One sink and the events it takes.
public struct AuditRoute: Sendable {
  public let events: Set<AuditEventKind>
  public let sink: any AuditPublisher

  public init(events: Set<AuditEventKind>, sink: any AuditPublisher) {
    self.events = events
    self.sink = sink
  }
}

/// The audit event bus of one config generation: immutable, so publishing takes no lock here
/// (each sink's bounded queue has its own).
public final class AuditFanout: Sendable {
  public let routes: [AuditRoute]

  public init(_ routes: [AuditRoute] = []) { self.routes = routes }

  public var isEmpty: Bool { routes.isEmpty }

  public func wants(_ kind: AuditEventKind) -> Bool { routes.contains { $0.events.contains(kind) } }

  public func publish(_ event: AuditEvent) {
    for route in routes where route.events.contains(event.kind) { route.sink.publish(event) }
  }
}
