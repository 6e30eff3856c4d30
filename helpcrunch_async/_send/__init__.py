"""The send path, one object between the resources and httpx (``_sender.Sender``).

- ``_sender``: the order of things per attempt: turn, exchange, mapping, 429 feedback, retry;
- ``_http``: one HTTP exchange, bounded in size and time;
- ``_decode``: answers and transport failures become the SDK's exceptions;
- ``_retry``: the retry policy (tenacity, configured once);
- ``_events``: what the send path reports, as frozen event objects;
- ``_observe``: who receives them: the client's statistics and log, then ``on_event``.
"""
