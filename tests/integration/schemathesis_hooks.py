"""Schemathesis hooks for the conformance run: generated assertion and retraction bodies
are signed with a real agent key (``STEMEDB_ST_AGENT_SEED``, 64 hex characters), so the
run reaches the whole write path (signature, clock, nonce, references, content defense)
instead of stopping at 401. A string ``agent_id`` becomes the key's own and a string
``timestamp`` becomes now; bodies of other types and missing headers are left as
generated, so the refusals are still exercised."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import schemathesis

from stemedb.signing import SIGNATURE_HEADER, AgentKey

KEY = AgentKey(bytes.fromhex(os.environ["STEMEDB_ST_AGENT_SEED"]))
SIGNED = frozenset({"/v1/assert", "/v1/retract"})


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.operation.path not in SIGNED or not isinstance(case.body, dict):
        return
    body = dict(case.body)
    if isinstance(body.get("agent_id"), str):
        body["agent_id"] = KEY.agent_id
    if isinstance(body.get("timestamp"), str):
        body["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    raw = json.dumps(body).encode()
    case.body = raw
    headers = case.headers or {}
    if isinstance(headers.get(SIGNATURE_HEADER), str):
        headers[SIGNATURE_HEADER] = KEY.sign_b64(raw)
        case.headers = headers
