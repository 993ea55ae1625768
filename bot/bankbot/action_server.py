"""The bot's action server, closed to everyone but the Rasa server: rasa-sdk's app behind a shared secret, on loopback.

rasa-sdk 3.6 (`rasa run actions`) has no authentication and binds `$SANIC_HOST` (all interfaces by default), so
anyone who can reach its port can run any action, such as creating a fraud ticket from a made-up tracker. This
launcher serves the same app (`rasa_sdk.endpoint.create_app`) with three differences:

- every request except `GET /health` (the readiness probe) must carry `Authorization: Bearer <secret>`, where the
  secret is `$ACTION_SERVER_TOKEN`; bot/endpoints.yml makes the Rasa server send exactly that header. Anything else
  gets 401 with `{"error": {"code": "unauthorized", "message": ...}}` before any action runs;
- it binds 127.0.0.1 whatever `$SANIC_HOST` says (`--host` changes it deliberately);
- no CORS headers, so no web page can call it from a browser.

Usage: `ACTION_SERVER_TOKEN=<secret> python -m bankbot.action_server [--actions bankbot.actions] [--port 5055]`.
Without a secret (or with one shorter than 16 characters) it refuses to start, exit code 2.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

TOKEN_ENV = "ACTION_SERVER_TOKEN"
MIN_TOKEN_CHARS = 16
MAX_BODY_BYTES = 16 * 1024 * 1024
OPEN_PATHS = frozenset({"/health"})
"""Paths anyone may call: the readiness probe, which runs no action and reveals nothing."""

logger = logging.getLogger("bankbot.action_server")


def secret_from_env(env: Mapping[str, str] = os.environ) -> str:
    """The shared secret from $ACTION_SERVER_TOKEN; SystemExit(2), after printing the fix, if absent or short."""
    token = (env.get(TOKEN_ENV) or "").strip()
    if len(token) < MIN_TOKEN_CHARS:
        problem = "is not set" if not token else f"is shorter than {MIN_TOKEN_CHARS} characters"
        print(
            f"bankbot.action_server: refusing to start: ${TOKEN_ENV} {problem}. The action server runs actions that "
            f"create handoff tickets, so only the Rasa server may call it. Set the same secret for both processes, "
            f"e.g. `export {TOKEN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')` "
            f"(`harness bot serve` does this for you); bot/endpoints.yml sends it as `Authorization: Bearer "
            f"${{{TOKEN_ENV}}}`.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return token


def authorised(header: str | None, secret: str) -> bool:
    """True if an Authorization header value is `Bearer <secret>` (constant-time comparison, any bytes safe)."""
    scheme, _, supplied = (header or "").partition(" ")
    # Sanic decodes header bytes as latin-1, so any header encodes back without error.
    supplied_bytes = supplied.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(supplied_bytes, secret.encode())


def create_app(actions: str, secret: str) -> Any:
    """rasa-sdk's action server app for the package `actions`, answering 401 to every request without the secret."""
    from rasa_sdk.endpoint import create_app as create_sdk_app
    from sanic import response
    from sanic.request import Request

    app = create_sdk_app(actions, cors_origins=None)
    # Sanic's default is 100 MB, read before any check; a tracker of a long session is well under this.
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES

    async def require_secret(request: Request) -> Any:
        if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
            return None
        if authorised(request.headers.get("authorization"), secret):
            return None
        logger.warning("refused %s %s from %s: missing or wrong secret", request.method, request.path, request.ip)
        return response.json(
            {
                "error": {
                    "code": "unauthorized",
                    "message": "missing or wrong secret: only the Rasa server may call "
                    "the action server (Authorization: Bearer $ACTION_SERVER_TOKEN)",
                }
            },
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="actions"'},
        )

    app.register_middleware(require_secret, "request")
    return app


def main(argv: list[str] | None = None) -> None:
    """Check the secret and the ticket store, then serve the actions until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bankbot.action_server", description=__doc__.split("\n")[0])
    parser.add_argument("--actions", default="bankbot.actions", help="package of actions (default bankbot.actions)")
    parser.add_argument("--port", type=int, default=5055, help="port (default 5055)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; $SANIC_HOST is ignored)")
    args = parser.parse_args(argv)
    secret = secret_from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from bankbot.handoff_store import HandoffStore, HandoffStoreError

    try:
        HandoffStore()  # creates or migrates the ticket store now, not at the first handoff
    except HandoffStoreError as exc:
        print(f"bankbot.action_server: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from rasa_sdk.plugin import plugin_manager

    app = create_app(args.actions, secret)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    logger.info("action server for %s on http://%s:%d (secret required)", args.actions, args.host, args.port)
    app.run(args.host, args.port, workers=1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
