/// The configuration `sluice serve` runs without `--config`: a new user sees it work in one
/// command (SPEC section 1).
public enum EmbeddedConfig {
  public static let fileName = "<embedded>"
  public static let yaml = """
    version: 1
    admin:
      listen: 127.0.0.1:9901
    listeners:
      - name: public
        listen: 0.0.0.0:8080
        routes:
          - name: echo
            match: { path: /echo }
            direct_response: { status: 200, echo: true }
          - name: hello
            match: { path: / }
            direct_response: { status: 200, body: "Hello from Sluice!\\n" }
    observability:
      access_log: { format: json, output: stdout }

    """
}
