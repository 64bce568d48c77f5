import SluiceCore

/// libFuzzer entry point for the Redis reply parser (bytes from a store that may be broken or
/// not Redis at all): no input may trap, a parsed reply never claims more bytes than it was
/// given, and feeding the same bytes one at a time gives the same reply (replies arrive split
/// at any byte).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  let parser = RESPParser()
  guard case .value(let whole, let consumed)? = try? parser.parse(bytes) else { return 0 }
  guard consumed <= bytes.count else { fatalError("consumed \(consumed) of \(bytes.count) bytes") }
  for cut in 0..<consumed where cut % 7 == 0 || cut == consumed - 1 {
    guard case .needMore? = try? parser.parse(Array(bytes[..<cut])) else {
      fatalError("a prefix of a complete reply did not ask for more bytes (cut \(cut))")
    }
  }
  guard case .value(let again, consumed)? = try? parser.parse(Array(bytes[..<consumed])), again == whole else {
    fatalError("the reply changed when parsed alone")
  }
  _ = whole.errorCode
  return 0
}

#if SLUICE_FUZZ
  // SwiftPM links an executable's entry point as `FuzzRESP_main`; hand control to libFuzzer's driver.
  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
  ) -> CInt

  @_cdecl("FuzzRESP_main")
  public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &vector) { fuzzRESP($0, $1) }
  }
#else
  @main struct Replay {
    static func main() {
      for path in CommandLine.arguments.dropFirst() {
        guard let text = ProcessFiles.read(path) else { continue }
        var bytes = Array(text.utf8)
        _ = fuzzRESP(&bytes, bytes.count)
      }
    }
  }
#endif
