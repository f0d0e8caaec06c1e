from __future__ import annotations

import httpx2


class SignInAgain(Exception):
    """The refresh was refused: only a new sign-in gives new tokens."""


class ApiClient:
    """Calls an API with its access token, and refreshes the pair when it expires."""

    def __init__(self, http: httpx2.Client, tokens: dict[str, str]) -> None:
        self.http = http
        self.tokens = tokens  # both: access_token and refresh_token

    def get(self, path: str) -> httpx2.Response:
        response = self.http.get(path, headers=self._bearer())
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and "access token expired" in challenge:
            self.refresh()
            response = self.http.get(path, headers=self._bearer())  # retry once
        return response

    def refresh(self) -> None:
        # The refresh token alone: no Authorization header (the access token has expired).
        body = {"refresh_token": self.tokens["refresh_token"]}
        answer = self.http.post("/auth/sessions/refresh", json=body)
        if answer.status_code == 400:
            raise SignInAgain(answer.json()["detail"])
        answer.raise_for_status()  # a 503 is an outage: try again later, keep the tokens
        self.tokens = answer.json()

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}
