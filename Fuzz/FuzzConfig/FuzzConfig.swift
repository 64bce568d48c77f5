import SluiceConfig
import SluiceCore

/// libFuzzer entry point for the config loader: arbitrary bytes as YAML must yield a config
/// or diagnostics, never a trap. Built by `Fuzz/run.sh` with `-sanitize=fuzzer,address`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  let result = ConfigLoader.load(text: text, file: "fuzz.yaml", environment: ["A": "1"])
  if let config = result.configuration {
    _ = ConfigJSON.render(config).rendered()
    _ = RouteTable.table(config)
    _ = Compiler.compile(config, state: PersistentState())
  }
  return 0
}

#if !SLUICE_FUZZ
  /// Without libFuzzer: replays the files given as arguments (a corpus or a crash).
  @main struct Replay {
    static func main() {
      for path in CommandLine.arguments.dropFirst() {
        guard let text = ProcessFiles.read(path) else { continue }
        var bytes = Array(text.utf8)
        _ = fuzzConfig(&bytes, bytes.count)
      }
    }
  }
#endif

#if SLUICE_FUZZ
  // SwiftPM links an executable's entry point as `FuzzConfig_main`; hand control to libFuzzer's driver.
  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
  ) -> CInt

  @_cdecl("FuzzConfig_main")
  public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &vector) { fuzzConfig($0, $1) }
  }
#endif
