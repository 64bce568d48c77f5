import SluiceCore
import Yams

/// The YAML document as a small tree that keeps every node's line and column. It is the only
/// place Yams is touched; the rest of the config code reads `YNode`s, so diagnostics can point
/// at the key or value they are about.
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
    let node: Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      diagnostics.append(Self.diagnostic(for: error, file: file))
      return nil
    } catch {
      diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)"))
      return nil
    }
    guard let node else {
      diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "the configuration is empty"))
      return nil
    }
    return convert(node, depth: 0)
  }

  static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
      let what = context.map { "\($0.text) " } ?? ""
      return Diagnostic(file: file, line: mark.line, column: mark.column, message: "YAML syntax error: \(what)\(problem)")
    case .composer(let context, let problem, let mark, _):
      let what = context.map { "\($0.text) " } ?? ""
      return Diagnostic(file: file, line: mark.line, column: mark.column, message: "YAML error: \(what)\(problem)")
    default:
      return Diagnostic(file: file, line: 1, column: 1, message: "YAML error: \(error)")
    }
  }

  mutating func convert(_ node: Node, depth: Int) -> YNode {
    let location = node.mark.map { SourceLocation(line: $0.line, column: $0.column) } ?? .unknown
    if depth > 64 {
      diagnostics.append(Diagnostic(file: file, line: location.line, column: location.column, message: "nesting is too deep"))
      return .null(location)
    }
    switch node {
    case .scalar(let scalar):
      let plain = scalar.style == .plain || scalar.style == .any
      if plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string) { return .null(location) }
      return .scalar(substitute(scalar.string, at: location), quoted: !plain, location)
    case .mapping(let mapping):
      var pairs: [YPair] = []
      var seen: [String: SourceLocation] = [:]
      for (key, value) in mapping {
        let keyLocation = key.mark.map { SourceLocation(line: $0.line, column: $0.column) } ?? location
        guard case .scalar(let k) = key else {
          diagnostics.append(
            Diagnostic(file: file, line: keyLocation.line, column: keyLocation.column, message: "a key must be a plain string"))
          continue
        }
        if let first = seen[k.string] {
          diagnostics.append(
            Diagnostic(
              file: file, line: keyLocation.line, column: keyLocation.column,
              message: "duplicate key '\(k.string)' (first at line \(first.line))"))
          continue
        }
        seen[k.string] = keyLocation
        pairs.append(YPair(key: k.string, keyLocation: keyLocation, value: convert(value, depth: depth + 1)))
      }
      return .mapping(pairs, location)
    case .sequence(let sequence):
      return .sequence(sequence.map { convert($0, depth: depth + 1) }, location)
    case .alias:
      diagnostics.append(Diagnostic(file: file, line: location.line, column: location.column, message: "YAML aliases are not supported"))
      return .null(location)
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
