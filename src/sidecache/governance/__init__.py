"""Who may call, how much, and at what price: keys, rate limits, budgets, pricing, PII.

``keys`` (virtual keys in ``state.db``), ``ratelimit`` (token buckets), ``budget`` (spend per
day/month), ``pricing`` (USD per model, token estimates), ``pii`` (redaction), ``gate`` (the
checks in request order). Nothing is imported here so that importing one part stays cheap.
"""
