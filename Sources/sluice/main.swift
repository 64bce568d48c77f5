import ArgumentParser
import SluiceApp
import SluiceConfig
import SluiceCore
import SluiceFeatures

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The `sluice` command line (SPEC section 1). Thin: each command calls into the library.
struct Sluice: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sluice",
    abstract: "A lightweight API gateway and sidecar proxy.",
    subcommands: [Serve.self, Validate.self, Routes.self, ConfigCommand.self, Version.self])
}

func stderrLine(_ text: String) {
  let line = text + "\n"
  line.withCString { _ = write(2, $0, strlen($0)) }
}

enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
  case trace, debug, info, warning, error
}

struct Serve: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the gateway (with no --config: the embedded default on :8080, admin on 127.0.0.1:9901).")

  @Option(name: .long, help: "The configuration file.")
  var config: String?

  @Option(name: .long, help: "An etcd URL holding the configuration (not supported yet).")
  var etcd: String?

  @Option(name: .long, help: "Where an etcd-fed replica keeps its last applied config.")
  var stateDir: String?

  @Option(name: .long, help: "trace, debug, info, warning or error.")
  var logLevel: LogLevelOption = .info

  func run() throws {
    if etcd != nil || stateDir != nil {
      stderrLine("sluice: --etcd and --state-dir are not supported yet by this version of Sluice")
      throw ExitCode(1)
    }
    Log.setLevel(Log.Level.allCases.first { $0.name == logLevel.rawValue } ?? .info)
    let code = Gateway(options: .init(configPath: config)).run()
    throw ExitCode(code)
  }
}

struct Validate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check a configuration file; print each problem as FILE:LINE:COL: message.")

  @Option(name: .long, help: "The configuration file.")
  var config: String

  func run() throws {
    let result = ConfigLoader.load(file: config, environment: ProcessFiles.environment())
    for diagnostic in result.diagnostics { stderrLine(diagnostic.description) }
    guard let configuration = result.configuration else {
      stderrLine("\(config): invalid (\(result.errors.count) error(s))")
      throw ExitCode(1)
    }
    let routes = configuration.listeners.reduce(0) { $0 + $1.routes.count }
    print(
      "\(config): valid (\(configuration.listeners.count) listener(s), \(routes) route(s), \(configuration.backends.count) backend(s))"
    )
  }
}

struct Routes: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print the route table, or explain which route a request would take.",
    discussion: "sluice routes --config FILE GET http://api.example.com/users/7 -H 'x-api-version: 2'")

  @Option(name: .long, help: "The configuration file.")
  var config: String

  @Argument(help: "A method and URL to explain.")
  var request: [String] = []

  @Option(name: [.customShort("H"), .long], help: "A request header 'Name: value' (repeatable).")
  var header: [String] = []

  @Option(name: .long, help: "The TLS server name (SNI) the client sends; default: an https URL's host.")
  var serverName: String?

  func run() throws {
    let result = ConfigLoader.load(file: config, environment: ProcessFiles.environment())
    guard let configuration = result.configuration else {
      for diagnostic in result.errors { stderrLine(diagnostic.description) }
      throw ExitCode(1)
    }
    if request.isEmpty {
      print(RouteTable.table(configuration), terminator: "")
      return
    }
    guard request.count == 2 else {
      stderrLine("sluice routes: give a METHOD and a URL, e.g. GET http://localhost:8080/users")
      throw ExitCode(1)
    }
    var headers: [(String, String)] = []
    for h in header {
      guard let colon = h.firstIndex(of: ":") else {
        stderrLine("sluice routes: header '\(h)' must be 'Name: value'")
        throw ExitCode(1)
      }
      headers.append((String(h[..<colon]).trimmingASCIIWhitespace(), String(h[h.index(after: colon)...]).trimmingASCIIWhitespace()))
    }
    switch RouteTable.explain(
      configuration, method: request[0].uppercased(), url: request[1], headers: headers, serverName: serverName)
    {
    case .success(let text): print(text, terminator: "")
    case .failure(let message):
      stderrLine("sluice routes: \(message.text)")
      throw ExitCode(1)
    }
  }
}

struct ConfigCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "config", abstract: "Manage a fleet's configuration in etcd.", subcommands: [Push.self])

  struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate, then store the config in etcd (not supported yet).")
    @Option(name: .long) var etcd: String
    @Option(name: .long) var config: String
    func run() throws {
      stderrLine("sluice config push: etcd is not supported yet by this version of Sluice")
      throw ExitCode(1)
    }
  }
}

struct Version: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print version, git revision, Swift version and build date.")
  func run() throws {
    print("sluice \(BuildInfo.version)")
    print("revision: \(BuildInfo.revision)")
    print("swift: \(BuildInfo.swiftVersion)")
    print("built: \(BuildInfo.buildDate)")
  }
}

// argument-parser exits with 64 for usage errors; SPEC says 1 for invalid arguments.
do {
  var command = try Sluice.parseAsRoot()
  try command.run()
} catch {
  let code = Sluice.exitCode(for: error)
  if code == .success {
    Sluice.exit(withError: error)
  }
  let message = Sluice.fullMessage(for: error)
  if !message.isEmpty { stderrLine(message) }
  if code.rawValue == 64 { exit(1) }
  exit(code.rawValue)
}
