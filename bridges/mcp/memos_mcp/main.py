"""memos-mcp's command line: memos-mcp [--socket PATH] (memos-mcp(1))."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import BinaryIO

from . import SERVER_NAME, __version__
from .daemon import Daemon
from .server import Server
from .session import PROTOCOL_VERSION, Session

log = logging.getLogger("memos-mcp")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=SERVER_NAME,
        description="An MCP server (stdio, protocol revision " + PROTOCOL_VERSION + ") that "
                    "gives an LLM host memosd's memories as tools and its cubes as "
                    "resources. An MCP host starts it; it speaks JSON-RPC on stdin and "
                    "stdout and logs on stderr.",
        epilog="See memos-mcp(1).")
    parser.add_argument("--socket", metavar="PATH",
                        help="memosd's socket (default: $MEMOS_SOCKET, else memosd's default "
                             "for the calling user)")
    parser.add_argument("--version", action="version", version=f"{SERVER_NAME} {__version__}")
    return parser


def _claim_stdout() -> BinaryIO:
    """stdout for the protocol alone. The protocol keeps a descriptor of its
    own; fd 1 and sys.stdout then point at stderr, so that whatever else
    prints (a library, a stray print) lands in the log instead of breaking
    the JSON-RPC stream."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "wb")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"{SERVER_NAME}: %(levelname)s: %(message)s")
    try:
        import memos
    except ImportError as e:
        log.error("the memos Python package cannot be imported (%s): install memosd's "
                  "Python SDK, or set PYTHONPATH to the folder that holds it", e)
        return 1
    protocol_out = _claim_stdout()
    daemon = Daemon(memos, args.socket)
    session = Session(daemon)
    server = Server(session.methods(), session.notifications())
    log.info("%s %s serving on stdio", SERVER_NAME, __version__)
    try:
        server.serve(sys.stdin.buffer, protocol_out)
    except BrokenPipeError:
        log.info("the client closed stdout")
    except KeyboardInterrupt:
        return 130
    finally:
        daemon.close()
    return 0
