"""Open JupyterLab on the notebooks (`make lab`), as a user or as root, with its URL printed first.

    python -m ebyd_utils.lab [--port 8888] [--ip localhost] [--token T] [--root-dir notebooks] [JupyterLab options]

JupyterLab refuses to start as root unless it is given --allow-root (and root is the default user of a container):
this adds it where it runs as root. The token is made here (or taken from --token or JUPYTER_TOKEN) so that the URL
printed is the one to open, and the port is fixed (JupyterLab's fallback to the next free port is off), so that the
URL cannot point at another server: a port in use is an error that says so. Any other option goes to JupyterLab
as it is, e.g. `--no-browser`, or `--ip 0.0.0.0` in a container.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(port: int, ip: str, token: str, root_dir: str, extra=(), as_root: bool | None = None) -> list[str]:
    """The command that starts JupyterLab (this Python's), --allow-root added where it runs as root."""
    as_root = is_root() if as_root is None else as_root
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.root_dir={root_dir}",
        f"--IdentityProvider.token={token}",
        *(["--allow-root"] if as_root else []),
        *extra,
    ]


def lab_url(port: int, ip: str, token: str) -> str:
    host = "localhost" if ip in ("", "0.0.0.0", "::") else ip
    return f"http://{host}:{port}/lab?token={token}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--ip", default="localhost", help="the address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--token", default=os.environ.get("JUPYTER_TOKEN") or None, help="default: a random one")
    parser.add_argument("--root-dir", default="notebooks", help="the folder Lab opens")
    args, extra = parser.parse_known_args(argv)
    token = args.token or secrets.token_hex(24)
    command = lab_command(args.port, args.ip, token, os.path.abspath(args.root_dir), extra)
    root_note = " (as root: --allow-root)" if "--allow-root" in command else ""
    print(f"JupyterLab{root_note} on {args.root_dir}/ at {lab_url(args.port, args.ip, token)}", flush=True)
    os.execv(command[0], command)  # Lab takes this process over: Ctrl-C stops it
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
