import SluiceCore

/// A YAML reader for configuration files, written for Sluice instead of using Yams.
///
/// Why our own: Yams imports Foundation, which links FoundationInternationalization and 34 MB of
/// ICU data into the one binary, and its marks were all we used of it. This reader covers what
/// configuration files use — block and flow mappings and sequences, plain, single- and
/// double-quoted scalars, literal (`|`) and folded (`>`) block scalars, comments, one document —
/// and keeps the line and column of every key and value. Anchors, aliases, tags, complex keys
/// and multiple documents are refused with a clear error rather than half-supported.
///
/// It reads untrusted-shaped input (it is fuzzed by `Fuzz/FuzzConfig`): every index is checked,
/// nesting is bounded, and an error stops the parse with one diagnostic at its position.
struct YAMLReader {
  struct Failure: Error {
    var location: SourceLocation
    var message: String
  }

  let bytes: [UInt8]
  var index = 0
  var line = 1
  var column = 1
  var depth = 0
  static let maxDepth = 64

  init(_ text: String) { bytes = Array(text.utf8) }

  // MARK: - Characters

  var atEnd: Bool { index >= bytes.count }
  var current: UInt8? { index < bytes.count ? bytes[index] : nil }
  func peek(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }
  var location: SourceLocation { SourceLocation(line: line, column: column) }

  mutating func advance() {
    guard index < bytes.count else { return }
    if bytes[index] == UInt8(ascii: "\n") {
      line += 1
      column = 1
    } else if bytes[index] & 0xC0 != 0x80 {
      column += 1  // columns count characters, not UTF-8 continuation bytes
    }
    index += 1
  }

