"""The doctor's checks of LiteLLM: that it answers at the configured URL, that its clock agrees with
ours (its ``Date`` header), and that the master key reads every user's usage and keys.

A key reads every user's rows of ``/user/daily/activity`` only with admin view (``proxy_admin`` or
``proxy_admin_viewer``) and lists every key on ``/key/list`` only as ``proxy_admin``; any other key gets
its owner's rows and keys alone, without an error (README, "The master key"). So both requests ask for a
user nobody has: an admin gets an empty answer, any other key a 403 (or, from a server that scopes
silently, its owner's keys), which names the problem."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from usage_gateway.server.config import ENV_PREFIX
from usage_gateway.server.doctor.report import Check, Status

URL_SETTING = f"{ENV_PREFIX}LITELLM_URL"
KEY_SETTING = f"{ENV_PREFIX}LITELLM_MASTER_KEY"
LIVENESS = "/health/liveliness"  # LiteLLM's own spelling; needs no key
ACTIVITY = "/user/daily/activity"
KEY_LIST = "/key/list"
PROBE_USER = "usage-gateway-doctor-probe"  # a LiteLLM user id nobody has
# The gap between LiteLLM's clock and ours. A Date header has whole seconds and uvicorn (which LiteLLM
# runs on) refreshes it once a second, so up to 2 s is no evidence of skew at all. NTP keeps hosts within
# milliseconds, so past 5 s one of the two is not synchronised: a warning. Past 60 s it is broken, and it
# shows: the gateway decides by its own clock which days are still open (today, and yesterday for
# CLOSE_AFTER_HOURS) while LiteLLM dates rows by its own, and the gateway's clock checks tokens' exp, nbf
# and iat with JWT_LEEWAY_SECONDS (30 s by default) of tolerance, which a minute exceeds: a failure.
DATE_RESOLUTION_SECONDS = 2.0
SKEW_WARN_SECONDS = 5.0
SKEW_FAIL_SECONDS = 60.0
NAMES = ("litellm", "clock", "activity", "key list")
ADMIN_HINT = f"set {KEY_SETTING} to LiteLLM's master key, or a key of a user whose role is proxy_admin"
_RAW_KEY = re.compile(r"sk-\S+")


def check_litellm(url: str | None, master_key: str | None, timeout_seconds: float) -> list[Check]:
    """The four checks of :data:`NAMES`, each later one skipped when an earlier one rules it out."""
    if url is None:
        unset = Check(
            "litellm",
            Status.WARN,
            f"{URL_SETTING} is not set: only days already stored are served",
            "set it to LiteLLM's base URL, e.g. https://litellm.internal:4000",
        )
        return [unset, *_skipped(f"needs {URL_SETTING}")]
    base = url.rstrip("/")
    target = shown_url(base)
    with httpx.Client(timeout=timeout_seconds, follow_redirects=False) as client:
        try:
            before = time.time()
            response = client.get(base + LIVENESS)
            after = time.time()
        except httpx.HTTPError as exc:
            return [_unreachable(target, exc, timeout_seconds), *_skipped("needs LiteLLM")]
        if response.status_code >= 500:
            down = Check(
                "litellm",
                Status.FAIL,
                f"{target} answers HTTP {response.status_code} on {LIVENESS}",
                "LiteLLM is up but unhealthy: see its logs",
            )
            return [down, *_skipped("needs a healthy LiteLLM")]
        reached = Check("litellm", Status.OK, f"{target} answers (HTTP {response.status_code} on {LIVENESS})")
        skew = clock_check(response.headers.get("date"), before, after)
        return [reached, skew, *_master_key_access(client, base, master_key)]


def _master_key_access(client: httpx.Client, base: str, master_key: str | None) -> list[Check]:
    """``activity`` and ``key list``: one small request each, about a user nobody has."""
    if not master_key:
        no_key = Check(
            "activity",
            Status.FAIL,
            f"{KEY_SETTING} is not set: LiteLLM refuses every request without a key",
            ADMIN_HINT,
        )
        return [no_key, Check("key list", Status.SKIP, f"needs {KEY_SETTING}")]
    headers = {"Authorization": f"Bearer {master_key}"}
    day = datetime.now(UTC).date().isoformat()
    activity_params = {"start_date": day, "end_date": day, "page_size": "1", "user_id": PROBE_USER}
    try:
        answer = client.get(base + ACTIVITY, params=activity_params, headers=headers)
    except httpx.HTTPError as exc:
        return [_failed_request("activity", ACTIVITY, exc), *_skipped("needs LiteLLM", start=3)]
    if answer.status_code == 401:  # the same key on /key/list would only say so again
        refused = _refused("activity", ACTIVITY, answer)
        return [refused, Check("key list", Status.SKIP, "LiteLLM refused the master key")]
    activity = _activity(answer)
    try:
        keys = _key_list(
            client.get(base + KEY_LIST, params={"size": "1", "user_id": PROBE_USER}, headers=headers)
        )
    except httpx.HTTPError as exc:
        keys = _failed_request("key list", KEY_LIST, exc)
    return [activity, keys]


def _skipped(why: str, start: int = 1) -> list[Check]:
    return [Check(name, Status.SKIP, why) for name in NAMES[start:]]


def shown_url(base: str) -> str:
    """The URL without user info (no password), as the lines show it."""
    try:
        parts = urlsplit(base)
    except ValueError:
        return "the URL"
    if parts.hostname is None:
        return base if "@" not in base else "the URL"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _unreachable(target: str, exc: httpx.HTTPError, timeout_seconds: float) -> Check:
    where = f"LiteLLM at {target} ({URL_SETTING})"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return Check(
            "litellm", Status.FAIL, f"{URL_SETTING} is not an http(s) URL: {exc}", "e.g. http://litellm:4000"
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return Check(
            "litellm",
            Status.FAIL,
            f"no connection to {where} within {timeout_seconds:g} s",
            "is the host reachable from here (firewall, network)?",
        )
    if isinstance(exc, httpx.TimeoutException):
        return Check(
            "litellm",
            Status.FAIL,
            f"{where} accepted the connection but sent no answer within {timeout_seconds:g} s",
            "is LiteLLM overloaded, or is something else listening on that port?",
        )
    reason = _reason(exc)
    lowered = reason.lower()
    if "refused" in lowered:
        hint = "is LiteLLM running there, on that port?"
    elif "name" in lowered or "resolve" in lowered or "address" in lowered:
        hint = "check the host name"
    elif "ssl" in lowered or "certificate" in lowered:
        hint = "check the scheme (http or https) and the proxy's certificate"
    else:
        hint = "check the URL and that LiteLLM accepts connections from here"
    return Check("litellm", Status.FAIL, f"cannot connect to {where}: {reason}", hint)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text.splitlines()[0])
    return text[:1].lower() + text[1:]


def clock_check(header: str | None, before: float, after: float) -> Check:
    if not header:
        return Check("clock", Status.WARN, "LiteLLM's answer has no Date header: clocks not compared")
    try:
        theirs = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return Check(
            "clock", Status.WARN, f"LiteLLM's Date header {header[:40]!r} is not a date: clocks not compared"
        )
    # Their clock minus ours lies in [low, high]: they stamped the answer between our `before` and
    # `after`, with a header up to DATE_RESOLUTION_SECONDS behind their clock. Judged by the least gap.
    low, high = theirs - after, theirs + DATE_RESOLUTION_SECONDS - before
    least = 0.0 if low <= 0 <= high else min(abs(low), abs(high))
    if least == 0:
        return Check("clock", Status.OK, f"LiteLLM's clock agrees with ours (Date: {header}; to the second)")
    middle = (low + high) / 2
    direction = "ahead of" if middle > 0 else "behind"
    gap = f"LiteLLM's clock is {abs(middle):.0f} s {direction} ours (Date: {header})"
    hint = "synchronise both hosts' clocks (NTP: chrony or systemd-timesyncd)"
    if least > SKEW_FAIL_SECONDS:
        return Check("clock", Status.FAIL, f"{gap}, over {SKEW_FAIL_SECONDS:.0f} s", hint)
    if least > SKEW_WARN_SECONDS:
        return Check("clock", Status.WARN, f"{gap}, over {SKEW_WARN_SECONDS:.0f} s", hint)
    return Check("clock", Status.OK, f"{gap}, within {SKEW_WARN_SECONDS:.0f} s")


def _message(response: httpx.Response) -> str:
    """LiteLLM's error text, whichever of its bodies carries it (CONTRACT §2.1), without any raw key."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    text: Any = None
    if isinstance(body, dict):
        error, detail = body.get("error"), body.get("detail")
        text = error.get("message") if isinstance(error, dict) else error
        if text is None:
            text = detail.get("error") if isinstance(detail, dict) else detail
    text = str(text if text is not None else response.text).strip().splitlines()
    return _RAW_KEY.sub("sk-***", text[0][:200]) if text else f"HTTP {response.status_code}"


