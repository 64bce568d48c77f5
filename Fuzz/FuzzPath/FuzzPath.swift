import SluiceCore
import SluiceFeatures

/// libFuzzer entry point for request-target normalisation and the header helpers that read
/// client bytes: no input may trap, and normalising twice must give the same result.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPath(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  for merge in [false, true] {
    if case .success(let target) = PathNormalizer.normalize(text, mergeSlashes: merge) {
      guard case .success(let again) = PathNormalizer.normalize(target.uri, mergeSlashes: merge), again == target else {
        fatalError("normalisation is not idempotent for \(text.debugDescription)")
      }
      _ = PathRewrite(stripPrefix: "/a", addPrefix: "/b").apply(to: target.path)
    }
  }
  _ = HostName.canonicalHost(text)
  _ = HeaderRules.connectionTokens([text])
  _ = CIDR(text)
  _ = Hashing.cookie("s", in: text)
  return 0
}

#if SLUICE_FUZZ
  // SwiftPM links an executable's entry point as `FuzzPath_main`; hand control to libFuzzer's driver.
  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
  ) -> CInt

  @_cdecl("FuzzPath_main")
  public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &vector) { fuzzPath($0, $1) }
  }
#else
  @main struct Replay {
    static func main() {
      for path in CommandLine.arguments.dropFirst() {
        guard let text = ProcessFiles.read(path) else { continue }
        var bytes = Array(text.utf8)
        _ = fuzzPath(&bytes, bytes.count)
      }
    }
  }
#endif
