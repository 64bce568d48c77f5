import Crypto
import Foundation
import SluiceCore
import SluiceFeatures
import XCTest

@testable import SluiceConfig

/// Listener and backend `tls`, loaded for real from the example certificates (examples/certs).
final class TLSConfigTests: XCTestCase {
  static let certs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("examples/certs").path

  func load(_ yaml: String) -> LoadResult {
    ConfigLoader.load(text: yaml, file: Self.certs + "/test.yaml", environment: [:])
  }

  func https(_ certificates: String, extra: String = "") -> String {
    """
    version: 1
    listeners:
      - name: web
        listen: 127.0.0.1:8443
        protocol: https
        tls:
          certificates:
    \(certificates)
    \(extra)
        routes:
          - { name: r, direct_response: { status: 200 } }
    """
  }

  func testServerNamesComeFromTheCertificateUnlessGiven() throws {
    let result = load(https("        - { cert: example.pem, key: example.key }"))
    let tls = try XCTUnwrap(result.configuration?.listeners.first?.tls)
    XCTAssertEqual(tls.certificates[0].serverNames.map(\.description), ["api.example.com", "*.example.com", "localhost"])
    XCTAssertNotNil(tls.certificates[0].material)
    XCTAssertEqual(tls.minVersion, "1.2")
    XCTAssertEqual(tls.handshakeTimeout, .seconds(10))
    XCTAssertEqual(tls.files, [Self.certs + "/example.pem", Self.certs + "/example.key"])

    let named = load(
      https("        - { cert: example.pem, key: example.key, server_names: [Shop.Example.org] }", extra: "      min_version: \"1.3\""))
    XCTAssertEqual(named.configuration?.listeners.first?.tls?.certificates[0].serverNames, [.exact("shop.example.org")])
    XCTAssertEqual(named.configuration?.listeners.first?.tls?.minVersion, "1.3")
  }

  func testAKeyThatDoesNotMatchItsCertificateIsAnErrorAtTheKey() throws {
    let keyPath = NSTemporaryDirectory() + "/sluice-other-\(UUID().uuidString).key"
    try P256.Signing.PrivateKey().pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: keyPath) }
    let result = load(https("        - { cert: example.pem, key: \(keyPath) }"))
    XCTAssertNil(result.configuration)
    XCTAssertEqual(result.errors.count, 1)
    XCTAssertTrue(result.errors[0].message.contains("does not match the certificate"), result.errors[0].message)
    XCTAssertEqual(result.errors[0].line, 8)
  }

  func testNotAPEMCertificate() {
    let result = load(https("        - { cert: README.md, key: example.key }"))
    XCTAssertTrue(result.errors.first?.message.contains("cannot load certificate") == true, "\(result.errors)")
  }

  func testCertificateSelectorPrefersExactThenWildcardThenTheFirst() throws {
    let keyPath = Self.certs + "/example.key"
    let result = load(
      https(
        """
                - { cert: example.pem, key: \(keyPath), server_names: [a.example.com] }
                - { cert: example.pem, key: \(keyPath), server_names: ["*.example.com"] }
                - { cert: example.pem, key: \(keyPath), server_names: [b.example.com] }
        """))
    let tls = try XCTUnwrap(result.configuration?.listeners.first?.tls)
    let m = tls.certificates.map { try! XCTUnwrap($0.material) }
    let selector = try XCTUnwrap(CertificateSelector(tls))
    XCTAssertTrue(selector.select("a.example.com") === m[0])
    XCTAssertTrue(selector.select("b.example.com") === m[2])  // exact beats the earlier wildcard
    XCTAssertTrue(selector.select("c.example.com") === m[1])
    XCTAssertTrue(selector.select("other.org") === m[0])  // the default: the first
    XCTAssertTrue(selector.select(nil) === m[0])
  }

  func testBackendTLSAndItsPoolKey() throws {
    let result = load(
      """
      version: 1
      listeners:
        - name: web
          listen: 127.0.0.1:8080
          routes:
            - { name: a, match: { path_prefix: /a }, backend: a }
            - { name: b, match: { path_prefix: /b }, backend: b }
            - { name: c, backend: c }
      backends:
        a: { endpoints: [127.0.0.1:9000], tls: { ca: ca.pem, server_name: Users.Internal } }
        b: { endpoints: [127.0.0.1:9000], tls: { ca: ca.pem, verify: false } }
        c: { endpoints: [127.0.0.1:9000] }
      """)
    let config = try XCTUnwrap(result.configuration, "\(result.diagnostics)")
    XCTAssertEqual(config.backend(named: "a")?.tls?.serverName, "users.internal")
    XCTAssertEqual(result.warnings.count, 1)  // verify: false
    let graph = Compiler.compile(config, state: PersistentState())
    let keys = ["a", "b", "c"].map { graph.backends[$0]!.endpoints[0].poolKey }
    XCTAssertEqual(Set(keys).count, 3)  // one address, three pools
    XCTAssertEqual(keys[2], "127.0.0.1:9000")
    XCTAssertEqual(graph.backends["a"]!.endpoints[0].tls?.serverName, "users.internal")
    XCTAssertNil(graph.backends["b"]!.endpoints[0].tls?.serverName)  // an IP: no SNI
  }

  func testPassthroughRoutesMatchOnServerNameOnly() throws {
    let result = load(
      """
      version: 1
      listeners:
        - name: edge
          listen: 127.0.0.1:9443
          protocol: tls_passthrough
          routes:
            - { name: a, match: { server_name: a.example.com }, backend: a }
            - { name: wild, match: { server_name: "*.example.com" }, split: [{ backend: a, weight: 1 }, { backend: b, weight: 1 }] }
            - { name: rest, backend: b }
      backends:
        a: { protocol: tcp, endpoints: [127.0.0.1:9001] }
        b: { protocol: tcp, endpoints: [127.0.0.1:9002] }
      """)
    let config = try XCTUnwrap(result.configuration, "\(result.diagnostics)")
    let graph = Compiler.compile(config, state: PersistentState())
    let listener = try XCTUnwrap(graph.listeners["edge"])
    func route(_ name: String?) -> String? {
      listener.router.payload(RouteRequest(method: "", host: "", path: "/", headers: HeaderList([]), serverName: name))?.name
    }
    XCTAssertEqual(route("a.example.com"), "a")
    XCTAssertEqual(route("x.example.com"), "wild")
    XCTAssertEqual(route("example.com"), "rest")
    XCTAssertEqual(route(nil), "rest")
    XCTAssertEqual(Set(listener.tcp.keys), ["", "a", "b"])
  }
}