  func isBreak(_ c: UInt8?) -> Bool { c == nil || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") }
  func isBlank(_ c: UInt8?) -> Bool { c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") }

  func fail(_ message: String, at location: SourceLocation? = nil) -> Failure {
    Failure(location: location ?? self.location, message: message)
  }

  /// Skips spaces and a comment up to (not past) the end of the line.
  mutating func skipInline() {
    while isBlank(current) { advance() }
    if current == UInt8(ascii: "#") {
      while !isBreak(current) { advance() }
    }
  }

  /// Skips empty and comment-only lines; stops at the first character of the next content line.
  /// Returns false at the end of the input.
  mutating func skipToContent() throws -> Bool {
    while true {
      while current == UInt8(ascii: " ") { advance() }
      if current == UInt8(ascii: "\t") {
        // a tab after content-free indentation: only allowed on blank or comment lines
        var probe = index
        while probe < bytes.count && isBlank(bytes[probe]) { probe += 1 }
        if probe < bytes.count && !isBreak(bytes[probe]) && bytes[probe] != UInt8(ascii: "#") {
          throw fail("tabs cannot be used for indentation")
        }
      }
      skipInline()
      if atEnd { return false }
      if current == UInt8(ascii: "\r") { advance() }
      if current == UInt8(ascii: "\n") {
        advance()
        continue
      }
      return true  // at the first non-space character of a content line
    }
  }

  // MARK: - Document

  mutating func document() throws -> YNode? {
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    guard try skipToContent() else { return nil }
    if column == 1 && startsWith("---") && (isBreak(peek(3)) || isBlank(peek(3))) {
      for _ in 0..<3 { advance() }
      guard try skipToContent() else { return nil }
    }
    let root = try blockNode(indent: column, parentIndent: 0)
    if try skipToContent() {
      if column == 1 && (startsWith("---") || startsWith("...")) {
        if startsWith("...") {
          for _ in 0..<3 { advance() }
          if try !skipToContent() { return root }
        }
        throw fail("only one YAML document is supported")
      }
      throw fail("unexpected content (check the indentation)")
    }
    return root
  }

  func startsWith(_ text: StaticString) -> Bool {
    let count = text.utf8CodeUnitCount
    guard index + count <= bytes.count else { return false }
    return text.withUTF8Buffer { Array($0) == Array(bytes[index..<index + count]) }
  }

  // MARK: - Block structure

  /// A node that starts at the current position (the first content character), indented at
  /// `indent`, inside a parent indented at `parentIndent`.
  mutating func blockNode(indent: Int, parentIndent: Int) throws -> YNode {
    depth += 1
    defer { depth -= 1 }
    if depth > Self.maxDepth { throw fail("nesting is too deep") }
    if current == UInt8(ascii: "-") && (isBreak(peek(1)) || isBlank(peek(1))) {
      return try blockSequence(indent: column)
    }
    if try lineHasMappingKey() {
      return try blockMapping(indent: column)
    }
    return try inlineValue(blockIndent: parentIndent)
  }

  /// True when the current line, from here, is `key:` followed by a space or the line's end.
  func lineHasMappingKey() throws -> Bool {
    var probe = index
    guard probe < bytes.count else { return false }
    let first = bytes[probe]
    if first == UInt8(ascii: "\"") || first == UInt8(ascii: "'") {
      // a quoted key: find its end, then expect ':'
      probe += 1
      while probe < bytes.count && !isBreak(bytes[probe]) {
        if bytes[probe] == UInt8(ascii: "\\") && first == UInt8(ascii: "\"") {
          probe += 2
          continue
        }
        if bytes[probe] == first {
          if first == UInt8(ascii: "'") && probe + 1 < bytes.count && bytes[probe + 1] == first {
            probe += 2
            continue
          }
          break
        }
        probe += 1
      }
      probe += 1
      while probe < bytes.count && isBlank(bytes[probe]) { probe += 1 }
      return probe < bytes.count && bytes[probe] == UInt8(ascii: ":")
        && (probe + 1 >= bytes.count || isBlank(bytes[probe + 1]) || isBreak(bytes[probe + 1]))
    }
    if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") || first == UInt8(ascii: "|")
      || first == UInt8(ascii: ">") || first == UInt8(ascii: "#")
    {
      return false
    }
    while probe < bytes.count && !isBreak(bytes[probe]) {
      let c = bytes[probe]
      if c == UInt8(ascii: ":") && (probe + 1 >= bytes.count || isBlank(bytes[probe + 1]) || isBreak(bytes[probe + 1])) {
        return true
      }
      if c == UInt8(ascii: "#") && probe > index && isBlank(bytes[probe - 1]) { return false }
      probe += 1
    }
    return false
  }

  mutating func blockMapping(indent: Int) throws -> YNode {
    let start = location
    var pairs: [YPair] = []
    while true {
      let keyLocation = location
      let key = try mappingKey()
      // after "key:"
      skipInline()
      let value: YNode
      if isBreak(current) {
        let afterKey = location
        if try skipToContent(), column > indent {
          value = try blockNode(indent: column, parentIndent: indent)
        } else if !atEnd, column == indent, current == UInt8(ascii: "-"), isBreak(peek(1)) || isBlank(peek(1)) {
          value = try blockSequence(indent: indent)  // "key:\n- item" (sequence not indented)
        } else {
          value = .null(afterKey)
        }
      } else {
        value = try inlineValue(blockIndent: indent)
      }
      pairs.append(YPair(key: key, keyLocation: keyLocation, value: value))
      guard try skipToContent() else { break }
      if column < indent { break }
      if column > indent { throw fail("this line is indented more than the key before it") }
      if current == UInt8(ascii: "-") && (isBreak(peek(1)) || isBlank(peek(1))) { break }
      if column == 1 && (startsWith("---") || startsWith("...")) { break }  // document marker
      guard try lineHasMappingKey() else { throw fail("expected 'key: value' at this indentation") }
    }
    return .mapping(pairs, start)
  }

  /// A key and its ':'.
  mutating func mappingKey() throws -> String {
    let key: String
    if current == UInt8(ascii: "\"") || current == UInt8(ascii: "'") {
      key = try quotedScalar()
      while isBlank(current) { advance() }
    } else {
      if current == UInt8(ascii: "?") && (isBlank(peek(1)) || isBreak(peek(1))) {
        throw fail("complex mapping keys ('?') are not supported")
      }
      try refuseIndicators()
      var raw: [UInt8] = []
      while let c = current, !(c == UInt8(ascii: ":") && (isBlank(peek(1)) || isBreak(peek(1)))) {
        if isBreak(c) { throw fail("expected ':' after the key") }
        raw.append(c)
        advance()
      }
      while let last = raw.last, isBlank(last) { raw.removeLast() }
      key = String(decoding: raw, as: UTF8.self)
    }
    guard current == UInt8(ascii: ":") else { throw fail("expected ':' after the key") }
    advance()
    return key
  }

  mutating func blockSequence(indent: Int) throws -> YNode {
    let start = location
    var items: [YNode] = []
    while true {
      advance()  // '-'
      skipInline()
      if isBreak(current) {
        let afterDash = location
        if try skipToContent(), column > indent {
          items.append(try blockNode(indent: column, parentIndent: indent))
        } else {
          items.append(.null(afterDash))
        }
      } else {
        // "- key: value" (a compact mapping) or "- - x" or an inline value
        items.append(try blockNode(indent: column, parentIndent: indent))
      }
      guard try skipToContent() else { break }
      if column < indent { break }
      if column > indent { throw fail("this line is indented more than the list item before it") }
      guard current == UInt8(ascii: "-") && (isBreak(peek(1)) || isBlank(peek(1))) else { break }
    }
    return .sequence(items, start)
  }

  // MARK: - Values on one line

  mutating func refuseIndicators() throws {
    if current == UInt8(ascii: "?") && (isBlank(peek(1)) || isBreak(peek(1))) {
      throw fail("complex mapping keys ('?') are not supported")
    }
    switch current {
    case UInt8(ascii: "&"): throw fail("YAML anchors are not supported")
    case UInt8(ascii: "*"): throw fail("YAML aliases are not supported")
    case UInt8(ascii: "!"): throw fail("YAML tags are not supported")
    case UInt8(ascii: "%"), UInt8(ascii: "@"), UInt8(ascii: "`"):
      throw fail("a plain value cannot start with '\(Character(UnicodeScalar(current!)))'; quote it")
    default: break
    }
  }

  /// A value after `key:` or `- `, up to the end of its line (flow collections may span lines).
  mutating func inlineValue(blockIndent: Int) throws -> YNode {
    let start = location
    let node: YNode
    switch current {
    case UInt8(ascii: "{"), UInt8(ascii: "["):
      node = try flowNode()
    case UInt8(ascii: "\""), UInt8(ascii: "'"):
      node = .scalar(try quotedScalar(), quoted: true, start)
    case UInt8(ascii: "|"), UInt8(ascii: ">"):
      return .scalar(try blockScalar(parentIndent: blockIndent), quoted: true, start)
    default:
      try refuseIndicators()
      var raw: [UInt8] = []
      while let c = current, !isBreak(c) {
        if c == UInt8(ascii: "#") && (raw.last.map(isBlank) ?? false) { break }
        if c == UInt8(ascii: ":") && (isBlank(peek(1)) || isBreak(peek(1))) {
          throw fail("a value cannot contain ': ' unless it is quoted")
        }
        raw.append(c)
        advance()
      }
      while let last = raw.last, isBlank(last) { raw.removeLast() }
      node = Self.plain(raw, start)
    }
    skipInline()
    if !isBreak(current) { throw fail("unexpected text after the value") }
    return node
  }

  static func plain(_ raw: [UInt8], _ at: SourceLocation) -> YNode {
    let text = String(decoding: raw, as: UTF8.self)
    if ["", "~", "null", "Null", "NULL"].contains(text) { return .null(at) }
    return .scalar(text, quoted: false, at)
  }

  mutating func quotedScalar() throws -> String {
    let start = location
    let quote = current!
    advance()
    var out: [UInt8] = []
    while true {
      guard let c = current else { throw fail("this quoted string is not closed", at: start) }
      if c == quote {
        if quote == UInt8(ascii: "'") && peek(1) == quote {
          out.append(quote)
          advance()
          advance()
          continue
        }
        advance()
        break
      }
      if isBreak(c) {
        // a line break inside quotes folds into one space (blank lines into newlines)
        while let last = out.last, isBlank(last) { out.removeLast() }
        var breaks = 0
        while isBreak(current) || isBlank(current) {
          if current == UInt8(ascii: "\n") { breaks += 1 }
          if atEnd { throw fail("this quoted string is not closed", at: start) }
          advance()
        }
        out.append(contentsOf: breaks > 1 ? Array(repeating: UInt8(ascii: "\n"), count: breaks - 1) : [UInt8(ascii: " ")])
        continue
      }
      if quote == UInt8(ascii: "\"") && c == UInt8(ascii: "\\") {
        advance()
        guard let e = current else { throw fail("this quoted string is not closed", at: start) }
        advance()
        switch e {
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "0"): out.append(0x00)
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: " "): out.append(e)
        case UInt8(ascii: "u"), UInt8(ascii: "x"), UInt8(ascii: "U"):
          let digits = e == UInt8(ascii: "x") ? 2 : e == UInt8(ascii: "u") ? 4 : 8
          var value: UInt32 = 0
          for _ in 0..<digits {
            guard let h = current, let v = PathNormalizer.hexValue(h) else { throw fail("bad escape in a quoted string") }
            value = value << 4 | UInt32(v)
            advance()
          }
          guard let scalar = Unicode.Scalar(value) else { throw fail("bad escape in a quoted string") }
          out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
          throw fail("unknown escape '\\\(Character(UnicodeScalar(e)))' in a quoted string")
        }
        continue
      }
      out.append(c)
      advance()
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// `|` (literal) or `>` (folded), with an optional `-` (strip) or `+` (keep) chomping.
  mutating func blockScalar(parentIndent: Int) throws -> String {
    let folded = current == UInt8(ascii: ">")
    advance()
    var chomp: UInt8 = 0
    if current == UInt8(ascii: "-") || current == UInt8(ascii: "+") {
      chomp = current!
      advance()
    }
    if let c = current, c >= UInt8(ascii: "1") && c <= UInt8(ascii: "9") {
      throw fail("explicit indentation indicators are not supported")
    }
    skipInline()
    guard isBreak(current) else { throw fail("unexpected text after the block scalar indicator") }
    if current == UInt8(ascii: "\r") { advance() }
    advance()  // the line break
    var lines: [[UInt8]] = []
    var blockIndent = 0
    while !atEnd {
      // measure this line's indentation
      var probe = index
      while probe < bytes.count && bytes[probe] == UInt8(ascii: " ") { probe += 1 }
      let spaces = probe - index
      let blank = probe >= bytes.count || isBreak(bytes[probe])
      if !blank {
        if blockIndent == 0 {
          if spaces <= parentIndent - 1 { break }
          blockIndent = spaces
        } else if spaces < blockIndent {
          break
        }
      }
      for _ in 0..<min(spaces, blockIndent == 0 ? spaces : blockIndent) { advance() }
      var text: [UInt8] = []
      while let c = current, !isBreak(c) {
        text.append(c)
        advance()
      }
      lines.append(blank ? [] : text)
      if current == UInt8(ascii: "\r") { advance() }
      if current == UInt8(ascii: "\n") { advance() }
    }
    // the lines after the content that are blank belong to chomping
    var trailing = 0
    while let last = lines.last, last.isEmpty {
      lines.removeLast()
      trailing += 1
    }
    var out: [UInt8] = []
    for (n, text) in lines.enumerated() {
      if n > 0 {
        let previous = lines[n - 1]
        if folded && !text.isEmpty && !previous.isEmpty && text.first != UInt8(ascii: " ") {
          out.append(UInt8(ascii: " "))
        } else {
          out.append(UInt8(ascii: "\n"))
        }
      }
      out.append(contentsOf: text)
    }
    switch chomp {
    case UInt8(ascii: "-"): break
    case UInt8(ascii: "+"): out.append(contentsOf: Array(repeating: UInt8(ascii: "\n"), count: trailing + (lines.isEmpty ? 0 : 1)))
    default: if !lines.isEmpty { out.append(UInt8(ascii: "\n")) }
    }
    // put the reader back at the start of the next content line's indentation
    return String(decoding: out, as: UTF8.self)
  }

  // MARK: - Flow collections

  /// Skips spaces, line breaks and comments inside a flow collection.
  mutating func skipFlowSpace() {
    while true {
      skipInline()
      if isBreak(current) && !atEnd {
        advance()
        continue
      }
      return
    }
  }

  mutating func flowNode() throws -> YNode {
    depth += 1
    defer { depth -= 1 }
    if depth > Self.maxDepth { throw fail("nesting is too deep") }
    let start = location
    switch current {
    case UInt8(ascii: "{"):
      advance()
      var pairs: [YPair] = []
      skipFlowSpace()
      while current != UInt8(ascii: "}") {
        guard !atEnd else { throw fail("this '{' is not closed", at: start) }
        let keyLocation = location
        let key: String
        if current == UInt8(ascii: "\"") || current == UInt8(ascii: "'") {
          key = try quotedScalar()
        } else {
          try refuseIndicators()
          key = String(decoding: flowPlain(), as: UTF8.self)
          if key.isEmpty { throw fail("expected a key") }
        }
        skipFlowSpace()
        var value: YNode = .null(location)
        if current == UInt8(ascii: ":") {
          advance()
          skipFlowSpace()
          if current != UInt8(ascii: ",") && current != UInt8(ascii: "}") {
            value = try flowValue()
          }
          skipFlowSpace()
        }
        pairs.append(YPair(key: key, keyLocation: keyLocation, value: value))
        if current == UInt8(ascii: ",") {
          advance()
          skipFlowSpace()
        } else if current != UInt8(ascii: "}") {
          throw fail(atEnd ? "this '{' is not closed" : "expected ',' or '}'", at: atEnd ? start : nil)
        }
      }
      advance()
      return .mapping(pairs, start)
    default:  // "["
      advance()
      var items: [YNode] = []
      skipFlowSpace()
      while current != UInt8(ascii: "]") {
        guard !atEnd else { throw fail("this '[' is not closed", at: start) }
        items.append(try flowValue())
        skipFlowSpace()
        if current == UInt8(ascii: ",") {
          advance()
          skipFlowSpace()
        } else if current != UInt8(ascii: "]") {
          throw fail(atEnd ? "this '[' is not closed" : "expected ',' or ']'", at: atEnd ? start : nil)
        }
      }
      advance()
      return .sequence(items, start)
    }
  }

  mutating func flowValue() throws -> YNode {
    let start = location
    switch current {
    case UInt8(ascii: "{"), UInt8(ascii: "["): return try flowNode()
    case UInt8(ascii: "\""), UInt8(ascii: "'"): return .scalar(try quotedScalar(), quoted: true, start)
    default:
      try refuseIndicators()
      let raw = flowPlain()
      if current == UInt8(ascii: ":") && (isBlank(peek(1)) || isBreak(peek(1))) {
        throw fail("a single-pair mapping inside a list needs braces: [ { key: value } ]")
      }
      return Self.plain(raw, start)
    }
  }

  /// A plain scalar inside a flow collection: ends at `,` `[` `]` `{` `}`, at `: `, or at a
  /// comment or line end.
  mutating func flowPlain() -> [UInt8] {
    var raw: [UInt8] = []
    while let c = current, !isBreak(c) {
      // `${env:NAME}` / `${file:/path}` stay one scalar inside a flow collection (SPEC §2
      // writes `keys: { partner-a: ${env:PARTNER_A_KEY} }`), braces and colon included.
      if c == UInt8(ascii: "$") && peek(1) == UInt8(ascii: "{") {
        while let d = current, !isBreak(d) {
          raw.append(d)
          advance()
          if d == UInt8(ascii: "}") { break }
        }
        continue
      }
      if c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: "[")
        || c == UInt8(ascii: "{")
      {
        break
      }
      if c == UInt8(ascii: ":") && (isBlank(peek(1)) || isBreak(peek(1)) || peek(1) == UInt8(ascii: ",")) { break }
      if c == UInt8(ascii: "#") && (raw.last.map(isBlank) ?? false) { break }
      raw.append(c)
      advance()
    }
    while let last = raw.last, isBlank(last) { raw.removeLast() }
    return raw
  }
}
