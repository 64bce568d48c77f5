"""Builds browser.hex: a ClientHello shaped like Chrome 131's (extension order and sizes from
its JA4 fingerprint): GREASE cipher suites, extensions, groups and versions (RFC 8701), an
X25519MLKEM768 key share (so the hello is ~1.8 KB and spans TCP segments), ALPS, and a GREASE
encrypted_client_hello (0xfe0d) whose outer SNI is the public name. Deterministic bytes."""
import random, struct
r = random.Random(131)
def u8(x): return struct.pack("!B", x)
def u16(x): return struct.pack("!H", x)
def vec16(b): return u16(len(b)) + b
def vec8(b): return u8(len(b)) + b
def ext(t, data): return u16(t) + vec16(data)
grease = [0x0A0A + 0x1010 * i for i in range(16)]
g = r.sample(grease, 4)
name = b"www.Example.COM"
sni = ext(0, vec16(u8(0) + vec16(name)))
exts = [
    ext(g[0], b""),
    ext(0x002d, vec8(u8(1))),                                         # psk_key_exchange_modes
    ext(0x0033, vec16(u16(g[1]) + vec16(b"\0") + u16(0x11EC) + vec16(bytes(r.getrandbits(8) for _ in range(1216))) + u16(0x001d) + vec16(bytes(32)))),
    ext(0x0010, vec16(vec8(b"h2") + vec8(b"http/1.1"))),              # ALPN
    ext(0xfe0d, u8(0) + u16(1) + u16(1) + u8(r.getrandbits(8)) + vec16(bytes(32)) + vec16(bytes(r.getrandbits(8) for _ in range(208)))),
    ext(0x0017, b""),
    ext(0x44cd, vec16(vec8(b"h2"))),                                  # ALPS
    sni,
    ext(0x000b, vec8(b"\0")),
    ext(0x000a, vec16(u16(g[1]) + u16(0x11EC) + u16(0x1d) + u16(0x17) + u16(0x18))),
    ext(0x002b, vec8(u16(g[2]) + u16(0x0304) + u16(0x0303))),        # supported_versions
    ext(0xff01, u8(0)),
    ext(0x0023, b""),
    ext(0x0012, b""),
    ext(0x0005, u8(1) + u16(0) + u16(0)),
    ext(0x000d, vec16(b"".join(u16(x) for x in [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]))),
    ext(0x001b, vec8(u16(2))),
    ext(g[3], u8(0)),
]
suites = [g[0], 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
body = u16(0x0303) + bytes(r.getrandbits(8) for _ in range(32)) + vec8(bytes(r.getrandbits(8) for _ in range(32)))
body += vec16(b"".join(u16(s) for s in suites)) + vec8(b"\0") + vec16(b"".join(exts))
hs = u8(1) + struct.pack("!I", len(body))[1:] + body
record = u8(0x16) + u16(0x0301) + vec16(hs)
open("browser.hex", "w").write(record.hex() + "\n")
print(len(record))