def _refused(name: str, path: str, response: httpx.Response) -> Check:
    return Check(
        name,
        Status.FAIL,
        f"LiteLLM refused the master key on {path} (HTTP 401: {_message(response)})",
        ADMIN_HINT,
    )


def _other(name: str, path: str, response: httpx.Response) -> Check:
    hint = (
        "is the URL LiteLLM's base URL (its API, not its UI)?"
        if response.status_code in (404, 405)
        else "see LiteLLM's logs"
    )
    return Check(
        name, Status.FAIL, f"GET {path} answered HTTP {response.status_code}: {_message(response)}", hint
    )


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _not_litellm(name: str, path: str) -> Check:
    return Check(
        name,
        Status.FAIL,
        f"GET {path} answered 200, but not with LiteLLM's JSON",
        "is the URL LiteLLM's base URL (its API, not its UI)?",
    )


def _activity(response: httpx.Response) -> Check:
    if response.status_code == 403:
        return Check(
            "activity",
            Status.FAIL,
            f"the master key has no admin view: LiteLLM gives it only its owner's rows, which the gateway"
            f" would take for everyone's (asked for another user's: HTTP 403, {_message(response)})",
            ADMIN_HINT,
        )
    if response.status_code != 200:
        return _other("activity", ACTIVITY, response)
    body = _json_object(response)
    if (
        body is None
        or not isinstance(body.get("results"), list)
        or not isinstance(body.get("metadata"), dict)
    ):
        return _not_litellm("activity", ACTIVITY)
    return Check("activity", Status.OK, f"the master key reads every user's rows of {ACTIVITY} (admin view)")


