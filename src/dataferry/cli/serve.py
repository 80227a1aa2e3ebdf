"""``dataferry serve`` and ``dataferry init-db``."""

from __future__ import annotations

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
    core = build(s)
    scheme = "https" if certfile else "http"
    console.print(
        f"dataferry {core.node}: serving on {scheme}://{s.host}:{s.port} "
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
    server.run()
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: the application did not start


def init_db() -> None:
    """Create or upgrade the database and the secret key file (safe to run again)."""
    from dataferry.app import init_db as do_init

    s = settings()
    instance = do_init(s)
    console.print(f"database ready at {s.database_url} (instance {instance})", highlight=False)
