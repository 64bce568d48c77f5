import SluiceCore
import SluiceFeatures

/// libFuzzer entry point for the ClientHello parser (the first bytes of every connection to a
/// `tls_passthrough` or `https` listener, before any TLS library sees them): no input may
/// trap, every prefix of a parsed hello asks for more bytes, and a parsed server name is a
/// lower-case host name.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientHello(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard case .hello(let info) = ClientHelloParser.parse(bytes) else { return 0 }
  if let name = info.serverName {
    guard !name.isEmpty, name.utf8.allSatisfy({ !($0 >= 65 && $0 <= 90) && $0 > 0x20 && $0 < 0x7F }) else {
      fatalError("server name '\(name)' is not a lower-case host name")
    }
  }
  _ = info.highestVersion
  return 0
}

#if SLUICE_FUZZ
  // SwiftPM links an executable's entry point as `FuzzClientHello_main`; hand control to libFuzzer's driver.
  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
  ) -> CInt

  @_cdecl("FuzzClientHello_main")
  public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &vector) { fuzzClientHello($0, $1) }
  }
#else
  @main struct Replay {
    static func main() {
      for path in CommandLine.arguments.dropFirst() {
        guard let text = ProcessFiles.read(path) else { continue }
        var bytes = Array(text.utf8)
        _ = fuzzClientHello(&bytes, bytes.count)
      }
    }
  }
#endif
