"""The issuance service's settings (``DINHDANH_ISSUANCE_*``): the auto-approval policy and the issuing unit.

``auto_approve`` turns the policy of ``issuance.dossiers.auto_decision`` on or off (a clean record is approved by
the system; nothing is ever rejected automatically); ``auto_approve_forms`` lists the forms it may approve
(``"1,2"``, ``"1"``; the others always wait for an officer); ``unit`` is the issuing unit's electronic identifier
that starts every tracking number (Decision 20/2020/QĐ-TTg; ``issuance.dossiers.tracking_number``).
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from issuance.dossiers import DEFAULT_UNIT, UNIT, AutoApprovalPolicy
from issuance.forms import FormNo


class IssuanceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DINHDANH_ISSUANCE_", extra="ignore")

    auto_approve: bool = True  # a clean record is approved by the system (issuance.dossiers.auto_decision)
    auto_approve_forms: str = "1,2"  # the forms the system may approve, comma-separated
    unit: str = Field(default=DEFAULT_UNIT, max_length=29)  # the tracking numbers' unit (000.00.00.LLTP)

    @field_validator("auto_approve_forms")
    @classmethod
    def _forms(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip() and part.strip() not in ("1", "2"):
                raise ValueError("auto_approve_forms lists forms 1 and/or 2, e.g. '1,2'")
        return value

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if not UNIT.fullmatch(value):
            raise ValueError("unit must be an electronic identifier such as 000.00.00.LLTP")
        return value

    @property
    def policy(self) -> AutoApprovalPolicy:
        forms = frozenset(FormNo(int(part)) for part in self.auto_approve_forms.split(",") if part.strip())
        return AutoApprovalPolicy(enabled=self.auto_approve, forms=forms)
