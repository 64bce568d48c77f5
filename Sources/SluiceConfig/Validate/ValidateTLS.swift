import SluiceCore
import SluiceFeatures

/// Listener and backend `tls` sections. Certificates and keys are loaded here (relative paths
/// are relative to the config file), so a missing file, an unreadable PEM or a key that does
/// not match its certificate is an error at its line, and an expired certificate a warning.
extension Validator {
  mutating func listenerTLS(_ node: YNode, _ what: String) -> ListenerTLS? {
    guard
      let m = reader.mapping(node, "\(what).tls", known: ["certificates", "handshake_timeout", "min_version"])
    else { return nil }
    var out = ListenerTLS()
    if let n = m["handshake_timeout"]?.value, let d = reader.duration(n, "tls.handshake_timeout") {
      out.handshakeTimeout = d
    }
    if let n = m["min_version"]?.value, let text = reader.string(n, "tls.min_version") {
      if text == "1.2" || text == "1.3" {
        out.minVersion = text
      } else {
        reader.error(n.location, "tls.min_version must be \"1.2\" or \"1.3\", got '\(text)'")
      }
    }
    guard let n = m["certificates"]?.value else {
      reader.error(node.location, "\(what).tls needs 'certificates' (a list of { cert, key, server_names })")
      return out
    }
    guard let items = reader.list(n, "\(what).tls.certificates") else { return out }
    if items.isEmpty { reader.error(n.location, "\(what).tls.certificates must list at least one certificate") }
    for item in items {
      guard let c = reader.mapping(item, "\(what) certificate", known: ["cert", "key", "server_names"]) else { continue }
      guard let certNode = c["cert"]?.value, let keyNode = c["key"]?.value else {
        reader.error(item.location, "\(what): each certificate needs 'cert' and 'key' (PEM files)")
        continue
      }
      guard let certText = reader.string(certNode, "cert"), let keyText = reader.string(keyNode, "key") else { continue }
      let certPath = resolve(certText)
      let keyPath = resolve(keyText)
      var entry = ListenerTLS.Certificate(
        certPath: certPath, keyPath: keyPath, serverNames: [], location: item.location, material: nil)
      if let names = c["server_names"]?.value, let list = reader.stringList(names, "server_names") {
        for (text, loc) in list {
          if let name = ServerNameTable<Int>.name(text) {
            entry.serverNames.append(name)
          } else {
            reader.error(loc, "'\(text)' is not a server name (a host name or a '*.example.com' wildcard)")
          }
        }
      }
      guard ProcessFiles.read(certPath, limit: 1 << 20) != nil else {
        reader.error(certNode.location, "\(what): cannot read certificate file '\(certText)'")
        continue
      }
      guard ProcessFiles.read(keyPath, limit: 1 << 20) != nil else {
        reader.error(keyNode.location, "\(what): cannot read key file '\(keyText)'")
        continue
      }
      switch TLSLoader.server(certPath: certPath, keyPath: keyPath, minVersion: out.minVersion) {
      case .failure(let problem):
        let at = problem.message.hasPrefix("cannot load private key") ? keyNode.location : certNode.location
        reader.error(at, "\(what): \(problem.message)")
      case .success(let material):
        entry.material = material
        if c["server_names"] == nil {
          entry.serverNames = material.dnsNames.compactMap { ServerNameTable<Int>.name($0) }
        }
        let now = Int(WallClock.nowMilliseconds() / 1000)
        if material.notValidAfter < now {
          reader.warning(
            certNode.location, "\(what): certificate '\(certText)' expired on \(Self.date(material.notValidAfter))")
        } else if material.notValidAfter < now + 14 * 86400 {
          reader.warning(
            certNode.location, "\(what): certificate '\(certText)' expires on \(Self.date(material.notValidAfter))")
        }
      }
      out.certificates.append(entry)
    }
    return out
  }

  mutating func backendTLS(_ node: YNode, _ what: String) -> BackendTLS? {
    guard
      let m = reader.mapping(node, "\(what).tls", known: ["ca", "server_name", "cert", "key", "verify"])
    else { return nil }
    var out = BackendTLS()
    for key in ["ca", "cert", "key"] {
      guard let n = m[key]?.value, let text = reader.string(n, "tls.\(key)") else { continue }
      let path = resolve(text)
      if ProcessFiles.read(path, limit: 1 << 20) == nil {
        reader.error(n.location, "\(what): cannot read tls.\(key) file '\(text)'")
        return nil
      }
      switch key {
      case "ca": out.ca = path
      case "cert": out.certPath = path
      default: out.keyPath = path
      }
    }
    if (out.certPath == nil) != (out.keyPath == nil) {
      reader.error(node.location, "\(what).tls: a client certificate needs both 'cert' and 'key'")
      return nil
    }
    if let n = m["server_name"]?.value, let text = reader.string(n, "tls.server_name") {
      if Self.isHostName(text.lowercased()) {
        out.serverName = text.lowercased()
      } else {
        reader.error(n.location, "\(what): tls.server_name must be a host name, got '\(text)'")
      }
    }
    if let n = m["verify"]?.value, let verify = reader.bool(n, "tls.verify") {
      out.verify = verify
      if !verify {
        reader.warning(n.location, "\(what): tls.verify is false: the upstream's certificate is not checked")
      }
    }
    switch TLSLoader.client(out) {
    case .failure(let problem): reader.error(node.location, "\(what): \(problem.message)")
    case .success(let context): out.context = context
    }
    return out
  }

  static func date(_ seconds: Int) -> String {
    String(WallClock.rfc3339(milliseconds: Int64(seconds) * 1000).prefix(10))
  }
}
