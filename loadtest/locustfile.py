"""The national day for Locust: ``locust -f loadtest/locustfile.py`` (run by ``dinhdanh loadtest``; issue 12).

Imports every actor's user class that ``loadtest.scenarios`` defines, sets its ``weight`` from the traffic model
(:func:`loadtest.model.weights`, by its ``actor``), and the shape (:func:`loadtest.shape.shape_class`) that follows
the plan ``loadtest/run.py`` passes in ``$DINHDANH_LOADTEST_PLAN``. Only Locust imports this file: it is run
by the ``locust`` binary, master and workers alike, never imported into pytest or a dinhdanh process.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `loadtest.*` imports

from loadtest import model
from loadtest.shape import shape_class

USER_CLASSES = ("SignInUser", "VaultUser", "AgencyUser", "ApplicantUser", "FacilityUser", "VerifierUser")


def _found() -> dict[str, type]:
    """The user classes of ``loadtest.scenarios``: exported by the package or defined in one of its modules."""
    try:
        package = importlib.import_module("loadtest.scenarios")
    except ModuleNotFoundError as error:
        if error.name != "loadtest.scenarios":
            raise
        return {}
    modules = [package]
    for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
        modules.append(importlib.import_module(f"loadtest.scenarios.{info.name}"))
    found: dict[str, type] = {}
    for module in modules:
        for name in USER_CLASSES:
            if name not in found and isinstance(getattr(module, name, None), type):
                found[name] = getattr(module, name)
    return found


def _weigh(found: dict[str, type]) -> None:
    """Each class's ``weight`` from the model, by its ``actor``; the classes become this module's names (Locust
    takes every user class bound to a name here, so no other name may hold one)."""
    weights = model.weights()
    for name, user in found.items():
        actor = getattr(user, "actor", None)
        if actor not in weights:
            raise RuntimeError(f"{name}.actor is {actor!r}, not one of the model's actors {model.ACTORS}")
        user.weight = weights[actor]  # type: ignore[attr-defined]
        globals()[name] = user


_weigh(_found())

NationalDay = shape_class()
