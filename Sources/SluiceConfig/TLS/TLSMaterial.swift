import NIOSSL
import SluiceCore
import SluiceFeatures

/// A listener's `tls` section, with its certificates already loaded: a certificate that does
/// not load is a `validate` error with its line, so a config that validates can serve.
public struct ListenerTLS: Sendable {
  public struct Certificate: Sendable {
    public var certPath: String
    public var keyPath: String
    /// The names this certificate answers; `server_names` when given, else the DNS names of
    /// the certificate itself.
    public var serverNames: [RouteMatch.Host]
    public var location: SourceLocation
    public var material: ServerCertificate?
  }

  public var certificates: [Certificate] = []
  public var handshakeTimeout = ConfigDuration.seconds(10)
  /// "1.2" or "1.3": the oldest version offered (the newest is always 1.3).
  public var minVersion = "1.2"

  /// Every file the section reads: the reload watcher watches them too.
  public var files: [String] { certificates.flatMap { [$0.certPath, $0.keyPath] } }
}

/// One loaded certificate: its chain, key and a TLS context that serves it. The context is
/// shared by every connection that is handed this certificate (BoringSSL contexts are
/// thread-safe), and holds the session cache and ticket keys for resumption.
public final class ServerCertificate: Sendable {
  public let context: NIOSSLContext
  /// Seconds since 1970 of the leaf's `notAfter`.
  public let notValidAfter: Int
  /// DNS names of the leaf (subjectAltName), lower-cased.
  public let dnsNames: [String]

  init(context: NIOSSLContext, notValidAfter: Int, dnsNames: [String]) {
    self.context = context
    self.notValidAfter = notValidAfter
    self.dnsNames = dnsNames
  }
}

/// A backend's `tls` section: how Sluice speaks TLS to its endpoints.
public struct BackendTLS: Sendable {
  public var ca: String?
  /// The name sent as SNI and verified against the upstream's certificate; nil: the
  /// endpoint's host (for an IP endpoint, no SNI and the IP is verified).
  public var serverName: String?
  public var certPath: String?
  public var keyPath: String?
  /// `verify: false` turns verification off (tests, self-signed labs); `validate` warns.
  public var verify = true
  public var context: NIOSSLContext?

  public var files: [String] { [ca, certPath, keyPath].compactMap { $0 } }

  /// What tells two backends' upstream TLS apart in the connection pool key.
  public var poolKey: String {
    "tls|\(serverName ?? "")|\(ca ?? "")|\(certPath ?? "")|\(verify)"
  }
}

/// Loads PEM certificates and keys through swift-nio-ssl. Runs at validate time (the CLI and
/// every reload, on the control queue, never on an event loop: it reads files).
public enum TLSLoader {
  public static func server(certPath: String, keyPath: String, minVersion: String) -> Result<ServerCertificate, LoadError> {
    let chain: [NIOSSLCertificate]
    do {
      chain = try NIOSSLCertificate.fromPEMFile(certPath)
    } catch {
      return .failure(LoadError("cannot load certificate '\(certPath)': \(describe(error))"))
    }
    guard let leaf = chain.first else { return .failure(LoadError("no certificate in '\(certPath)'")) }
    let key: NIOSSLPrivateKey
    do {
      key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
    } catch {
      return .failure(LoadError("cannot load private key '\(keyPath)': \(describe(error))"))
    }
    var configuration = TLSConfiguration.makeServerConfiguration(
      certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    configuration.minimumTLSVersion = minVersion == "1.3" ? .tlsv13 : .tlsv12
    configuration.maximumTLSVersion = .tlsv13
    configuration.cipherSuites = Self.tls12CipherSuites
    // HTTP/2 is offered once Sluice speaks it; until then ALPN settles on http/1.1.
    configuration.applicationProtocols = ["http/1.1"]
    let context: NIOSSLContext
    do {
      context = try NIOSSLContext(configuration: configuration)
    } catch {
      return .failure(LoadError("the key '\(keyPath)' does not match the certificate '\(certPath)' (\(describe(error)))"))
    }
    var names: [String] = []
    for name in leaf._subjectAlternativeNames() where name.nameType == .dnsName {
      names.append(String(decoding: name.contents, as: UTF8.self).lowercased())
    }
    return .success(ServerCertificate(context: context, notValidAfter: Int(leaf.notValidAfter), dnsNames: names))
  }

  /// TLS 1.2 suites (1.3 has its own, all AEAD): forward-secret key exchange and AEAD only,
  /// Mozilla's "intermediate" list. swift-nio-ssl's default also offers RSA key exchange and
  /// CBC suites.
  static let tls12CipherSuites = [
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
  ].joined(separator: ":")

  public static func client(_ tls: BackendTLS) -> Result<NIOSSLContext, LoadError> {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.minimumTLSVersion = .tlsv12
    configuration.applicationProtocols = ["http/1.1"]
    if let ca = tls.ca {
      do {
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
      } catch {
        return .failure(LoadError("cannot load CA bundle '\(ca)': \(describe(error))"))
      }
    }
    if !tls.verify { configuration.certificateVerification = .none }
    if let certPath = tls.certPath, let keyPath = tls.keyPath {
      do {
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certPath).map { .certificate($0) }
      } catch {
        return .failure(LoadError("cannot load client certificate '\(certPath)': \(describe(error))"))
      }
      do {
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
      } catch {
        return .failure(LoadError("cannot load client key '\(keyPath)': \(describe(error))"))
      }
    }
    do {
      return .success(try NIOSSLContext(configuration: configuration))
    } catch {
      return .failure(LoadError("cannot use the upstream TLS settings: \(describe(error))"))
    }
  }

  public struct LoadError: Error, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
  }

  static func describe(_ error: any Error) -> String {
    if let ssl = error as? NIOSSLError {
      switch ssl {
      case .failedToLoadCertificate: return "not a PEM certificate"
      case .failedToLoadPrivateKey: return "not a PEM private key"
      default: return "\(ssl)"
      }
    }
    return "\(error)"
  }
}
