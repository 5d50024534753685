"""The simulated field's control interface, as the API reaches it: HTTP with JSON (the field's
own, ``openmeg sim serve --control-port``). Only a simulated field has one: real equipment has
no "take the utility down". The platform never imports the field; it speaks to it over HTTP."""

from __future__ import annotations

import httpx

from openmeg.core.errors import OpenMegError


class FieldControlError(OpenMegError):
    """The field's control interface refused, or could not be reached."""

    def __init__(self, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class FieldControl:
    """Scenario controls of the simulated field at ``url`` (e.g. ``http://127.0.0.1:8710``)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    async def _post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                r = await client.post(f"{self.url}{path}", json=body)
        except httpx.HTTPError as err:
            raise FieldControlError(f"the simulated field does not answer: {err}") from err
        try:
            answer = r.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if r.status_code >= 400:
            why = answer.get("detail") or f"HTTP {r.status_code}"
            status = r.status_code if r.status_code in (404, 409, 422) else 502
            raise FieldControlError(f"the simulated field refused: {why}", status=status)
        return answer

    async def utility(self, available: bool) -> None:
        """The utility grid goes down (``False``) or comes back (``True``)."""
        await self._post("/field/utility", {"available": available})

    async def load_step(self, load: str, kw: float) -> None:
        """``load`` (a load id of the site: checked by the caller) draws ``kw`` more (negative:
        less) from the field's next step on."""
        await self._post(f"/field/loads/{load}/step", {"kw": kw})

    async def fault(self, line: str) -> dict[str, object]:
        """A fault on ``line`` (a line of the site's network: checked by the caller); the
        field's protection acts: the answer names the switches that tripped and the dark buses."""
        return await self._post("/field/fault", {"line": line})

    async def repair(self) -> dict[str, object]:
        """The fault is repaired, the latched fault indicators reset by the crew."""
        return await self._post("/field/fault/clear", {"reset_indicators": True})
