#!/usr/bin/env python3
"""bench/idle_clients.py: opens N logged-in, idle PostgreSQL client connections from one process and holds them.

Speaks the v3 wire protocol itself (stdlib only): StartupMessage, md5 (or cleartext) password, then waits for
ReadyForQuery. Prints one line "logged_in=N failed=F seconds=S" on stdout once every login has finished, then
holds the sockets open until SIGTERM or SIGINT; exit status 0 only if all N logged in and none was dropped.
"""

import argparse
import asyncio
import hashlib
import signal
import struct
import sys
import time


class LoginError(Exception):
    pass


def startup_message(user: str, database: str) -> bytes:
    body = struct.pack("!I", 196608)  # protocol 3.0
    for key, value in (("user", user), ("database", database), ("application_name", "idle_clients")):
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def password_message(secret: bytes) -> bytes:
    return b"p" + struct.pack("!I", len(secret) + 5) + secret + b"\0"


def md5_answer(user: str, password: str, salt: bytes) -> bytes:
    inner = hashlib.md5((password + user).encode()).hexdigest().encode()
    return b"md5" + hashlib.md5(inner + salt).hexdigest().encode()


def error_text(body: bytes) -> str:
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return f"{fields.get('S', 'ERROR')} {fields.get('C', '?')}: {fields.get('M', '')}"


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    length = struct.unpack("!I", header[1:])[0]
    if length < 4 or length > 1 << 20:
        raise LoginError(f"bad message length {length}")
    return header[:1], await reader.readexactly(length - 4)


async def login(host: str, port: int, user: str, password: str, database: str, timeout: float):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(startup_message(user, database))
        await writer.drain()
        while True:
            kind, body = await asyncio.wait_for(read_message(reader), timeout)
            if kind == b"R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 0:  # AuthenticationOk
                    continue
                if code == 5:  # AuthenticationMD5Password
                    writer.write(password_message(md5_answer(user, password, body[4:8])))
                elif code == 3:  # AuthenticationCleartextPassword
                    writer.write(password_message(password.encode()))
                else:
                    raise LoginError(f"unsupported authentication request {code} (use md5)")
                await writer.drain()
            elif kind == b"E":
                raise LoginError(error_text(body))
            elif kind == b"Z":
                return reader, writer
            # ParameterStatus (S), BackendKeyData (K), NoticeResponse (N): nothing to do.
    except BaseException:
        writer.close()
        raise


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="app")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--database", default="app")
    ap.add_argument("-n", "--clients", type=int, default=10000)
    ap.add_argument("--parallel", type=int, default=200, help="logins in flight at once")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per connect and per message")
    args = ap.parse_args()

    held = []
    failures: dict[str, int] = {}
    gate = asyncio.Semaphore(args.parallel)

    async def one() -> None:
        async with gate:
            try:
                held.append(await login(args.host, args.port, args.user, args.password, args.database, args.timeout))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, LoginError) as e:
                reason = f"{type(e).__name__}: {e}"[:200]
                failures[reason] = failures.get(reason, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(args.clients)))
    failed = sum(failures.values())
    for reason, count in sorted(failures.items(), key=lambda kv: -kv[1])[:5]:
        print(f"idle_clients: {count} x {reason}", file=sys.stderr)
    print(f"logged_in={len(held)} failed={failed} seconds={time.monotonic() - started:.1f}", flush=True)

    # Hold until told to stop (SIGTERM from the bench script, or Ctrl-C by hand).
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    dropped = sum(1 for reader, _ in held if reader.at_eof())
    if dropped:
        print(f"idle_clients: {dropped} connection(s) were closed by the server while held", file=sys.stderr)
    for _, writer in held:
        writer.write(b"X\0\0\0\4")  # Terminate
        writer.close()
    return 0 if failed == 0 and dropped == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
