#!/usr/bin/env python3
"""Fault injection for the HTTP judge's tests (Tests/NudgeAlignTests/HTTPJudgeTests.swift): a tiny
OpenAI-style /v1/chat/completions server whose first path segment picks a behaviour:

  /ok/...        replies "0"
  /flaky/...     HTTP 500 on the first request, then "1"
  /slow/...      sleeps 3 s, then "0" (a client timeout)
  /badjson/...   HTTP 200 with a body that is not JSON
  /words/...     replies "Model 0 is better." (not a bare 0 or 1)
  /concurrent/.. sleeps 0.2 s, then "1", counting requests in flight
  /auth/...      HTTP 401 unless "Authorization: Bearer sekrit", then "0"
  /score/...     replies "7"

GET /stats gives {"requests": {mode: n}, "max_in_flight": n}. It listens on 127.0.0.1 on a free port,
prints the port on its first line, and exits when its stdin closes (its test process is gone).
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
requests = {}
in_flight = 0
max_in_flight = 0


def reply(handler, status, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def completion(content):
    return {"id": "x", "object": "chat.completion", "model": "fault",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with lock:
            reply(self, 200, {"requests": requests, "max_in_flight": max_in_flight})

    def do_POST(self):
        global in_flight, max_in_flight
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        mode = self.path.strip("/").split("/")[0]
        with lock:
            requests[mode] = requests.get(mode, 0) + 1
            count = requests[mode]
            in_flight += 1
            max_in_flight = max(max_in_flight, in_flight)
        try:
            if mode == "flaky" and count == 1:
                reply(self, 500, {"error": "injected failure"})
            elif mode == "flaky":
                reply(self, 200, completion("1"))
            elif mode == "slow":
                time.sleep(3)
                reply(self, 200, completion("0"))
            elif mode == "badjson":
                reply(self, 200, b"this is not json")
            elif mode == "words":
                reply(self, 200, completion("Model 0 is better."))
            elif mode == "concurrent":
                time.sleep(0.2)
                reply(self, 200, completion("1"))
            elif mode == "auth":
                if self.headers.get("Authorization") == "Bearer sekrit":
                    reply(self, 200, completion("0"))
                else:
                    reply(self, 401, {"error": "bad key"})
            elif mode == "score":
                reply(self, 200, completion("7"))
            else:
                reply(self, 200, completion("0"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with lock:
                in_flight -= 1


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)

    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
