import SluiceCore
import XCTest

@testable import SluiceConfig

/// The YAML subset configuration files use, with positions; and the refusals.
final class YAMLReaderTests: XCTestCase {
  func parse(_ text: String) throws -> YNode? {
    var reader = YAMLReader(text)
    return try reader.document()
  }

  func failure(_ text: String) -> String? {
    var reader = YAMLReader(text)
    do {
      _ = try reader.document()
      return nil
    } catch let f as YAMLReader.Failure {
      return "\(f.location.line):\(f.location.column): \(f.message)"
    } catch {
      return "\(error)"
    }
  }

  /// A compact rendering: {k:v}, [a,b], 'quoted', plain, ~ for null.
  func render(_ node: YNode?) -> String {
    switch node {
    case nil: return "nil"
    case .null: return "~"
    case .scalar(let s, let quoted, _): return quoted ? "'\(s)'" : s
    case .sequence(let items, _): return "[" + items.map(render).joined(separator: ",") + "]"
    case .mapping(let pairs, _): return "{" + pairs.map { "\($0.key):\(render($0.value))" }.joined(separator: ",") + "}"
    }
  }

  func testBlockStructures() throws {
    let text = """
      # comment
      version: 1
      listeners:
        - name: a   # trailing comment
          listen: "127.0.0.1:80"
          routes:
          - { name: r, match: { path: /x }, backend: b }
          - backend: c
        -
          name: b
      empty:
      list: [1, two, 'three', [4]]

      """
    XCTAssertEqual(
      render(try parse(text)),
      "{version:1,listeners:[{name:a,listen:'127.0.0.1:80',routes:[{name:r,match:{path:/x},backend:b},{backend:c}]},{name:b}],empty:~,list:[1,two,'three',[4]]}"
    )
  }

  func testPositions() throws {
    guard case .mapping(let pairs, let at) = try parse("a: 1\nb:\n  - x\n  - { c: \"d\" }\n") else { return XCTFail() }
    XCTAssertEqual(at, SourceLocation(line: 1, column: 1))
    XCTAssertEqual(pairs[0].value.location, SourceLocation(line: 1, column: 4))
    XCTAssertEqual(pairs[1].keyLocation, SourceLocation(line: 2, column: 1))
    guard case .sequence(let items, let seqAt) = pairs[1].value else { return XCTFail() }
    XCTAssertEqual(seqAt, SourceLocation(line: 3, column: 3))
    XCTAssertEqual(items[0].location, SourceLocation(line: 3, column: 5))
    guard case .mapping(let inner, let innerAt) = items[1] else { return XCTFail() }
    XCTAssertEqual(innerAt, SourceLocation(line: 4, column: 5))
    XCTAssertEqual(inner[0].keyLocation, SourceLocation(line: 4, column: 7))
    XCTAssertEqual(inner[0].value.location, SourceLocation(line: 4, column: 10))
  }

  func testScalars() throws {
    XCTAssertEqual(
      render(try parse("a: 'it''s'\nb: \"tab\\there\\u00e9\"\nc: plain text # c\nd: ~\ne: null\nf: \"\"\n")),
      "{a:'it's',b:'tab\there\u{e9}',c:plain text,d:~,e:~,f:''}")
    XCTAssertEqual(render(try parse("url: http://x:80/y\nk: a#b\n")), "{url:http://x:80/y,k:a#b}")
    XCTAssertEqual(render(try parse("q: \"multi\n  line\"\n")), "{q:'multi line'}")
  }

  func testBlockScalars() throws {
    XCTAssertEqual(render(try parse("body: |\n  line 1\n  line 2\nnext: x\n")), "{body:'line 1\nline 2\n',next:x}")
    XCTAssertEqual(render(try parse("body: |-\n  a\n\n  b\n\nnext: x\n")), "{body:'a\n\nb',next:x}")
    XCTAssertEqual(render(try parse("body: >\n  folded\n  text\n")), "{body:'folded text\n'}")
    XCTAssertEqual(render(try parse("- |\n  in a list\n- x\n")), "['in a list\n',x]")
  }

  func testFlowAcrossLines() throws {
    XCTAssertEqual(render(try parse("a: { b: 1,\n  c: [2,\n  3], # c\n  d: }\n")), "{a:{b:1,c:[2,3],d:~}}")
  }

  func testDocumentMarkersAndEmpty() throws {
    XCTAssertEqual(render(try parse("---\na: 1\n...\n")), "{a:1}")
    XCTAssertNil(try parse("# only a comment\n\n"))
    XCTAssertEqual(render(try parse("\u{FEFF}a: 1\r\nb: 2\r\n")), "{a:1,b:2}")
  }

  func testRefusals() {
    XCTAssertEqual(failure("a: &x 1\n"), "1:4: YAML anchors are not supported")
    XCTAssertEqual(failure("a: *x\n"), "1:4: YAML aliases are not supported")
    XCTAssertEqual(failure("a: !!str 1\n"), "1:4: YAML tags are not supported")
    XCTAssertEqual(failure("a: 1\n---\nb: 2\n"), "2:1: only one YAML document is supported")
    XCTAssertEqual(failure("a:\n\tb: 1\n"), "2:1: tabs cannot be used for indentation")
    XCTAssertEqual(failure("a: [1, 2\n"), "1:4: this '[' is not closed")
    XCTAssertEqual(failure("a: \"open\n"), "1:4: this quoted string is not closed")
    XCTAssertEqual(failure("a: b: c\n"), "1:5: a value cannot contain ': ' unless it is quoted")
    XCTAssertEqual(failure("a: 1\n  b: 2\n"), "2:3: this line is indented more than the key before it")
    XCTAssertEqual(failure("a: [x: 1]\n"), "1:6: a single-pair mapping inside a list needs braces: [ { key: value } ]")
    XCTAssertEqual(failure("? complex\n"), "1:1: complex mapping keys ('?') are not supported")
    XCTAssertEqual(failure("a: \"x\" y\n"), "1:8: unexpected text after the value")
    XCTAssertEqual(render(try? parse("a: 1 ]\n")), "{a:1 ]}")  // `]` is plain text in block context
  }

  func testDeepNestingIsRefusedNotCrashing() {
    let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
    XCTAssertEqual(failure("a: \(deep)\n")?.hasSuffix("nesting is too deep"), true)
  }
}
