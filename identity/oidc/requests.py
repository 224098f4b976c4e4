"""authlib's request object, built from plain values (no web framework in the protocol core)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import cached_property

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    @cached_property
    def data(self) -> dict[str, str]:
        first: dict[str, str] = {}
        for key, value in self._pairs:
            first.setdefault(key, value)
        return first

    @cached_property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._pairs:
            values[key].append(value)
        return values


class Request(OAuth2Request):  # type: ignore[misc]
    """A GET carries its parameters in the query, a POST in the form (RFC 6749 §3.1, §3.2)."""

    def __init__(
        self, method: str, uri: str, query: Iterable[tuple[str, str]], form: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> None:  # fmt: skip
        """``headers`` must look names up case-insensitively (authlib asks for "Authorization")."""
        super().__init__(method=method, uri=uri, headers=headers)
        self._query = list(query)
        self._form = list(form)
        self.payload = Payload(self._form if method == "POST" else self._query)

    @property
    def args(self) -> dict[str, str]:
        return dict(self._query)

    @property
    def form(self) -> dict[str, str]:
        return Payload(self._form).data
