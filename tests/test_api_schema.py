"""schemathesis over the OpenAPI spec: hundreds of generated requests (valid and invalid), not one server error,
and every answer as documented."""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode

from agent.llm import ScriptedChatModel
from tests.api_support import make_app, make_service

REQUESTS = 320


def test_no_server_error_in_generated_requests():
    # Built inside the test: schemathesis runs the app's lifespan, which must not end before the requests do.
    service = make_service(model=ScriptedChatModel(default="Here is what I found."), recommend_below=3)
    # Limits high enough that the generated traffic tests the endpoints rather than the rate limiter.
    app = make_app(service, rate_client_burst=10_000, rate_session_burst=10_000)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    cases = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))
    seen: Counter[str] = Counter()

    @given(case=cases, real_session=st.booleans())
    @settings(max_examples=REQUESTS, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    def send(case, real_session):
        if real_session and "session_id" in (case.path_parameters or {}):
            case.path_parameters["session_id"] = service.start()  # reach the real turn path, not only 404s
        response = case.call()
        seen[f"{response.status_code // 100}xx"] += 1
        seen["requests"] += 1
        assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
        case.validate_response(response)  # status code, content type and body as the spec documents them

    send()
    print(f"schemathesis: {dict(seen)}")
    assert seen["requests"] >= 300 and seen["5xx"] == 0, seen
    assert seen["2xx"] > 30 and seen["4xx"] > 30, seen  # both valid and invalid requests were exercised
