"""Locust user classes, one per actor of the national day (issue 12 item 1); see each module.

=====================  ==========  =========================================================================
class                  ``actor``   requests (request type / name)
=====================  ==========  =========================================================================
``SignInUser``         sign-in     ``flow``/``sign-in``; ``HTTP``/``sso.authorize`` ``sso.login`` ``sso.totp``
                                   ``sso.token`` ``sso.userinfo``
``VaultUser``          vault       ``gRPC``/``vault.List`` ``vault.Download`` ``vault.Upload``
``AgencyUser``         agency      ``gRPC``/``vault.DownloadShared`` ``consent.RequestConsent``;
                                   ``HTTP``/``agency.token``
``ApplicantUser``      applicant   ``gRPC``/``issuance.Apply``
``FacilityUser``       facility    ``gRPC``/``health.PushVisit``
``VerifierUser``       verifier    ``HTTP``/``verify.qr`` (and ``verify.page`` once per user)
=====================  ==========  =========================================================================

The gRPC users sign their citizen in when they start (the same ``flow``/``sign-in`` and ``sso.*`` requests).
Everything is read from the files ``loadtest/prepare.py`` wrote (``DINHDANH_LOADTEST_ACCOUNTS``,
``DINHDANH_LOADTEST_STACK``); ``DINHDANH_LOADTEST_WORKERS`` is the number of worker processes (accounts are split
between them). Imported only inside Locust's processes (gevent), never by pytest or a dinhdanh process.
"""

from __future__ import annotations

from typing import Any

from locust import events

from loadtest.accounts import save_all_steps
from loadtest.scenarios.agency import AgencyUser
from loadtest.scenarios.certificates import ApplicantUser
from loadtest.scenarios.health import FacilityUser
from loadtest.scenarios.sso import SignInUser
from loadtest.scenarios.vault import VaultUser
from loadtest.scenarios.verify import VerifierUser

USERS = (SignInUser, VaultUser, AgencyUser, ApplicantUser, FacilityUser, VerifierUser)
BY_ACTOR = {user.actor: user for user in USERS}


@events.test_stop.add_listener
def _remember_steps(**_kwargs: Any) -> None:
    """The TOTP steps this process used, for the next run (loadtest/accounts.py)."""
    save_all_steps()


__all__ = ["BY_ACTOR", "USERS", "AgencyUser", "ApplicantUser", "FacilityUser", "SignInUser", "VaultUser",
           "VerifierUser"]  # fmt: skip
