"""Agencies asking for consent and fetching shared documents with bound consent tokens (issue 12 item 1).

One iteration of :class:`AgencyUser` is one fetch: ``vault.DownloadShared`` of a document a citizen shared with the
prepared agency (``accounts.json`` ``agency``: the stack's demo agency; ``consents``: the consents ``prepare``
had citizens grant it), over mutual TLS with the agency's certificate and a consent token bound to it
(``cnf.x5t#S256``, RFC 8705 §3.1) — the SLO's consent fetch, p99 < 100 ms. The token comes from the edge's mTLS
token endpoint (RFC 8705 §5 alias; ``client_credentials`` with the RFC 9396 ``consent`` authorization detail,
``tls_client_auth``), once per consent and process and again before it expires, reported as ``HTTP``/``agency.token``.
Every :data:`REQUEST_EVERY`-th iteration the agency also asks a citizen of the registry for a new consent:
``consent.RequestConsent`` (a PENDING request the citizen will answer in a portal).

A consent allows 100 fetches an hour and 1,000 in all (consent/artefact.py): a fetch refused with the consent's
denial reason (the ``consent-denial-reason`` trailer: its window or its uses are spent) is the vault enforcing
the terms — a success of the check — and that consent rests for :data:`REST` seconds; ``prepare --consents`` sets
how many fetches a run can make (see loadtest/prepare.py).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
from typing import Any

import grpc
import requests
from locust import task

from agency.client import consent_terms
from loadtest.accounts import prepared
from loadtest.grpc_calls import WrongResult, bearer, trailer
from loadtest.scenarios.base import GrpcUser, own_channel
from loadtest.scenarios.sso import fire
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc

REQUEST_EVERY = 10
REST = 600.0  # seconds a consent whose fetches are spent is left alone
MARGIN = 30.0  # seconds before expiry a token is renewed
TIMEOUT = 30.0
VAULT = "urn:dinhdanh:service:vault"
DENIAL_TRAILER = "consent-denial-reason"
log = logging.getLogger("loadtest")
_TOKENS: dict[str, tuple[str, float]] = {}  # consent id → (bound token, expiry): shared by the process's agency users


class NoConsentLeft(Exception):
    """Every prepared consent of this process rests (prepare more consents for this rate)."""


class AgencyUser(GrpcUser):
    """An agency's system: fetch what citizens shared, sometimes ask a citizen for consent."""

    actor = "agency"

    def on_start(self) -> None:
        ready = prepared()
        self.agency: dict[str, Any] = ready.data["agency"]
        self.consents: list[dict[str, Any]] = list(ready.share("consents", *self.slot))
        random.shuffle(self.consents)
        self.patients: list[str] = ready.share("patients", *self.slot)
        self.ring = itertools.cycle(self.consents)
        self.tokens = _TOKENS
        self.resting: dict[str, float] = {}
        self.iterations = 0
        self.warned = False
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would replace the platform CA; loopback, no proxy
        self.http.cert = (self.agency["cert"], self.agency["key"])
        self.http.verify = self.agency["ca"]
        self.token_endpoint = str(self.agency["mtls_token_endpoint"])
        self.vault = vgrpc.VaultStub(own_channel("vault", self.agency))
        self.consent = cgrpc.ConsentStub(own_channel("consent", self.agency))

    def next_consent(self) -> dict[str, Any]:
        now = time.time()
        for _ in range(len(self.consents)):
            consent = next(self.ring)
            if self.resting.get(consent["id"], 0.0) <= now:
                return consent
        raise NoConsentLeft

    def token(self, consent_id: str) -> str | None:
        """A bound consent token for ``consent_id`` (cached until :data:`MARGIN` before it expires)."""
        held = self.tokens.get(consent_id)
        if held and held[1] - MARGIN > time.time():
            return held[0]
        detail = {"type": "consent", "consent_id": consent_id, "purpose": self.agency["purpose"]}
        form = {"grant_type": "client_credentials", "client_id": self.agency["client_id"], "resource": VAULT,
                "authorization_details": json.dumps([detail])}  # fmt: skip
        started_at, started = time.time(), time.perf_counter()
        problem: Exception | None = None
        token = None
        try:
            reply = self.http.post(self.token_endpoint, data=form, timeout=TIMEOUT)
            body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
            if reply.status_code != 200 or not body.get("access_token"):
                problem = WrongResult(f"token endpoint: {reply.status_code} {body.get('error', '')}")
            else:
                token = str(body["access_token"])
                self.tokens[consent_id] = (token, time.time() + float(body.get("expires_in") or 60))
        except (requests.RequestException, ValueError) as error:
            problem = error
        fire(self.environment, "HTTP", "agency.token", started_at, started, problem)
        return token

    def fetch(self, consent: dict[str, Any]) -> None:
        token = self.token(consent["id"])
        if token is None:
            return

        def call() -> int:
            received, metadata = 0, None
            request = vpb.DownloadSharedRequest(id=consent["document_id"])
            for reply in self.vault.DownloadShared(request, metadata=bearer(token), timeout=TIMEOUT):
                if reply.WhichOneof("item") == "metadata":
                    metadata = reply.metadata
                else:
                    received += len(reply.chunk)
            if metadata is None or metadata.id != consent["document_id"] or received != metadata.size_bytes:
                raise WrongResult("DownloadShared did not return the shared document whole")
            return received

        def spent(error: grpc.RpcError) -> bool:
            return bool(trailer(error, DENIAL_TRAILER))

        outcome = self.timed("vault.DownloadShared", call, accept=spent, size=lambda n: n)
        if outcome.error is not None and spent(outcome.error):
            self.resting[consent["id"]] = time.time() + REST

    def request_consent(self) -> None:
        asked = consent_terms(self.agency["purpose"], document_types=["CRIMINAL_RECORD_CERTIFICATE"], days=30,
                              max_fetches=3, per_day=1, data_life_days=30)  # fmt: skip
        request = cpb.RequestConsentRequest(citizen_id_number=random.choice(self.patients), terms=asked)  # noqa: S311

        def call() -> cpb.ConsentRecord:
            record = self.consent.RequestConsent(request, timeout=TIMEOUT)
            if not record.id:
                raise WrongResult("RequestConsent answered without the pending consent's id")
            return record

        self.timed("consent.RequestConsent", call)

    @task
    def work(self) -> None:
        self.iterations += 1
        if self.iterations % REQUEST_EVERY == 1:
            self.request_consent()
        try:
            consent = self.next_consent()
        except NoConsentLeft:
            if not self.warned:
                self.warned = True
                log.warning("every prepared consent of this process is spent for now: prepare more consents")
            return
        self.fetch(consent)
