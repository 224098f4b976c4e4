"""Verifiers checking the QR code of a certificate at the edge's public page (issue 12 item 1).

One iteration of :class:`VerifierUser` is one ``POST /verify`` with the QR text (``VN1:`` + Base45) of one of the
certificates ``prepare`` had issued (``accounts.json`` ``certificates``), reported as ``HTTP``/``verify.qr``: the
answer must be the page with the verdict ``valid`` (``data-outcome``). The form's double-submit CSRF token is read
once from ``GET /verify`` when the user starts (``HTTP``/``verify.page``), as a verifier's browser keeps the page
open and its cookie.
"""

from __future__ import annotations

import random
import re
from typing import Any
from urllib.parse import urlencode

from locust import task

from loadtest.accounts import prepared
from loadtest.scenarios.sso import FORM, EdgeUser, Jar, own_cookies

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
OUTCOME = re.compile(r'data-outcome="([a-z]+)"')


class VerifierUser(EdgeUser):
    """Someone shown a certificate, checking its QR code."""

    actor = "verifier"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.headers = {"X-Forwarded-For": self.forwarded_for}

    def on_start(self) -> None:
        self.qr_texts = [str(c["qr_text"]) for c in prepared().data.get("certificates") or []]
        self.csrf = ""
        self.jar = Jar()
        own_cookies(self.client)
        with self.client.request("GET", "/verify", name="verify.page", headers=self.headers,
                                 catch_response=True) as page:  # fmt: skip
            page.request_meta["request_type"] = "HTTP"
            self.jar.take(page)
            found = CSRF.search(page.text or "") if page.status_code == 200 else None
            if found:
                self.csrf = found.group(1)
                page.success()
            else:
                page.failure(f"GET /verify: {page.status_code}, no CSRF field")

    @task
    def check(self) -> None:
        if not self.csrf or not self.qr_texts:
            return
        body = urlencode({"csrf": self.csrf, "text": random.choice(self.qr_texts)})  # noqa: S311
        with self.client.request("POST", "/verify", name="verify.qr", data=body,
                                 headers={**self.headers, **self.jar.header(), **FORM},
                                 catch_response=True) as reply:  # fmt: skip
            reply.request_meta["request_type"] = "HTTP"
            found = OUTCOME.search(reply.text or "") if reply.status_code == 200 else None
            if found and found.group(1) == "valid":
                reply.success()
            else:
                reply.failure(f"POST /verify: {reply.status_code}, verdict {found.group(1) if found else 'none'}")
