"""The rq queue of webhook jobs. Jobs carry ids as JSON (``[event_id, attempt]``), never objects.

Redis errors are translated into :class:`QueueUnavailable` here; callers keep the outbox row and
try again later.
"""

from __future__ import annotations

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from store.events import DueEvent

QUEUE_NAME = "mailkite-webhooks"
JOB_FUNC = "delivery.worker.deliver_event"
RESULT_TTL_S = 0  # nothing reads job results: the attempt log is in the database
FAILURE_TTL_S = 7 * 86_400


class QueueUnavailable(Exception):
    """Redis could not be reached or refused the command."""


def connect_redis(url: str) -> redis.Redis:
    """A client for ``redis://``, ``rediss://`` or ``unix://`` URLs (short timeouts; no decoding)."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)


def webhook_queue(conn: redis.Redis) -> Queue:
    """The webhook queue, JSON-serialised."""
    return Queue(QUEUE_NAME, connection=conn, serializer=JSONSerializer)


def job_id(event_id: str, attempt: int) -> str:
    """Deterministic job id: one job per event and attempt number."""
    return f"{event_id}-{attempt}"


def enqueue(queue: Queue, due: list[DueEvent], *, job_timeout: int) -> None:
    """Enqueue one job per due event, in one pipelined round trip. Raises :class:`QueueUnavailable`."""
    if not due:
        return
    datas = [queue.prepare_data(JOB_FUNC, args=[d.event_id, d.attempt], job_id=job_id(d.event_id, d.attempt),
                                timeout=job_timeout, result_ttl=RESULT_TTL_S, failure_ttl=FAILURE_TTL_S,
                                description=f"deliver {d.event_id} attempt {d.attempt}")
             for d in due]
    try:
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
    except redis.exceptions.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc


def job_waiting(queue: Queue, event_id: str, attempt: int) -> bool:
    """True while the job for (``event_id``, ``attempt``) is queued or running. Raises :class:`QueueUnavailable`."""
    try:
        job = Job.fetch(job_id(event_id, attempt), connection=queue.connection, serializer=JSONSerializer)
    except redis.exceptions.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    except Exception:  # noqa: BLE001 - rq raises NoSuchJobError (and others on corrupt data)
        return False
    return job.get_status(refresh=False) in ("queued", "started", "scheduled", "deferred")


def queue_depth(queue: Queue) -> int:
    """Jobs waiting in the queue. Raises :class:`QueueUnavailable`."""
    try:
        return queue.count
    except redis.exceptions.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
