#!/usr/bin/python3
"""Stand-in for the Hysteria2 client: `hysteria client -c config.yaml` serves an HTTP proxy
(absolute-URI requests and CONNECT) and a SOCKS5 proxy (CONNECT, no auth) on the config's
http.listen and socks5.listen, connecting straight to the target. Each proxied connection is
logged as one line `proxied <kind> <host>:<port>`, which the compose suite reads."""

import asyncio
import sys

import yaml


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def splice(client_r, client_w, host: str, port: int, first: bytes, kind: str) -> None:
    print(f"proxied {kind} {host}:{port}", flush=True)
    upstream_r, upstream_w = await asyncio.open_connection(host, port)
    if first:
        upstream_w.write(first)
    await asyncio.gather(pipe(client_r, upstream_w), pipe(upstream_r, client_w))


async def http_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:  # connected and closed: the healthcheck
        writer.close()
        return
    try:
        method, target, version = head.split(b"\r\n", 1)[0].decode().split(" ")
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await splice(reader, writer, host, int(port), b"", "http-connect")
            return
        # Absolute URI (http://host:port/path): forward with the path only.
        rest = target.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        host, _, port = authority.partition(":")
        request_line = f"{method} /{path} {version}\r\n".encode()
        await splice(
            reader, writer, host, int(port or 80), request_line + head.split(b"\r\n", 1)[1], "http"
        )
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError) as exc:
        print(f"proxy error: {exc!r}", flush=True)
        writer.close()


async def socks5_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        _version, count = await reader.readexactly(2)
        await reader.readexactly(count)
        writer.write(b"\x05\x00")  # no authentication
        _v, _cmd, _rsv, atyp = await reader.readexactly(4)
        if atyp == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        elif atyp == 1:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        else:
            raise ValueError("IPv6 target not supported by the stand-in")
        port = int.from_bytes(await reader.readexactly(2), "big")
        writer.write(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        await splice(reader, writer, host, port, b"", "socks5")
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError) as exc:
        print(f"proxy error: {exc!r}", flush=True)
        writer.close()


async def main(config: dict) -> None:
    servers = []
    for section, handler in (("http", http_proxy), ("socks5", socks5_proxy)):
        if section in config:
            host, port = split_listen(config[section]["listen"])
            servers.append(await asyncio.start_server(handler, host, port))
            print(f"hysteria stand-in: {section} proxy on {host}:{port}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "client" or sys.argv[2] != "-c":
        sys.exit("usage: hysteria client -c <config.yaml> (the stand-in knows only this)")
    with open(sys.argv[3]) as f:
        asyncio.run(main(yaml.safe_load(f)))