def _key_list(response: httpx.Response) -> Check:
    if response.status_code == 401:
        return _refused("key list", KEY_LIST, response)
    if response.status_code == 403:
        return Check(
            "key list",
            Status.FAIL,
            f"the master key is not proxy_admin: LiteLLM refuses it other users' keys"
            f" (HTTP 403: {_message(response)})",
            f"{ADMIN_HINT} (proxy_admin_viewer is not enough here)",
        )
    if response.status_code != 200:
        return _other("key list", KEY_LIST, response)
    body = _json_object(response)
    total = body.get("total_count") if body is not None else None
    if body is None or not isinstance(body.get("keys"), list) or not isinstance(total, int):
        return _not_litellm("key list", KEY_LIST)
    if total > 0:
        return Check(
            "key list",
            Status.FAIL,
            "the master key is not proxy_admin: LiteLLM lists only its owner's keys (asked for another"
            f" user's, it answered with {total} of the owner's)",
            ADMIN_HINT,
        )
    return Check("key list", Status.OK, f"the master key lists every user's keys on {KEY_LIST} (proxy_admin)")


def _failed_request(name: str, path: str, exc: httpx.HTTPError) -> Check:
    return Check(
        name,
        Status.FAIL,
        f"GET {path} failed after LiteLLM answered once: {_reason(exc)}",
        "is LiteLLM overloaded?",
    )
