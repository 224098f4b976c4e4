"""Citizens applying for a criminal-record certificate (issue 12 item 1), over gRPC.

One iteration of :class:`ApplicantUser` is one application: ``issuance.Apply`` (``Certificates.Apply``: Form No. 1
for a job, one copy, electronic delivery, a fresh ``request_id`` — the idempotency key — and the holder's public
key) by a citizen at assurance level 2 (``prepare`` verified every prepared citizen in person, and chose citizens
whose seeded judicial record is clean, so that the auto-approval policy approves them). The answer must be the new
dossier (an id, Form No. 1); what the issuing worker does afterwards (the SD-JWT VC, the PDF and its PAdES
signature, the delivery into the vault) is load on the stack that this call does not wait for.
"""

from __future__ import annotations

import json
import uuid

from locust import task

from issuance.issuer_keys import SigningKey
from loadtest.grpc_calls import WrongResult
from loadtest.scenarios.base import CitizenUser, operator_channel
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc

TIMEOUT = 30.0


def answers() -> pb.Answers:
    """Form No. 1 for a job, one copy, electronic: what most of the national portal's dossiers ask."""
    return pb.Answers(form=1, purpose="EMPLOYMENT", copies=1, delivery=pb.DELIVERY_ELECTRONIC,
                      ban_certification=False, email="loadtest@example.vn")  # fmt: skip


class ApplicantUser(CitizenUser):
    """A citizen at assurance level 2 applying for a criminal-record certificate."""

    actor = "applicant"

    def on_start(self) -> None:
        super().on_start()
        self.stub = pb_grpc.CertificatesStub(operator_channel("issuance"))
        self.holder = json.dumps(SigningKey.generate().public_jwk)  # the wallet's key (the credential's cnf)

    @task
    def apply(self) -> None:
        metadata = self.metadata()
        if metadata is None:
            return
        request = pb.ApplyRequest(request_id=str(uuid.uuid4()), answers=answers(), holder_jwk=self.holder)

        def call() -> pb.Dossier:
            dossier = self.stub.Apply(request, metadata=metadata, timeout=TIMEOUT)
            if not dossier.id or dossier.form != 1:
                raise WrongResult("Apply did not answer with the new Form No. 1 dossier")
            return dossier

        self.timed("issuance.Apply", call)
