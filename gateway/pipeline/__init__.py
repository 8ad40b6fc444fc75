"""The request path, one module per stage, in the order a request meets them:

    routes    the /v1 routes: read the body, then call the stages below in order
    dialects  decode the client's API into the canonical (Chat Completions) request, and
              encode answers, streams and errors back (one module per client dialect)
    parse     headers and body → a frozen `ParsedRequest`
    resolve   API key, saved or inline config, virtual keys → a frozen `Resolved`
              (the plan itself is pure: gateway/routing/plan.py)
    execute   walk the plan: fallback, load balance, conditions; retries per target
    prepare   one target's body after its override_params → `Prepared` (a translated
              body's output tokens clamped to the model's limit: output_limits)
    hooks     the guardrail hook points (before a target's first attempt, after its answer)
    cached    the response cache around a target's attempts
    attempt   one upstream call through the target's provider adapter → an `Answer`
    relay     the answer to the client: JSON, a re-emitted stream, or passthrough bytes
    record    the finished request's `Outcome` to the recorders (usage log, metrics, limits)

`services` holds the long-lived parts the stages use, built once by `gateway/app.py`.
"""
