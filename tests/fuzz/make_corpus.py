#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into corpus/<target>/, from the protocol documentation.

Run it again after changing it (`python3 tests/fuzz/make_corpus.py`); the files are committed. Inputs a fuzz
run finds are not: only add one here (or a file under corpus/) when it reproduces a bug that was fixed.
Layouts follow each target's header comment: frontend and backend inputs start with a knob byte and an
8-byte chunking seed, error_response and scram inputs with a mode byte.
"""
import base64
import hashlib
import hmac
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
ROOT = os.path.dirname(os.path.dirname(HERE))


def i16(v):
    return struct.pack("!h", v)


def i32(v):
    return struct.pack("!i", v)


def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def msg(t, body=b""):
    return t.encode() + i32(len(body) + 4) + body


def startup_packet(params, major=3, minor=0):
    body = i32((major << 16) | minor) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return i32(len(body) + 4) + body


SSL_REQUEST = i32(8) + i32((1234 << 16) | 5679)
GSSENC_REQUEST = i32(8) + i32((1234 << 16) | 5680)
CANCEL_REQUEST = i32(16) + i32((1234 << 16) | 5678) + i32(4242) + i32(-559038737)


def stream_input(knobs, seed, stream):
    return bytes([knobs]) + struct.pack("!Q", seed) + stream


# ---- frontend messages ----
def query(sql):
    return msg("Q", cstr(sql))


def parse(name, sql, types=()):
    return msg("P", cstr(name) + cstr(sql) + i16(len(types)) + b"".join(i32(t) for t in types))


def bind(portal, stmt, params):
    body = cstr(portal) + cstr(stmt) + i16(1) + i16(0) + i16(len(params))
    for p in params:
        body += i32(-1) if p is None else i32(len(p)) + p
    return msg("B", body + i16(1) + i16(0))


def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))


def execute(portal, rows=0):
    return msg("E", cstr(portal) + i32(rows))


SYNC = msg("S")
FLUSH = msg("H")
TERMINATE = msg("X")


def md5_response(password, user, salt):
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


def sasl_initial(mechanism, data):
    return msg("p", cstr(mechanism) + (i32(-1) if data is None else i32(len(data)) + data))


CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
CLIENT_FIRST = "n,,n=,r=" + CLIENT_NONCE
SERVER_NONCE = "3rfcNHYJY1ZVvWVs7j"  # scram_fuzz's fixed server nonce
FUZZ_SALT = b"fuzz-salt-16byte"


def scram_final(password, salt, iterations, client_first_bare, server_first, gs2=b"n,,"):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    nonce = server_first.split(",")[0][2:]
    without_proof = "c=" + base64.b64encode(gs2).decode() + ",r=" + nonce
    auth = ",".join([client_first_bare, server_first, without_proof]).encode()
    signature = hmac.new(stored_key, auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return without_proof + ",p=" + base64.b64encode(proof).decode()


def scram_secret(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


# ---- backend messages ----
def auth(code, extra=b""):
    return msg("R", i32(code) + extra)


def param_status(name, value):
    return msg("S", cstr(name) + cstr(value))


def ready(status="I"):
    return msg("Z", status.encode())


def row_description(columns):
    body = i16(len(columns))
    for name, oid in columns:
        body += cstr(name) + i32(0) + i16(0) + i32(oid) + i16(4) + i32(-1) + i16(0)
    return msg("T", body)


def data_row(values):
    body = i16(len(values))
    for v in values:
        body += i32(-1) if v is None else i32(len(v)) + v
    return msg("D", body)


def command_complete(tag):
    return msg("C", cstr(tag))


def error_fields(fields):
    return b"".join(code.encode() + cstr(value) for code, value in fields) + b"\0"


PG_ERROR = [("S", "ERROR"), ("V", "ERROR"), ("C", "42P01"), ("M", 'relation "nope" does not exist'),
            ("P", "15"), ("F", "parse_relation.c"), ("L", "1392"), ("R", "parserOpenTable")]
PG_FATAL = [("S", "FATAL"), ("V", "FATAL"), ("C", "57P01"),
            ("M", "terminating connection due to administrator command")]
OLD_SERVER_ERROR = [("S", "ERROR"), ("C", "22012"), ("M", "division by zero")]
NOTICE = [("S", "NOTICE"), ("V", "NOTICE"), ("C", "00000"), ("M", "table \"t\" does not exist, skipping")]
POOLER_ERROR = [("S", "ERROR"), ("V", "ERROR"), ("C", "53300"),
                ("M", 'pool "app/app" limit of size 5 overflow 10 reached, connection timed out, timeout 30.00'),
                ("D", "detail"), ("H", "raise pool_size")]

LOGIN = (auth(0) + param_status("server_version", "16.2") + param_status("client_encoding", "UTF8")
         + param_status("DateStyle", "ISO, MDY") + param_status("TimeZone", "UTC")
         + param_status("standard_conforming_strings", "on")
         + msg("K", i32(12345) + i32(67890)) + ready("I"))
SELECT_RESULT = (row_description([("id", 23), ("name", 25)]) + data_row([b"1", b"alice"])
                 + data_row([b"2", None]) + command_complete("SELECT 2") + ready("I"))


def corpus():
    files = {}

    # startup: whole first packets a client sends, and the ones the decoder must refuse.
    psql = [("user", "app"), ("database", "app"), ("application_name", "psql"), ("client_encoding", "UTF8")]
    files["startup"] = {
        "startup_message": startup_packet(psql),
        "startup_minimal": startup_packet([("user", "u")]),
        "startup_options": startup_packet([("user", "app"), ("database", "app"), ("options", "-c search_path=s1"),
                                           ("_pq_.test_option", "1"), ("DateStyle", "ISO")]),
        "startup_protocol_3_2": startup_packet([("user", "app")], 3, 2),
        "startup_duplicate_user": startup_packet([("user", "first"), ("user", "second")]),
        "ssl_request": SSL_REQUEST,
        "ssl_then_startup": SSL_REQUEST + startup_packet(psql),
        "gssenc_ssl_startup": GSSENC_REQUEST + SSL_REQUEST + startup_packet(psql),
        "cancel_request": CANCEL_REQUEST,
        "bad_protocol_2": startup_packet([("user", "app")], 2, 0),
        "bad_request_code": i32(8) + i32((1234 << 16) | 9999),
        "bad_no_user": startup_packet([("database", "app")]),
        "bad_no_terminator": startup_packet([("user", "app")])[:-1],
        "bad_length": i32(3) + i32(196608),
        "partial": startup_packet(psql)[:11],
    }

    # frontend: knobs (max_message_size choice, capture, stop after Sync) + seed + the client's messages.
    extended = (parse("s1", "SELECT $1::int", [23]) + bind("", "s1", [b"42"]) + describe("P", "")
                + execute("") + SYNC)
    files["frontend"] = {
        "simple_query": stream_input(0, 1, query("SELECT 1") + TERMINATE),
        "extended_query": stream_input(0x18, 2, extended),
        "pipeline": stream_input(0x10, 3, parse("", "SELECT 1") + bind("", "", []) + execute("") + FLUSH
                                 + parse("s2", "SELECT $1", []) + bind("p", "s2", [None]) + execute("p", 10)
                                 + msg("C", b"S" + cstr("s2")) + SYNC + TERMINATE),
        "copy_in": stream_input(2, 4, query("COPY t FROM STDIN") + msg("d", b"1\tone\n2\ttwo\n")
                                + msg("c") + SYNC),
        "password_md5": stream_input(0, 5, msg("p", cstr(md5_response("secret", "app", bytes([1, 2, 254, 255]))))),
        "password_plain": stream_input(0, 6, msg("p", cstr("secret"))),
        "sasl_initial": stream_input(0, 7, sasl_initial("SCRAM-SHA-256", CLIENT_FIRST.encode())),
        "sasl_initial_no_data": stream_input(0, 8, sasl_initial("SCRAM-SHA-256", None)),
        "sasl_response": stream_input(0, 9, msg("p", b"c=biws,r=" + CLIENT_NONCE.encode() + b"abc,p=AAAA")),
        "admin_console": stream_input(1, 10, query("SHOW POOLS;") + query("SHOW STATS") + TERMINATE),
        "function_call": stream_input(0, 11, msg("F", i32(1598) + i16(0) + i16(0) + i16(0))),
        "bad_length": stream_input(0, 12, b"Q" + i32(3)),
        "too_big": stream_input(1, 13, b"Q" + i32(5000) + b"SELECT"),
    }

    # backend: knobs (max_message_size choice, stop after 'Z', stop before 'E', complete last) + seed + stream.
    files["backend"] = {
        "login": stream_input(0x08, 21, LOGIN),
        "select": stream_input(0x08, 22, SELECT_RESULT),
        "error_then_ready": stream_input(0x18, 23, msg("E", error_fields(PG_ERROR)) + ready("E")),
        "fatal": stream_input(0x10, 24, msg("E", error_fields(PG_FATAL))),
        "old_server_error": stream_input(0, 25, msg("E", error_fields(OLD_SERVER_ERROR)) + ready("I")),
        "notice": stream_input(0x08, 26, msg("N", error_fields(NOTICE)) + command_complete("DROP TABLE")
                               + ready("I")),
        "extended": stream_input(0x08, 27, msg("1") + msg("2") + row_description([("int4", 23)])
                                 + data_row([b"42"]) + command_complete("SELECT 1") + ready("T")),
        "copy_out": stream_input(0, 28, msg("H", b"\0" + i16(1) + i16(0)) + msg("d", b"1\n") + msg("c")
                                 + command_complete("COPY 1") + ready("I")),
        "big_error": stream_input(0x28, 29, b"E" + i32(70000 + 4) + error_fields(PG_ERROR)),
        "big_row_small_limit": stream_input(0x05, 30, data_row([b"x" * 2000]) + ready("I")),
        "bad_negative_length": stream_input(0, 31, b"D" + i32(-1)),
        "parameter_status_only": stream_input(0, 32, param_status("application_name", "app")),
    }

    # error_response: mode 0 raw bodies, mode 1 fields for the writer (severity, SQLSTATE\0message\0detail\0hint).
    files["error_response"] = {
        "postgres_error": b"\0" + error_fields(PG_ERROR),
        "postgres_fatal": b"\0" + error_fields(PG_FATAL),
        "old_server": b"\0" + error_fields(OLD_SERVER_ERROR),
        "notice": b"\0" + error_fields(NOTICE),
        "duplicate_fields": b"\0" + error_fields([("C", "XX000"), ("C", "42601"), ("V", ""), ("S", "ERROR")]),
        "bad_no_terminator": b"\0" + error_fields(PG_ERROR)[:-1],
        "bad_trailing": b"\0" + error_fields(PG_ERROR) + b"M",
        "write_error": b"\1\0" + b"\0".join(v.encode() for v in ["53300", "pool timeout", "detail", "hint"]),
        "write_fatal_notice": b"\1\x09" + b"\0".join(v.encode() for v in ["08P01", "bad", "", ""]),
        "write_embedded_nul": b"\1\2" + b"\0".join(v.encode() for v in ["XX000", "m", "d", "h\0after"]),
    }

    # scram: mode 0 raw first\0final, mode 1 honest client (knobs, user\0nonce\0ext\0ext), 2 base64, 3 secrets.
    server_first = f"r={CLIENT_NONCE}{SERVER_NONCE},s={base64.b64encode(FUZZ_SALT).decode()},i=4096"
    final = scram_final("pencil", FUZZ_SALT, 4096, "n=," + "r=" + CLIENT_NONCE, server_first)
    files["scram"] = {
        "raw_libpq": b"\0" + CLIENT_FIRST.encode() + b"\0" + final.encode(),
        "raw_wrong_password": b"\0" + CLIENT_FIRST.encode() + b"\0"
                              + scram_final("wrong", FUZZ_SALT, 4096, "n=,r=" + CLIENT_NONCE, server_first).encode(),
        "raw_channel_binding": b"\0" + b"p=tls-server-end-point,,n=,r=abc\0",
        "raw_authzid": b"\0" + b"n,a=admin,n=,r=abc\0",
        "raw_extension": b"\0" + b"y,,n=user,r=abc,x=1\0c=eSws,r=abc" + SERVER_NONCE.encode() + b",p=AAAA",
        "raw_mandatory_ext": b"\0" + b"n,,m=ext,n=,r=abc\0",
        "honest": b"\1\0" + b"\0".join([b"", CLIENT_NONCE.encode(), b"", b""]),
        "honest_y_ext": b"\1\x19" + b"\0".join([b"user", b"nonce", b"ext", b"final-ext"]),
        "honest_wrong_proof": b"\1\x62" + b"\0".join([b"", b"abc", b"", b""]),
        "honest_wrong_nonce": b"\1\x04" + b"\0".join([b"u", b"abc", b"", b""]),
        "honest_wrong_binding": b"\1\x06" + b"\0".join([b"u", b"abc", b"", b""]),
        "base64_padding2": b"\2" + b"cGVuY2lsIQ==",
        "base64_padding1": b"\2" + b"cGVuY2lsISE=",
        "base64_plain": b"\2" + base64.b64encode(bytes(range(48))),
        "base64_bad_bits": b"\2" + b"cGVuY2lsIR==",
        "secret_postgres": b"\3" + ("SCRAM-SHA-256$4096:BkmQ6OGVlSeOPW8qdyX5UQ==$QdlpWYFtfWL2K+XDTJO2elwLnAg/"
                                    "yKOnHhuiUzSub4c=:z6uqyt0BlYqYf8ac1A0yOzM9vqrp9IAH1W+q6lwDOoU=").encode(),
        "secret_made": b"\3" + scram_secret("secret", b"0123456789abcdef", 16).encode(),
        "secret_md5": b"\3" + ("md5" + hashlib.md5(b"secretapp").hexdigest()).encode(),
        "secret_plain": b"\3" + b"correct horse battery staple",
        "secret_truncated": b"\3" + b"SCRAM-SHA-256$4096:BkmQ6OGVlSeOPW8qdyX5UQ==$QdlpWYFtfWL2K",
    }

    # backend_login: mode 0 hostile server (knobs: credential kind, max_message_size; seed; the server's bytes),
    # mode 1 honest ScramServer (knobs: iterations, flip, keys, which key; bit position; seed; salt\0password).
    login_salt = b"fuzz-salt-16byte"
    salted = hashlib.pbkdf2_hmac("sha256", b"fuzz-password-Zq9", login_salt, 16)
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    login_server_first = "r=fuzznonceSRV,s=" + base64.b64encode(login_salt).decode() + ",i=16"
    login_auth = ",".join(["n=,r=fuzznonce", login_server_first, "c=biws,r=fuzznonceSRV"]).encode()
    login_verifier = "v=" + base64.b64encode(hmac.new(server_key, login_auth, "sha256").digest()).decode()
    sasl = auth(10, cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0")
    scram_ok = sasl + auth(11, login_server_first.encode()) + auth(12, login_verifier.encode()) + LOGIN
    md5_request = auth(5, bytes([1, 2, 254, 255]))

    def hostile(knobs, seed, stream):
        return b"\0" + stream_input(knobs, seed, stream)

    def honest(knobs, position, seed, salt, password):
        return b"\1" + bytes([knobs, position]) + struct.pack("!Q", seed) + salt + b"\0" + password

    files["backend_login"] = {
        "hostile_trust": hostile(0, 41, LOGIN),
        "hostile_cleartext": hostile(1, 42, auth(3) + LOGIN),
        "hostile_md5_password": hostile(1, 43, md5_request + LOGIN),
        "hostile_md5_secret": hostile(2, 44, md5_request + LOGIN),
        "hostile_scram_keys": hostile(3, 45, scram_ok),
        "hostile_scram_password": hostile(1, 46, scram_ok),
        "hostile_scram_bad_signature": hostile(3, 47, sasl + auth(11, login_server_first.encode())
                                               + auth(12, b"v=" + base64.b64encode(bytes(32))) + LOGIN),
        "hostile_scram_server_error": hostile(3, 48, sasl + auth(11, login_server_first.encode())
                                              + auth(12, b"e=invalid-proof")),
        "hostile_scram_ok_early": hostile(3, 49, sasl + auth(11, login_server_first.encode()) + LOGIN),
        "hostile_error": hostile(1, 50, msg("E", error_fields([("S", "FATAL"), ("V", "FATAL"), ("C", "28P01"),
                                                               ("M", 'password authentication failed for user "x"')]))),
        "hostile_cannot_answer": hostile(0, 51, md5_request + LOGIN),
        "hostile_unsupported": hostile(1, 52, auth(7)),
        "hostile_negotiate": hostile(0, 53, msg("v", i32(0) + i32(1) + cstr("_pq_.x")) + msg("N", error_fields(NOTICE))
                                     + LOGIN),
        "hostile_leftover": hostile(0, 54, LOGIN + SELECT_RESULT[:20]),
        "hostile_oversized": hostile(0x08, 55, auth(0) + param_status("server_version", "16.2 (long enough)")),
        "hostile_bad_length": hostile(0, 56, b"R" + i32(2)),
        "honest_keys": honest(0x24, 3, 61, b"salt", b"pencil"),
        "honest_password": honest(0x04, 9, 62, b"0123456789abcdef", b"correct horse"),
        "honest_flip_client_key": honest(0x30, 77, 63, b"salt", b"pencil"),
        "honest_flip_server_key": honest(0x70, 200, 64, b"salt", b"pencil"),
        "honest_flip_password": honest(0x11, 130, 65, b"s", b"pw"),
    }

    # config: the shipped example and small configs in the shape the tests use.
    with open(os.path.join(ROOT, "pooler.toml.example"), "rb") as f:
        example = f.read()
    files["config"] = {
        "example": example,
        "empty": b"",
        "minimal": b"[databases.app]\n",
        "hosts": b'[databases.app]\nhosts = ["db1:5433", "db2", "[::1]:5440"]\nport = 6000\n'
                 b'target_session_attrs = "read-write"\n',
        "transaction_pool": b'[pooler]\nlisten_port = 0\nauth_type = "md5"\nadmin_users = ["admin"]\n\n'
                            b'[databases.app]\nhost = "127.0.0.1"\nport = 5432\ndbname = "app"\n'
                            b'pool_mode = "transaction"\npool_size = 10\nmax_overflow = -1\npool_timeout = 0.5\n'
                            b'pool_recycle = -1\npool_pre_ping = true\npre_ping_after = 1.0\n'
                            b'reset_on_return = "rollback"\nuse_lifo = true\n\n'
                            b'[users.app]\npassword = "secret"\n[users.admin]\npassword = "'
                            + ("md5" + hashlib.md5(b"adminadmin").hexdigest()).encode() + b'"\n',
        "scram_user": b'[users.app]\npassword = "' + scram_secret("secret", b"0123456789abcdef", 16).encode()
                      + b'"\n',
        "errors": b'[pooler]\nlisten_port = 70000\nlog_level = "loud"\nmax_client_con = 5\n\n'
                  b'[databases.pooler]\npool_size = -1\nmin_pool_size = 3\n\n[users.app]\n',
        "bad_toml": b"[databases.app\npool_size = = 3\n",
        "hba_tls": b'[pooler]\nmax_db_connections = 20\nmax_user_connections = 10\n\n[pooler.tls]\n'
                   b'cert_file = "/etc/pooler/server.crt"\nkey_file = "/etc/pooler/server.key"\n'
                   b'client_tls_ca = "/etc/pooler/ca.crt"\nclient_tls_mode = "require"\nmin_version = "TLSv1.3"\n\n'
                   b'[[pooler.hba]]\ntype = "local"\ndatabase = "all"\nuser = "all"\nmethod = "trust"\n\n'
                   b'[[pooler.hba]]\ntype = "hostssl"\ndatabase = ["app", "reports"]\nuser = "app"\n'
                   b'address = "10.0.0.0/8"\nmethod = "cert"\n\n'
                   b'[[pooler.hba]]\ntype = "host"\ndatabase = "sameuser"\nuser = "all"\n'
                   b'address = "fe80::/10"\nmethod = "scram-sha-256"\n\n'
                   b'[[pooler.hba]]\ntype = "hostnossl"\ndatabase = "all"\nuser = "all"\naddress = "all"\n'
                   b'method = "reject"\n\n[databases.app]\nsslmode = "verify-full"\nsslrootcert = "/etc/ca.crt"\n',
        "hba_errors": b'[pooler]\n[[pooler.hba]]\ntype = "hostssl"\ndatabase = []\nuser = "all"\n'
                      b'address = "10.1.2.3/8"\nmethod = "cert"\n\n[[pooler.hba]]\ntype = "local"\n'
                      b'database = "all"\nuser = "all"\naddress = "::1/128"\nmethod = "md5"\n\n'
                      b'[pooler.tls]\ncert_file = "a.crt"\nclient_tls_mode = "verify-full"\nmin_version = "TLSv1.1"\n',
        "inline_tables": b'databases = { app = { host = "h", pool_size = 2 }, "odd name" = { dbname = "x" } }\n'
                         b'users."odd user" = { password = "p" }\n',
    }
    return files


def main():
    files = corpus()
    for target, inputs in files.items():
        directory = os.path.join(CORPUS, target)
        # Regenerate only what this script makes; reproducers added by hand (repro-*) stay.
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                if not name.startswith("repro-"):
                    os.remove(os.path.join(directory, name))
        os.makedirs(directory, exist_ok=True)
        for name, data in inputs.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
    print(f"wrote {sum(len(v) for v in files.values())} seed inputs for {len(files)} targets into {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
