"""The sandbox's stand-in for a BetterStack heartbeat: records every ping to a JSON-lines file.

`GET|POST|HEAD /ping/<name>` appends `{"name", "at", "method"}`; `GET /pings` lists them;
`GET /health` answers 200. Stdlib only, so it starts in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_lock = threading.Lock()


def make_handler(record_file: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            if self.path == "/health":
                self._reply(200, b'{"status":"ok"}')
            elif self.path.startswith("/ping/"):
                entry = {"name": self.path.removeprefix("/ping/"), "method": self.command,
                         "at": datetime.now(UTC).isoformat()}
                with _lock, open(record_file, "a") as fh:
                    fh.write(json.dumps(entry) + "\n")
                self._reply(200, b'{"status":"recorded"}')
            elif self.path == "/pings":
                lines = record_file.read_text().splitlines() if record_file.exists() else []
                self._reply(200, json.dumps([json.loads(line) for line in lines]).encode())
            else:
                self._reply(404, b'{"error":"not found"}')

        do_GET = do_POST = do_HEAD = _handle

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", type=Path, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.file))
    server.serve_forever()


if __name__ == "__main__":
    main()
