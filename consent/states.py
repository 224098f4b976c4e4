"""A consent's status as an explicit state machine (after ReBIT's consent states and fosite's explicit flows).

::

    PENDING ──APPROVE (citizen)──▶ ACTIVE ──PAUSE (citizen)──▶ PAUSED
       │                           ▲   │ ◀──RESUME (citizen)──   │
       └─REJECT (citizen)─▶ REJECTED   └──REVOKE (citizen, agency, system)──┴──▶ REVOKED
    PENDING / ACTIVE / PAUSED ──EXPIRE (system)──▶ EXPIRED

REJECTED, REVOKED and EXPIRED are terminal: nothing leaves them. Only the citizen decides (approve, reject,
pause, resume); an agency may give a grant up (revoke), never widen or revive it; the system expires what is
past its expiry and revokes when a registration or a vault ends (a withdrawn agency, a shredded citizen).
A citizen's grant on their own initiative is a PENDING artefact approved in the same transaction.

``transition`` checks who before when: an actor that can never cause the event gets PERMISSION_DENIED
whatever the state; an event the state does not allow is FAILED_PRECONDITION.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from core import state_machine


class Status(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    REJECTED = "REJECTED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class Event(enum.Enum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    REVOKE = "REVOKE"
    EXPIRE = "EXPIRE"


class Actor(enum.Enum):
    CITIZEN = "CITIZEN"
    AGENCY = "AGENCY"
    SYSTEM = "SYSTEM"


CITIZEN = frozenset({Actor.CITIZEN})
ANYONE = frozenset(Actor)
SYSTEM = frozenset({Actor.SYSTEM})

# (from, event) → (to, who may cause it). Every pair not listed is illegal.
TRANSITIONS: Mapping[tuple[Status, Event], tuple[Status, frozenset[Actor]]] = MappingProxyType(
    {
        (Status.PENDING, Event.APPROVE): (Status.ACTIVE, CITIZEN),
        (Status.PENDING, Event.REJECT): (Status.REJECTED, CITIZEN),
        (Status.ACTIVE, Event.PAUSE): (Status.PAUSED, CITIZEN),
        (Status.PAUSED, Event.RESUME): (Status.ACTIVE, CITIZEN),
        (Status.ACTIVE, Event.REVOKE): (Status.REVOKED, ANYONE),
        (Status.PAUSED, Event.REVOKE): (Status.REVOKED, ANYONE),
        (Status.PENDING, Event.EXPIRE): (Status.EXPIRED, SYSTEM),
        (Status.ACTIVE, Event.EXPIRE): (Status.EXPIRED, SYSTEM),
        (Status.PAUSED, Event.EXPIRE): (Status.EXPIRED, SYSTEM),
    }
)


class IllegalTransition(state_machine.IllegalTransition):
    """The consent's status does not allow this event (FAILED_PRECONDITION)."""

    noun = "consent"


class ActorNotAllowed(state_machine.ActorNotAllowed):
    """This kind of caller may not cause this event (PERMISSION_DENIED)."""

    noun = "consent"


MACHINE = state_machine.StateMachine(TRANSITIONS, Status, Event, IllegalTransition, ActorNotAllowed)
TERMINAL = MACHINE.terminal
ACTORS_OF = MACHINE.actors_of


def transition(status: Status, event: Event, actor: Actor) -> Status:
    """The status after ``event`` caused by ``actor``, or the domain error that refuses it."""
    return MACHINE.transition(status, event, actor)
