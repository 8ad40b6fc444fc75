"""Stored OpenAI Responses: what `store: true` keeps, what retrieve, delete and input_items
read, and how a `previous_response_id` becomes the history of the next turn.

When a response is finished (its JSON made, or its stream's last event made, before either
is sent) it is handed to `save`, which never waits: from that moment this process serves it
(retrieve, input_items, chains) from memory, and the writer commits it at once, with every
other response saved while its previous insert ran (group commit: one statement, one commit).
The answer goes out once `written` says the row is committed, so an id a client holds is in
the shared database: every replica finds it, and a process killed after answering has lost
nothing. A database that fails writes costs no answer: the answers go out, the rows are
served from memory while the writer retries them; a hung one holds an answer at most
writer.WRITE_WAIT_S. A row the database refuses (a value that does not fit) is lost alone,
not with the rows committed beside it. Every statement is bounded (bounds.DB_TIMEOUT_S), so
a hung database costs a read, a chain or a DELETE a few seconds and a 503, never a hang.

A lookup that finds nothing answers "not found" at once: the id a client holds was committed
before it was shown, except while the store was degraded, when the replica that made the
response serves it until its writer commits it (other replicas find it from then on).

A chain is walked by parent pointer (`previous_response_id`), never by session, so branching
from an older response replays only its own ancestors. Every response of a conversation
shares `root_id`, so a chain whose links are not cached loads in one indexed query; the links
(owner, parent, the turn's input and output items) are cached in process, being immutable once
written. A deletion reaches other replicas' caches within CACHE_TTL_S.

Responses belong to who made them: the gateway API key, or for anonymous calls the provider
credential (a hash of it); anyone else gets "not found". Rows older than the retention are
never served and are purged at most once an hour.

Modules: `ids.py` (ids, owners), `records.py` (the shapes kept, made to fit their columns),
`links.py` (the link cache), `bounds.py` (the time limit of every statement), `table.py`
(every SQL statement), `gateway/store/inserts.py` (the writer's own connection), `writer.py`
(group commit, and what waits for it), `store.py` (ResponseStore).
"""

from gateway.store.responses.ids import mint_response_id, owner_of
from gateway.store.responses.records import Chain, ResponseRecord
from gateway.store.responses.store import ResponseStore

__all__ = ["Chain", "ResponseRecord", "ResponseStore", "mint_response_id", "owner_of"]
