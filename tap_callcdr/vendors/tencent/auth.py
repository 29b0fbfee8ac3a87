"""Tencent's static credentials: `id` in the query string, `appId` in the JSON body."""

from __future__ import annotations

import json
import typing as t

import requests
from singer_sdk.authenticators import APIKeyAuthenticator

from tap_callcdr.core.account import Account


class TencentAppAuthenticator(APIKeyAuthenticator):
    """Adds both credentials Tencent issues offline to every request.

    There is no login and no per-request signature in this API family (Tencent also
    checks a server-IP whitelist), so the SDK's API-key authenticator carries `id`
    and this subclass adds `appId` to the body, keeping both out of the payload code.
    """

    def __init__(self, account: Account[t.Any]) -> None:
        super().__init__(key="id", value=account.settings["id"], location="params")
        self.app_id = account.settings["app_id"]

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request = super().authenticate_request(request)
        raw = request.body if isinstance(request.body, bytes | str) else None
        body = json.loads(raw or "{}")
        request.prepare_body(data=None, files=None, json={**body, "appId": self.app_id})
        return request
