import SluiceCore
import SluiceFeatures

/// `sluice routes`: the route table, and the explain form for one request.
public enum RouteTable {
  public struct Problem: Error, Sendable { public var text: String }

  public static func table(_ config: SluiceConfiguration) -> String {
    var rows: [[String]] = [["LISTENER", "ROUTE", "HOST", "PATH", "METHODS", "HEADERS", "TARGET"]]
    for listener in config.listeners {
      for route in listener.routes {
        var host = route.match.host?.description ?? "*"
        if let name = route.match.serverName { host += " sni=\(name)" }
        rows.append([
          "\(listener.name) (\(listener.listen), \(listener.protocol))", route.name, host,
          route.match.path?.description ?? "*", route.match.methods?.sorted().joined(separator: ",") ?? "*",
          route.match.headers.isEmpty ? "-" : route.match.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ","),
          target(route.action),
        ])
      }
    }
    var widths = Array(repeating: 0, count: rows[0].count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    var out = ""
    for row in rows {
      out += row.enumerated().map { i, cell in
        i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
      }.joined(separator: "  ")
      out += "\n"
    }
    return out
  }

  static func target(_ action: RouteAction) -> String {
    switch action {
    case .backend(let b): return "backend \(b)"
    case .split(let parts): return "split " + parts.map { "\($0.backend):\($0.weight)" }.joined(separator: ",")
    case .directResponse(let d): return "direct_response \(d.status)"
    }
  }

  public static func explain(
    _ config: SluiceConfiguration, method: String, url: String, headers: [(String, String)], serverName: String? = nil
  ) -> Result<String, Problem> {
    var rest = Substring(url)
    var port: Int?
    var host = ""
    var https = false
    if let scheme = rest.firstRange(of: "://") {
      https = rest[..<scheme.lowerBound].lowercased() == "https"
      rest = rest[scheme.upperBound...]
      let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
      let authority = rest[..<authorityEnd]
      rest = rest[authorityEnd...]
      host = String(authority)
      if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"), let p = Int(authority[authority.index(after: colon)...]) {
        port = p
      }
    }
    // An https client sends the URL's host as its server name (SNI), unless told otherwise.
    let urlHost = HostName.canonicalHost(host)
    let sni = serverName.map { $0.lowercased() } ?? (https && IPAddress.parse(urlHost) == nil ? urlHost : nil)
    if let given = headers.first(where: { $0.0.lowercased() == "host" }) { host = given.1 }
    let target = rest.isEmpty ? "/" : String(rest)
    guard case .success(let normalized) = PathNormalizer.normalize(target) else {
      return .failure(Problem(text: "the URL's path is not acceptable: the gateway would answer 400"))
    }
    let request = RouteRequest(
      method: method, host: HostName.canonicalHost(host), path: normalized.path, headers: HeaderList(headers),
      serverName: sni)
    let listeners = config.listeners.filter { port == nil || $0.listen.port == port }
    guard !listeners.isEmpty else { return .failure(Problem(text: "no listener on port \(port ?? 0)")) }
    var out = "request: \(method) host=\(request.host.isEmpty ? "-" : request.host) path=\(normalized.path)"
    out += sni.map { " server_name=\($0)\n" } ?? "\n"
    for listener in listeners {
      let router = Router(listener.routes.map { Router<RouteConfig>.Entry(name: $0.name, match: $0.match, payload: $0) })
      out += "listener \(listener.name) (\(listener.listen)):\n"
      var chosen: RouteConfig?
      for (entry, (_, mismatch)) in zip(router.entries, router.explain(request)) {
        if let mismatch {
          out += "  - \(entry.name): no match: \(mismatch)\n"
        } else {
          out += "  + \(entry.name): MATCH\n"
          chosen = entry.payload
          break
        }
      }
      if let route = chosen {
        out += "  => route \(route.name) → \(self.target(route.action))"
        if let rw = route.rewrite, rw.rewritesPath { out += ", upstream path \(rw.apply(to: normalized.path))" }
        if let h = route.rewrite?.host { out += ", host \(h)" }
        if !route.requestHeaders.isEmpty { out += ", request headers edited" }
        if !route.responseHeaders.isEmpty { out += ", response headers edited" }
        out += ", timeout \(route.timeout)\n"
        // The admission list, in the order the request meets it.
        var steps: [String] = []
        if route.cors != nil { steps.append("cors (preflight answered here)") }
        if !route.auth.isEmpty { steps.append("auth: any of \(route.auth.joined(separator: ", "))") }
        if let policy = route.authorize { steps.append("authorize: \(policy)") }
        for name in route.rateLimit {
          if let l = config.rateLimits.first(where: { $0.name == name }) {
            steps.append("rate_limit: \(name) (\(l.limit) per \(l.per) by \(l.key), \(l.store))")
          }
        }
        if !steps.isEmpty { out += "     admission: " + steps.joined(separator: " → ") + "\n" }
        if case .backend(let b) = route.action, let backend = config.backend(named: b) {
          out += "     backend \(b): \(backend.loadBalancing) over \(backend.endpoints.map(\.description).joined(separator: ", "))\n"
        }
      } else {
        out += "  => no route: the gateway would answer 404 no_route\n"
      }
    }
    return .success(out)
  }
}
