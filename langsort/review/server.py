"""The `langsort review` process: pick who may connect, print the URL, serve with uvicorn."""

from __future__ import annotations

import secrets
import socket
import threading
import webbrowser

from langsort.errors import LangsortError
from langsort.review.guard import is_loopback


def url_of(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def check_port(host: str, port: int) -> None:
    """A port in use is a user error, said before uvicorn starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LangsortError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port or --host") from None


def serve(manifests_dir: str, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          input_root: str | None = None, echo=print) -> None:
    """Serve the review app until interrupted. Any host but loopback gets a fresh token."""
    import uvicorn

    from langsort.review.app import create_app

    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    app = create_app(manifests_dir, token, input_root)
    check_port(host, port)
    url = url_of(host, port, token)
    echo(f"reviewing {manifests_dir}: open {url}" + ("" if token is None else "  (the token is needed from other machines)"))
    if open_browser:
        threading.Timer(1.0, webbrowser.open, [url]).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
