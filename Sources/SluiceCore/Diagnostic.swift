/// A problem found in user input (a config file, a CLI argument), with the place it points at.
///
/// Diagnostics are collected, never thrown one at a time: `sluice validate` must show every
/// error of a file in one run, each as `FILE:LINE:COL: message` (1-based).
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
  public enum Severity: String, Sendable, Hashable { case error, warning }

  public var file: String
  public var line: Int
  public var column: Int
  public var message: String
  public var severity: Severity

  public init(file: String, line: Int, column: Int, message: String, severity: Severity = .error) {
    self.file = file
    self.line = line
    self.column = column
    self.message = message
    self.severity = severity
  }

  public var description: String {
    let prefix = severity == .warning ? "warning: " : ""
    return "\(file):\(line):\(column): \(prefix)\(message)"
  }
}

/// A position in a source file (1-based line and column).
public struct SourceLocation: Sendable, Hashable {
  public var line: Int
  public var column: Int
  public init(line: Int, column: Int) {
    self.line = line
    self.column = column
  }
  public static let unknown = SourceLocation(line: 1, column: 1)
}
