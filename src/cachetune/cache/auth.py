"""Who a request comes from: API keys bound to a tenant and to the domains it may use, checked by their SHA-256.

`Authenticator(request)` gives the request's `Principal` (None when the config has no `auth` block) or raises
`HttpError` 401; `Principal.tenant_for` raises 403 for a domain the key may not use or a tenant it is not. Keys are
compared by digest, in constant time against every configured key, and never written into a message.
"""

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import Depends, Request

from cachetune.cache.http import HttpError
from cachetune.cache_config import ApiKey, AuthConfig, CacheConfig
from cachetune.errors import InputError


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the tenant and domains its API key is bound to, and its roles."""

    tenant: str
    domains: frozenset[str] | None  # None: every domain
    roles: frozenset[str] = frozenset()

    def tenant_for(self, domain: str, asked: str | None) -> str:
        if self.domains is not None and domain not in self.domains:
            raise HttpError(403, f"this API key may not use domain '{domain}'", "forbidden", domain)
        if asked is not None and asked != self.tenant:
            raise HttpError(403, "the body's tenant is not the API key's tenant", "forbidden", domain)
        return self.tenant


def load_keys(auth: AuthConfig) -> list[ApiKey]:
    """The configured keys, and those of `keys_file` (YAML or JSON: a list of {sha256, tenant, domains})."""
    keys = list(auth.keys)
    if auth.keys_file:
        path = Path(auth.keys_file)
        try:
            keys += [ApiKey.model_validate(item) for item in yaml.safe_load(path.read_text()) or []]
        except (OSError, yaml.YAMLError, TypeError, ValueError) as error:
            raise InputError(f"{path}: not a list of API keys ({type(error).__name__})") from None
    return keys


class Authenticator:
    """Bearer keys checked by their SHA-256, in constant time against every configured key."""

    def __init__(self, config: CacheConfig) -> None:
        self.enabled = config.auth is not None
        self._keys = [(bytes.fromhex(key.sha256), key) for key in load_keys(config.auth)] if config.auth else []

    def __call__(self, request: Request) -> Principal | None:
        if not self.enabled:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, "missing API key: send Authorization: Bearer <key>", "unauthorized")
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for expected, key in self._keys:  # every key compared, so the time does not say which one matched
            if hmac.compare_digest(digest, expected):
                found = key
        if found is None:
            raise HttpError(401, "invalid API key", "unauthorized")
        return Principal(found.tenant, None if "*" in found.domains else frozenset(found.domains), frozenset(found.roles))


def principal_of(request: Request) -> Principal | None:
    """The request's principal, by the app's `Authenticator` (`app.state.authenticate`)."""
    return request.app.state.authenticate(request)


Caller = Annotated[Principal | None, Depends(principal_of)]  # a route's caller: None when the config has no auth


def key_digest(key: str) -> str:
    """The SHA-256 to put in `semantic_cache.auth.keys` for an API key (the key itself is never stored)."""
    return hashlib.sha256(key.encode()).hexdigest()
