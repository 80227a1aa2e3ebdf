"""``dataferry serve`` and ``dataferry init-db``."""

from __future__ import annotations

import errno
import gc
import ipaddress
import logging
import socket
from pathlib import Path

import typer

from dataferry.cli.common import console, fail, settings
from dataferry.cli.common import log_level as log_level_of

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address ``host`` names, as asyncio's create_server binds
    them (uvicorn listens on them later), or a clear error. Bound before anything
    else happens: uvicorn found out only after the database was made, and exited 3
    with its log."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # each address family on its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        # lower case: the test servers look for it to try another port
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        fail(f"cannot listen on {host}:{port}: {reason or exc}")
    return sockets


def serve(
    host: str = typer.Option(None, help="Address to listen on (default from config: 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default from config: 8080)."),
    log_level: str = typer.Option("info", help="Log level: debug, info, warning, error."),
    certfile: Path = typer.Option(
        None, "--certfile", help="TLS certificate (PEM): serve HTTPS.", exists=True, dir_okay=False
    ),
    keyfile: Path = typer.Option(
        None, "--keyfile", help="TLS private key (PEM) for --certfile.", exists=True, dir_okay=False
    ),
) -> None:
    """Run the API, the job executor and the scheduler; creates or upgrades the database."""
    # Start-up (imports, the app, the database) allocates some 260,000 objects, and
    # collecting while they are made walks the growing heap again and again. The
    # collector is off meanwhile; one collection at the end frees the garbage, and
    # the rest (some 170,000 objects that live as long as the process) is frozen out
    # of every later collection.
    log_level = log_level_of(log_level)
    gc.disable()
    import uvicorn

    from dataferry.api.app import create_app
    from dataferry.app import build
    from dataferry.config import load_settings

    base = settings()
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        s = load_settings(**overrides) if overrides else base
    except Exception as exc:  # e.g. --port 99999: say so plainly, as settings() does
        fail(f"configuration error: {exc}")
    if not s.tokens and not is_loopback(s.host):
        fail(
            f"refusing to listen on {s.host} without a token: anyone on the network could "
            "use the API. Set tokens in the config (or DATAFERRY_TOKENS='[\"...\"]'), "
            "or listen on 127.0.0.1."
        )
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if (certfile is None) != (keyfile is None):
        fail("--certfile and --keyfile go together")
    sockets = listen(s.host, s.port)
    core = build(s)
    scheme = "https" if certfile else "http"
    bound_port = sockets[0].getsockname()[1]  # what --port 0 chose
    console.print(
        f"dataferry {core.node}: serving on {scheme}://{s.host}:{bound_port} "
        f"(data in {s.home}, database {core.db.engine.url.render_as_string()})",
        highlight=False,
    )
    from dataferry.api.body_protocol import BodyProtocol

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Long polls (GET /api/v1/jobs/{id}?wait=) answer before uvicorn waits
            # for the open requests to end.
            core.jobs.stop_waiting()
            await super().shutdown(sockets)

    server = Server(
        uvicorn.Config(
            create_app(core),
            http=BodyProtocol,
            host=s.host,
            port=s.port,
            log_level=log_level.lower(),
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
        )
    )
    gc.collect()
    gc.freeze()
    gc.enable()
    server.run(sockets)
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: the application did not start


def init_db() -> None:
    """Create or upgrade the database and the secret key file (safe to run again)."""
    from dataferry.app import init_db as do_init

    s = settings()
    instance = do_init(s)
    console.print(f"database ready at {s.database_url} (instance {instance})", highlight=False)
