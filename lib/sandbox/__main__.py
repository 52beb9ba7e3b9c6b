"""Run the offline KIE sandbox in the foreground: `python -m lib.sandbox --port 8787`."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from lib.sandbox.server import start_sandbox


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, start the sandbox and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m lib.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8787, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--data", type=Path, default=None, help="directory for tasks and files (default: temporary)")
    parser.add_argument("--progress", choices=("immediate", "queries", "wall"), default="wall")
    parser.add_argument("--seconds", type=float, default=6.0, help="wall progress: seconds until a task succeeds")
    parser.add_argument("--every-n", type=int, default=1, help="queries progress: advance one state every N queries")
    parser.add_argument("--credits", type=str, default="1000.00", help="starting credit balance")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.data:
        args.data.mkdir(parents=True, exist_ok=True)
    server = start_sandbox(args.port, args.data, progress=args.progress, seconds=args.seconds,
                           every_n=args.every_n, credits=args.credits)
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
