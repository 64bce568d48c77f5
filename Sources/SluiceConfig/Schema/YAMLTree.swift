import SluiceCore

/// The YAML document as a small tree that keeps every node's line and column (built by
/// `YAMLReader`), so diagnostics can point at the key or value they are about.
public indirect enum YNode: Sendable {
  case scalar(String, quoted: Bool, SourceLocation)
  case mapping([YPair], SourceLocation)
  case sequence([YNode], SourceLocation)
  case null(SourceLocation)

  public var location: SourceLocation {
    switch self {
    case .scalar(_, _, let l), .mapping(_, let l), .sequence(_, let l), .null(let l): l
    }
  }

  public var kindName: String {
    switch self {
    case .scalar: "a scalar"
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .null: "null"
    }
  }
}

public struct YPair: Sendable {
  public var key: String
  public var keyLocation: SourceLocation
  public var value: YNode
}

/// Turns YAML text into a `YNode` tree, applying `${env:NAME}` and `${file:PATH}` substitution
/// to every scalar. Problems go into `diagnostics`; a syntax error yields nil.
public struct YAMLLoader {
  public var file: String
  public var baseDirectory: String
  public var environment: [String: String]
  public var diagnostics: [Diagnostic] = []

  public init(file: String, baseDirectory: String, environment: [String: String]) {
    self.file = file
    self.baseDirectory = baseDirectory
    self.environment = environment
  }

  public mutating func load(_ text: String) -> YNode? {
    var reader = YAMLReader(text)
    let node: YNode?
    do {
      node = try reader.document()
    } catch let failure as YAMLReader.Failure {
      diagnostics.append(
        Diagnostic(
          file: file, line: failure.location.line, column: failure.location.column,
          message: "YAML syntax error: \(failure.message)"))
      return nil
    } catch {
      diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)"))
      return nil
    }
    guard let node else {
      diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "the configuration is empty"))
      return nil
    }
    return resolve(node)
  }

  /// Substitutes `${…}` in every scalar and drops duplicate keys (reporting them).
  mutating func resolve(_ node: YNode) -> YNode {
    switch node {
    case .scalar(let text, let quoted, let location):
      return .scalar(substitute(text, at: location), quoted: quoted, location)
    case .null:
      return node
    case .sequence(let items, let location):
      return .sequence(items.map { resolve($0) }, location)
    case .mapping(let pairs, let location):
      var out: [YPair] = []
      var seen: [String: SourceLocation] = [:]
      for pair in pairs {
        if let first = seen[pair.key] {
          diagnostics.append(
            Diagnostic(
              file: file, line: pair.keyLocation.line, column: pair.keyLocation.column,
              message: "duplicate key '\(pair.key)' (first at line \(first.line))"))
          continue
        }
        seen[pair.key] = pair.keyLocation
        out.append(YPair(key: pair.key, keyLocation: pair.keyLocation, value: resolve(pair.value)))
      }
      return .mapping(out, location)
    }
  }

  /// Replaces each `${env:NAME}` and `${file:PATH}`. A missing variable or unreadable file is an
  /// error (the secret must never silently become empty).
  mutating func substitute(_ text: String, at location: SourceLocation) -> String {
    guard text.contains("${") else { return text }
    var out = ""
    var rest = Substring(text)
    while let start = rest.range(of: "${") {
      out += rest[rest.startIndex..<start.lowerBound]
      guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
        out += rest[start.lowerBound...]
        rest = ""
        break
      }
      let reference = rest[start.upperBound..<end]
      rest = rest[rest.index(after: end)...]
      if reference.hasPrefix("env:") {
        let name = String(reference.dropFirst(4))
        if let value = environment[name] {
          out += value
        } else {
          diagnostics.append(
            Diagnostic(file: file, line: location.line, column: location.column, message: "environment variable '\(name)' is not set"))
        }
      } else if reference.hasPrefix("file:") {
        var path = String(reference.dropFirst(5))
        if !path.hasPrefix("/") { path = baseDirectory + "/" + path }
        if let content = ProcessFiles.read(path) {
          var value = content
          while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
          out += value
        } else {
          diagnostics.append(Diagnostic(file: file, line: location.line, column: location.column, message: "cannot read file '\(path)'"))
        }
      } else {
        diagnostics.append(
          Diagnostic(
            file: file, line: location.line, column: location.column,
            message: "unknown substitution '${\(reference)}' (use ${env:NAME} or ${file:PATH})"))
      }
    }
    out += rest
    return out
  }
}

extension Substring {
  fileprivate func range(of needle: String) -> Range<Index>? { firstRange(of: needle) }
}
