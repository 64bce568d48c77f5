// The parser's types are internal to SluiceProxy, so this target needs `@testable`, which only
// debug builds allow. A release build (`swift build -c release`, as the README's quick start
// does) compiles the stub at the end instead; Fuzz/run.sh builds debug.
#if DEBUG
  import NIOCore
  import SluiceCore

  @testable import SluiceProxy

  /// libFuzzer entry point for Sluice's HTTP/1 parser, the code that reads every client and
  /// upstream byte: the first input byte picks requests or responses and the read size, the rest
  /// is fed in pieces through `HeadReader`, `HeadParser` and `BodyDecoder` as the handlers do.
  /// No input may trap, and the body bytes that come out can never exceed the bytes that went in.
  @_cdecl("LLVMFuzzerTestOneInput")
  public func fuzzHTTP1(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let control = data[0]
    let requests = control & 1 == 0
    let piece = Int(control >> 1) + 1
    var reader = HeadReader(requests: requests)
    var body = BodyDecoder()
    var bodyBytes = 0
    var offset = 1
    while offset < size {
      let end = min(size, offset + piece)
      var buffer = ByteBuffer(bytes: UnsafeBufferPointer(start: data + offset, count: end - offset))
      offset = end
      while buffer.readableBytes > 0 {
        if !body.isDone {
          do {
            guard let event = try body.next(&buffer) else { break }
            if case .data(let data) = event { bodyBytes += data.readableBytes }
          } catch {
            return 0
          }
          continue
        }
        switch reader.take(&buffer, limit: 4096) {
        case .incomplete: break
        case .bareLF, .notHTTP, .tooLarge: return 0
        case .head(let head):
          if requests {
            guard case .success(let request) = HeadParser.parseRequest(head, maxHeaders: 50, maxURIBytes: 2048) else { return 0 }
            _ = request.fields.connectionTokens()
            _ = request.fields.first("host")
            body = request.transferEncodingInvalid ? BodyDecoder() : BodyDecoder(request.framing)
          } else {
            guard case .success(let response) = HeadParser.parseResponse(head, requestWasHEAD: control & 2 != 0, maxHeaders: 50)
            else { return 0 }
            _ = response.fields.values("connection")
            body = BodyDecoder(response.framing)
          }
        }
      }
    }
    var empty = ByteBuffer()
    if body.finishAtClose() { _ = try? body.next(&empty) }
    precondition(bodyBytes <= size, "more body bytes out than input bytes in")
    return 0
  }

  #if !SLUICE_FUZZ
    @main struct Replay {
      static func main() {
        for path in CommandLine.arguments.dropFirst() {
          guard let text = ProcessFiles.read(path) else { continue }
          var bytes = Array(text.utf8)
          _ = fuzzHTTP1(&bytes, bytes.count)
        }
      }
    }
  #endif

  #if SLUICE_FUZZ
    // SwiftPM links an executable's entry point as `FuzzHTTP1_main`; hand control to libFuzzer's driver.
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
      _ argc: UnsafeMutablePointer<CInt>,
      _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
      _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    @_cdecl("FuzzHTTP1_main")
    public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
      var count = argc
      var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
      return LLVMFuzzerRunDriver(&count, &vector) { fuzzHTTP1($0, $1) }
    }
  #endif
#else
  @main struct ReleaseStub {
    static func main() {
      print("FuzzHTTP1 is built in debug by Fuzz/run.sh (it needs @testable access to SluiceProxy)")
    }
  }
#endif
