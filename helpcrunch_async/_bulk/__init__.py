"""Bulk runs: one per-id operation over many ids, outcomes streamed as they complete.

- ``_engine``: ``OutcomeStream``, the bounded task group behind every bulk helper;
- ``_outcomes``: ``ChatOutcome``, ``Progress`` and ``BulkResult``;
- ``_protocol``: ``BulkJournal``, what the engine asks of a journal (claims, records);
- ``_journal``: the JSON-lines journal that makes a run resumable;
- ``_breaker``: the circuit breaker that stops a run against an API that is down.
"""
