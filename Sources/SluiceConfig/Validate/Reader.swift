import SluiceCore

/// Reads typed values out of `YNode`s, collecting every problem instead of stopping at the
/// first. An unknown key points at the key; a bad value points at the value.
struct Reader {
  let file: String
  var diagnostics: [Diagnostic] = []

  init(file: String) { self.file = file }

  /// One error per place: a value that already failed (say, a missing `${env:…}`) is not
  /// reported again by the checks that read it afterwards.
  mutating func error(_ at: SourceLocation, _ message: String) {
    if diagnostics.contains(where: { $0.severity == .error && $0.line == at.line && $0.column == at.column }) { return }
    diagnostics.append(Diagnostic(file: file, line: at.line, column: at.column, message: message))
  }

  mutating func warning(_ at: SourceLocation, _ message: String) {
    diagnostics.append(Diagnostic(file: file, line: at.line, column: at.column, message: message, severity: .warning))
  }

  /// A mapping's pairs, checking keys against `known` and `later` (keys of sections that a
  /// later version implements: rejected with "not supported yet" rather than ignored).
  mutating func mapping(
    _ node: YNode, _ what: String, known: [String], later: [String] = []
  ) -> [String: YPair]? {
    guard case .mapping(let pairs, _) = node else {
      error(node.location, "\(what) must be a mapping, not \(node.kindName)")
      return nil
    }
    var out: [String: YPair] = [:]
    for pair in pairs {
      if known.contains(pair.key) {
        out[pair.key] = pair
      } else if later.contains(pair.key) {
        error(pair.keyLocation, "'\(pair.key)' in \(what) is not supported yet by this version of Sluice")
      } else {
        let hint = Self.closest(pair.key, in: known).map { " (did you mean '\($0)'?)" } ?? ""
        error(pair.keyLocation, "unknown key '\(pair.key)' in \(what)\(hint)")
      }
    }
    return out
  }

  mutating func list(_ node: YNode, _ what: String) -> [YNode]? {
    guard case .sequence(let items, _) = node else {
      error(node.location, "\(what) must be a list, not \(node.kindName)")
      return nil
    }
    return items
  }

  mutating func string(_ node: YNode, _ what: String) -> String? {
    guard case .scalar(let value, _, _) = node else {
      error(node.location, "\(what) must be a string, not \(node.kindName)")
      return nil
    }
    return value
  }

  mutating func int(_ node: YNode, _ what: String, min: Int = Int.min, max: Int = Int.max) -> Int? {
    guard case .scalar(let text, let quoted, let loc) = node, !quoted, let value = Int(text) else {
      error(node.location, "\(what) must be an integer")
      return nil
    }
    if value < min || value > max {
      let range = max == Int.max ? "at least \(min)" : "between \(min) and \(max)"
      error(loc, "\(what) must be \(range), got \(value)")
      return nil
    }
    return value
  }

  mutating func bool(_ node: YNode, _ what: String) -> Bool? {
    if case .scalar(let text, false, _) = node {
      if text == "true" { return true }
      if text == "false" { return false }
    }
    error(node.location, "\(what) must be true or false")
    return nil
  }

  mutating func duration(_ node: YNode, _ what: String, allowZero: Bool = false) -> ConfigDuration? {
    guard let text = string(node, what) else { return nil }
    guard let value = ConfigDuration.parse(text) else {
      error(node.location, "\(what) must be a duration with a unit (250ms, 2s, 1m, 1h), got '\(text)'")
      return nil
    }
    if value.nanoseconds == 0 && !allowZero {
      error(node.location, "\(what) must be greater than 0")
      return nil
    }
    return value
  }

  mutating func size(_ node: YNode, _ what: String) -> ByteSize? {
    let text: String
    if case .scalar(let t, _, _) = node {
      text = t
    } else {
      error(node.location, "\(what) must be a size (512B, 32KiB, 10MiB)")
      return nil
    }
    guard let value = ByteSize.parse(text) else {
      error(node.location, "\(what) must be a size with a unit (512B, 32KiB, 10MiB), got '\(text)'")
      return nil
    }
    if value.bytes == 0 {
      error(node.location, "\(what) must be greater than 0")
      return nil
    }
    return value
  }

  mutating func stringMap(_ node: YNode, _ what: String) -> [(String, String, SourceLocation)]? {
    guard case .mapping(let pairs, _) = node else {
      error(node.location, "\(what) must be a mapping, not \(node.kindName)")
      return nil
    }
    var out: [(String, String, SourceLocation)] = []
    for pair in pairs {
      if let value = string(pair.value, "\(what).\(pair.key)") { out.append((pair.key, value, pair.keyLocation)) }
    }
    return out
  }

  mutating func stringList(_ node: YNode, _ what: String) -> [(String, SourceLocation)]? {
    guard let items = list(node, what) else { return nil }
    var out: [(String, SourceLocation)] = []
    for item in items {
      if let value = string(item, "an entry of \(what)") { out.append((value, item.location)) }
    }
    return out
  }

  /// The closest known key within edit distance 2, for "did you mean".
  static func closest(_ key: String, in known: [String]) -> String? {
    var best: (String, Int)?
    for candidate in known {
      let d = editDistance(Array(key.utf8), Array(candidate.utf8))
      if d <= 2 && d < (best?.1 ?? Int.max) { best = (candidate, d) }
    }
    return best?.0
  }

  static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
      var current = [i] + Array(repeating: 0, count: b.count)
      for j in 1...b.count {
        current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
      }
      previous = current
    }
    return previous[b.count]
  }
}
