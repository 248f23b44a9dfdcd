"""Requests and responses as plain values, apart from Twisted: the console and API are a function
``WebRequest -> WebResponse`` (:meth:`gateway.admin.web.app.ConsoleApp.dispatch`), and only
:class:`gateway.admin.web.app.SiteResource` touches ``twisted.web``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 * 1024  # forms and JSON here are small; anything bigger is refused


@dataclass(frozen=True)
class WebRequest:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)  # first value of each argument
    form: dict[str, str] = field(default_factory=dict)  # urlencoded POST body
    json_body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    cookies: dict[str, str] = field(default_factory=dict)
    client: str = ""
    secure: bool = False

    @classmethod
    def build(cls, method: str, uri: str, headers: dict[str, str], body: bytes, client: str,
              secure: bool = False) -> "WebRequest":
        parts = urlsplit(uri)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in headers.items()}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        form, json_body = {}, None
        if body and ctype == "application/x-www-form-urlencoded":
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        elif body and ctype == "application/json":
            try:
                parsed = json.loads(body.decode("utf-8"))
                json_body = parsed if isinstance(parsed, dict) else None
            except ValueError:
                json_body = None
        cookies: dict[str, str] = {}
        if "cookie" in headers:
            jar = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # noqa: BLE001 - a malformed cookie header means "no cookies"
                jar = SimpleCookie()
            cookies = {k: m.value for k, m in jar.items()}
        return cls(method.upper(), parts.path or "/", query, form, json_body, headers, cookies, client, secure)


@dataclass
class WebResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def set_cookie(self, name: str, value: str, *, path: str = "/", max_age: int | None = None,
                   secure: bool = False) -> None:
        """HttpOnly and SameSite=Strict always; Secure on TLS."""
        parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        self.headers.append(("Set-Cookie", "; ".join(parts)))

    @classmethod
    def json(cls, data, status: int = 200) -> "WebResponse":
        return cls(status, json.dumps(data, ensure_ascii=False, default=str).encode("utf-8"),
                   "application/json; charset=utf-8")

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> "WebResponse":
        return cls(status, b"", "text/plain; charset=utf-8", [("Location", location)])

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> "WebResponse":
        return cls(status, text.encode("utf-8"), content_type)
