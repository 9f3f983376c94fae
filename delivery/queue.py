"""The rq queue of webhook jobs. A job carries ids as JSON (``[[event_id, attempt], …]``, up to
:data:`BATCH_SIZE` events delivered concurrently by one worker), never objects.

Redis errors are translated into :class:`QueueUnavailable` here; callers keep the outbox row and
try again later.
"""

from __future__ import annotations

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from store.events import DueEvent
from store.ids import new_id

QUEUE_NAME = "mailkite-webhooks"
JOB_FUNC = "delivery.worker.deliver_events"
BATCH_SIZE = 20  # events per job: rq's own bookkeeping costs about as much as one delivery
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


def enqueue(queue: Queue, due: list[DueEvent], *, job_timeout: int,
            batch_size: int = BATCH_SIZE) -> dict[str, list[DueEvent]]:
    """Enqueue the due events as jobs of up to ``batch_size`` events each, in one pipelined round
    trip; returns job id → its events. Raises :class:`QueueUnavailable`."""
    jobs = {new_id("job"): due[i:i + batch_size] for i in range(0, len(due), batch_size)}
    datas = [queue.prepare_data(JOB_FUNC, args=[[[d.event_id, d.attempt] for d in events]], job_id=job,
                                timeout=job_timeout, result_ttl=RESULT_TTL_S, failure_ttl=FAILURE_TTL_S,
                                description=f"deliver {len(events)} event(s)")
             for job, events in jobs.items()]
    if not datas:
        return {}
    try:
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
    except redis.exceptions.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    return jobs


def job_waiting(queue: Queue, job_id: str) -> bool:
    """True while job ``job_id`` is queued or running. Raises :class:`QueueUnavailable`."""
    try:
        job = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
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
