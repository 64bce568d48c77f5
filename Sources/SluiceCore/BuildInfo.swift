/// What `sluice version` and `sluice_build_info` report. `make release` generates
/// `GeneratedBuildInfo.swift` (git revision, build date, compiler) and compiles it in with
/// `-DSLUICE_GENERATED_BUILD_INFO`; a plain `swift build` uses the fallback below.
public enum BuildInfo {
  public static let version = "0.1.0"
  public static var revision: String { GeneratedBuildInfo.revision }
  public static var buildDate: String { GeneratedBuildInfo.date }
  public static var swiftVersion: String { GeneratedBuildInfo.swift }
}

#if !SLUICE_GENERATED_BUILD_INFO
  enum GeneratedBuildInfo {
    static let revision = "unknown"
    static let date = "unknown"
    #if compiler(>=6.3)
      static let swift = "6.3 or later"
    #else
      static let swift = "6.x"
    #endif
  }
#endif
