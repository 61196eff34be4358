"""A local stand-in for GitHub's OAuth endpoints (no internet here): the
authorize page (which approves at once), the token exchange, and the
user/emails API. A real HTTP server on loopback, in a thread."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


class FakeGitHub:
    def __init__(self, client_id: str, secret: str, *, login: str, email: str) -> None:
        self.client_id, self.secret = client_id, secret
        self.user = {"id": 4242, "login": login, "name": "Octo Cat", "email": None}
        self.emails = [{"email": email, "primary": True, "verified": True}]
        self.codes: set[str] = set()
        self.tokens: set[str] = set()
        self.token_requests: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True  # a kept-alive connection must not hold up the test's end
        self._server.block_on_close = False
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-github")

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _json(self, status: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                return scheme.lower() == "token" and token in fake.tokens

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/login/oauth/authorize":
                    # The user approves at once: back to the app with a one-time code.
                    if query.get("client_id") != fake.client_id:
                        return self._json(400, {"error": "unknown client"})
                    code = secrets.token_hex(8)
                    fake.codes.add(code)
                    target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                    return None
                if url.path == "/api/v3/user":
                    return self._json(200, fake.user) if self._authorized() else self._json(401, {})
                if url.path == "/api/v3/user/emails":
                    return self._json(200, fake.emails) if self._authorized() else self._json(401, {})
                return self._json(404, {"message": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                fake.token_requests.append(form)
                if urlsplit(self.path).path != "/login/oauth/access_token":
                    return self._json(404, {})
                good_client = form.get("client_id") == fake.client_id and form.get("client_secret") == fake.secret
                if not good_client or form.get("code") not in fake.codes:
                    return self._json(200, {"error": "bad_verification_code"})
                fake.codes.discard(form["code"])
                token = "gho_" + secrets.token_hex(8)
                fake.tokens.add(token)
                return self._json(200, {"access_token": token, "token_type": "bearer", "scope": "user:email"})

        return Handler
