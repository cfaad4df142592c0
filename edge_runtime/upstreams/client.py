"""One HTTP client per upstream: connect and read timeouts, retries with backoff for non-streamed requests on
connection errors and 429/503 (honouring Retry-After), an in-flight count for least-loaded routing, and the
upstream's health as its last request or probe saw it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from edge_runtime.upstreams.config import Upstream
from edge_runtime.upstreams.errors import UpstreamBusy, UpstreamFailed, UpstreamRejected, UpstreamTimeout

_CONNECTION_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.PoolTimeout)
_RETRIED_STATUSES = (429, 503)
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class ClientPolicy:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    """Longest wait for the answer, or for the next piece of a stream."""
    retries: int = 2
    """Further attempts of a non-streamed request after a connection error or a 429/503."""
    backoff_s: float = 0.25
    """First wait between attempts; doubled each time (a Retry-After replaces it)."""
    max_retry_after_s: float = 10.0
    """A longer Retry-After is not waited for: the next upstream is tried (or the client told)."""


@dataclass
class UpstreamHealth:
    status: str = "unknown"
    """"OK", "Error", or "unknown" before the first request or probe."""
    error: str | None = None
    checked_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "checked_at": self.checked_at}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class UpstreamClient:
    def __init__(self, upstream: Upstream, policy: ClientPolicy) -> None:
        self.upstream = upstream
        self.policy = policy
        self.in_flight = 0
        self.health = UpstreamHealth()
        self.outcomes: dict[str, int] = {}
        timeout = httpx.Timeout(
            connect=policy.connect_timeout_s, read=policy.read_timeout_s, write=policy.read_timeout_s,
            pool=policy.connect_timeout_s,
        )
        self._http = httpx.AsyncClient(base_url=upstream.base_url + "/", timeout=timeout, follow_redirects=False)

    @property
    def upstream_id(self) -> str:
        return self.upstream.upstream_id

    @property
    def healthy(self) -> bool | None:
        return None if self.health.status == "unknown" else self.health.status == "OK"

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        key = self.upstream.api_key()
        return {"authorization": f"Bearer {key}"} if key else {}

    def _scrub(self, text: str) -> str:
        """Upstream text fit for a client and the log: capped, and without the key should it echo it."""
        try:
            key = self.upstream.api_key()
        except Exception:  # noqa: BLE001 - without a readable key there is nothing to remove
            key = None
        if key:
            text = text.replace(key, "[key]")
        return text[:_MESSAGE_CHARS]

    def _mark(self, outcome: str, error: str | None = None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.health = UpstreamHealth("OK" if error is None else "Error", error, time.time())

    def _name(self) -> str:
        return f"upstream '{self.upstream.upstream_id}'"

    def _transport_error(self, error: httpx.HTTPError) -> UpstreamFailed:
        if isinstance(error, (httpx.ReadTimeout, httpx.WriteTimeout)):
            failure: UpstreamFailed = UpstreamTimeout(
                f"{self._name()} did not answer within {self.policy.read_timeout_s:g} s"
            )
        elif isinstance(error, httpx.ConnectTimeout):
            failure = UpstreamFailed(f"{self._name()} could not be reached within {self.policy.connect_timeout_s:g} s")
        else:
            failure = UpstreamFailed(f"{self._name()} could not be reached ({type(error).__name__})")
        self._mark("timeout" if isinstance(failure, UpstreamTimeout) else "unreachable", str(failure))
        return failure

    async def _status_error(self, response: httpx.Response) -> Exception:
        """An upstream error status as our error: 4xx (not 429) is the request's fault, the rest the upstream's."""
        body = (await response.aread()).decode("utf-8", "replace")
        message = body
        try:
            data = json.loads(body)
            detail = data.get("error", data.get("detail", body)) if isinstance(data, dict) else body
            message = detail.get("message", str(detail)) if isinstance(detail, dict) else str(detail)
        except ValueError:
            pass
        said = f"{self._name()} answered {response.status_code}: {self._scrub(message)}"
        if response.status_code in _RETRIED_STATUSES:
            self._mark("overloaded", said)
            after = _retry_after(response)
            return UpstreamBusy(said, None if after is None else max(1, round(after)))
        if 400 <= response.status_code < 500:
            self._mark("rejected")
            return UpstreamRejected(response.status_code, said)
        self._mark("error", said)
        return UpstreamFailed(said)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed request, retried on connection errors and 429/503; the JSON answer."""
        self.in_flight += 1
        try:
            for attempt in range(self.policy.retries + 1):
                last = attempt == self.policy.retries
                wait = self.policy.backoff_s * 2**attempt
                try:
                    response = await self._http.post(path, json=body, headers=self._headers())
                except _CONNECTION_ERRORS as error:
                    failure = self._transport_error(error)
                    if last:
                        raise failure from None
                    await anyio.sleep(wait)
                    continue
                except httpx.HTTPError as error:
                    raise self._transport_error(error) from None
                if response.status_code == 200:
                    try:
                        answer = response.json()
                    except ValueError:
                        self._mark("error", "not JSON")
                        raise UpstreamFailed(f"{self._name()} answered 200 with a body that is not JSON") from None
                    self._mark("ok")
                    return answer if isinstance(answer, dict) else {"data": answer}
                status_error = await self._status_error(response)
                after = _retry_after(response)
                if (
                    not isinstance(status_error, UpstreamBusy)
                    or last
                    or (after is not None and after > self.policy.max_retry_after_s)
                ):
                    raise status_error
                await anyio.sleep(wait if after is None else after)
            raise AssertionError("unreachable: the last attempt returns or raises")
        finally:
            self.in_flight -= 1

    @asynccontextmanager
    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
        """A streamed request: its status is checked before the context is entered (so a failure can still be
        an HTTP error or fail over); the lines of the event stream; never retried."""
        self.in_flight += 1
        try:
            request = self._http.build_request("POST", path, json=body, headers=self._headers())
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as error:
                raise self._transport_error(error) from None
            try:
                if response.status_code != 200:
                    raise await self._status_error(response)
                self._mark("ok")
                yield self._lines(response)
            finally:
                await response.aclose()
        finally:
            self.in_flight -= 1

    async def _lines(self, response: httpx.Response) -> AsyncIterator[str]:
        try:
            async for line in response.aiter_lines():
                yield line
        except httpx.HTTPError as error:
            raise self._transport_error(error) from None

    async def probe(self) -> None:
        """GET models: what /v1/health and /metrics report for this upstream."""
        try:
            response = await self._http.get("models", headers=self._headers(), timeout=self.policy.connect_timeout_s)
        except httpx.HTTPError as error:
            self.health = UpstreamHealth("Error", f"{type(error).__name__}", time.time())
            return
        except Exception as error:  # noqa: BLE001 - a missing key is a health error, said without the key
            self.health = UpstreamHealth("Error", str(error), time.time())
            return
        await response.aclose()
        error_text = None if response.status_code == 200 else f"GET models answered {response.status_code}"
        self.health = UpstreamHealth("OK" if error_text is None else "Error", error_text, time.time())
