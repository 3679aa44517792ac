"""Celery tasks. Idempotent: safe to run twice or late."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from celery import Task, shared_task, signals, states
from celery._state import _task_stack
from celery.app.trace import build_tracer
from celery.exceptions import Retry
from celery.result import AsyncResult, EagerResult
from celery.utils.nodenames import anon_nodename, gethostname
from django.db.models import F
from django.utils import timezone
from kombu.entity import maybe_delivery_mode
from kombu.serialization import dumps as serialize
from kombu.utils.uuid import uuid

from .channels import ChannelError, Message, load_backend
from .conf import app_settings
from .crypto.seal import SealError, unseal
from .flows import keys as key_flows
from .flows import maintenance
from .models import Challenge

logger = logging.getLogger("authdevice.tasks")


#: The third element of every protocol-2 task body (no callbacks, chain or chord).
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class _PublishPlan:
    """What ``apply_async`` works out again on every call (route, queue, delivery mode,
    serializer), worked out once per producer pool (a new pool, e.g. a new broker URL,
    gets a new plan)."""

    def __init__(self, task: Task) -> None:
        app = task.app
        conf = app.conf
        amqp = app.amqp
        self.pool = app.producer_pool
        route = amqp.router.route({}, task.name, (), {}, task)
        self.queue = route.get("queue")
        exchange_type = getattr(getattr(self.queue, "exchange", None), "type", None)
        options = task._get_exec_options()
        # Routes that are not plain "this queue" (a named exchange, a topic or fanout,
        # broadcast) keep Celery's full path.
        self.usable = (
            self.queue is not None
            and exchange_type == "direct"
            and not route.get("exchange")
            and not conf.task_routes
            and not conf.task_send_sent_event
            and int(conf.task_protocol) == 2
            and all(v is None for k, v in options.items() if k not in ("queue", "serializer"))
        )
        if not self.usable:
            return
        self.qname = self.queue.name
        self.delivery_mode = self.queue.exchange.delivery_mode or conf.task_default_delivery_mode
        self.serializer = options["serializer"] or conf.task_serializer
        self.compression = conf.task_compression
        self.retry = bool(conf.task_publish_retry)
        self.retry_policy = dict(conf.task_publish_retry_policy or {})
        self.origin = anon_nodename()  # per process, like Celery's (a fork gets a new pool)
        # Straight to the channel when Producer.publish would only pass the message on.
        self.delivery_mode = maybe_delivery_mode(self.delivery_mode)
        self.direct = not self.retry and not self.compression


_held = threading.local()


def _held_producer(app: Any, pool: Any) -> Any:
    """This thread's producer, on a broker connection of its own kept between requests
    (one per worker thread, not one per request): checking a producer out of Celery's
    pool and back re-binds it to a connection every time. A new pool (a new broker URL,
    or Celery's reset after a fork) or a new process gets a new connection."""
    held = getattr(_held, "producer", None)
    pid = os.getpid()
    if held is not None and held[0] is pool and held[1] == pid:
        return held[2]
    if held is not None and held[1] == pid:
        _drop_held_producer()
    producer = app.connection_for_write().Producer(auto_declare=False)
    _held.producer = (pool, pid, producer)
    return producer


def _drop_held_producer() -> None:
    held = getattr(_held, "producer", None)
    _held.producer = None
    if held is not None and held[1] == os.getpid():
        with contextlib.suppress(Exception):
            held[2].connection.release()


class SendChallengeTask(Task):  # type: ignore[misc]
    """``delay`` publishes the protocol-2 message Celery would, straight through a pooled
    producer: no per-call routing, option merging, argument repr or queue re-binding
    (together several times the cost of the publish on the request path). Eager mode,
    publish signal receivers, custom routes and anything unusual take Celery's own path."""

    _plan: _PublishPlan | None = None

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return super().delay(*args, **kwargs)
        if self.app.conf.task_always_eager:
            return self._apply_eager(args)
        return self.publish(*args)

    def publish(self, *args: Any) -> Any:
        """``delay`` for a caller that already knows eager mode is off (reading Celery's
        configuration costs several µs): publish to the broker."""
        app = self.app
        if signals.before_task_publish.receivers or signals.after_task_publish.receivers:
            return super().delay(*args)
        pool = app.producer_pool
        plan = self._plan
        if plan is None or plan.pool is not pool:
            plan = self._plan = _PublishPlan(self)
        if not plan.usable:
            return super().delay(*args)
        task_id = uuid()
        parent = app.current_worker_task
        root_id = parent_id = None
        if parent:
            root_id = parent.request.root_id or parent.request.id
            parent_id = parent.request.id
        headers = {
            "lang": "py",
            "task": self.name,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": root_id or task_id,
            "parent_id": parent_id,
            # What logs and monitors show: the ids, not the (sealed) payload.
            "argsrepr": repr((*args[:-1], "...")),
            "kwargsrepr": "{}",
            "origin": plan.origin,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        }
        producer = _held_producer(app, pool)
        try:
            with producer.connection._reraise_as_library_errors():
                if hash(plan.queue) not in producer.connection.declared_entities:
                    producer.maybe_declare(plan.queue)
                if plan.direct:
                    # What Producer.publish hands the channel for this call (no retry, no
                    # compression, the default exchange), built here.
                    content_type, encoding, body = serialize((args, {}, _EMBED), plan.serializer)
                    channel = producer.channel
                    message = channel.prepare_message(
                        body,
                        0,
                        content_type,
                        encoding,
                        headers,
                        {
                            "correlation_id": task_id,
                            "reply_to": app.thread_oid,
                            "delivery_mode": plan.delivery_mode,
                        },
                    )
                    channel.basic_publish(message, exchange="", routing_key=plan.qname)
                else:
                    producer.publish(
                        (args, {}, _EMBED),
                        exchange="",
                        routing_key=plan.qname,
                        serializer=plan.serializer,
                        compression=plan.compression,
                        retry=plan.retry,
                        retry_policy=plan.retry_policy,
                        delivery_mode=plan.delivery_mode,
                        headers=headers,
                        correlation_id=task_id,
                        reply_to=app.thread_oid,
                    )
        except BaseException:
            _drop_held_producer()  # possibly broken: the next send connects afresh
            raise
        result = AsyncResult(task_id, app=app)
        result.ignored = True
        return result

    def _apply_eager(self, args: tuple[Any, ...]) -> EagerResult:
        """What ``delay`` runs in eager mode (``apply_async`` -> ``apply``), with the tracer
        built once per ``task_eager_propagates`` value as a worker builds it once, instead
        of on every call; and without the producer checkout (only to learn the serializer)
        and JSON round trip that ``apply_async`` spends on arguments that are ints and a
        string. A retry goes through Celery's own ``apply``, as from ``apply``."""
        app = self.app
        throw = bool(app.conf.task_eager_propagates)
        tracers = self.__dict__.setdefault("_eager_tracers", {})
        key = (throw, os.getpid())  # the tracer keeps its process id (logs)
        tracer = tracers.get(key)
        if tracer is None:
            tracer = tracers[key] = build_tracer(
                self.name, app._tasks[self.name], eager=True, propagate=throw, app=app
            )
        task_id = uuid()
        parent = _task_stack.top
        if parent and parent.request:
            parent_id, root_id = parent.request.id, parent.request.root_id or task_id
        else:
            parent_id, root_id = None, task_id
        request = {
            "id": task_id,
            "task": self.name,
            "parent_id": parent_id,
            "root_id": root_id,
            "retries": 0,
            "is_eager": True,
            "logfile": None,
            "loglevel": 0,
            "hostname": gethostname(),
            "callbacks": None,
            "errbacks": None,
            "headers": None,
            "timelimit": (
                None
                if self.time_limit is None and self.soft_time_limit is None
                else [self.time_limit, self.soft_time_limit]
            ),
            "ignore_result": self.ignore_result,
            "delivery_info": {
                "is_eager": True,
                "exchange": None,
                "routing_key": None,
                "priority": None,
            },
        }
        ret = tracer(task_id, args, {}, request)
        retval, tb = ret.retval, None
        if isinstance(retval, ExceptionInfo):
            retval, tb = retval.exception, retval.traceback
            if isinstance(retval, ExceptionWithTraceback):
                retval = retval.exc
        if isinstance(retval, Retry) and retval.sig is not None:
            return retval.sig.apply(retries=1)
        state = states.SUCCESS if ret.info is None else ret.info.state
        return EagerResult(task_id, retval, state, traceback=tb, name=self.name)


def _claim(challenge_id: int, version: int) -> tuple[str, str, str | None] | None:
    """Claim the send of ``version``: see ``Challenge.objects.claim_send``."""
    return Challenge.objects.claim_send(challenge_id, version, timezone.now())


def _deliver(
    challenge_id: int,
    channel: str,
    identifier: str,
    application_name: str | None,
    secrets_: dict[str, str],
) -> str:
    """Render the code (and link) message and hand it to the channel's backend; raises
    :class:`ChannelError` when the transport fails (worth a retry)."""
    path = app_settings.channels.get(channel)
    if not path:
        logger.error("challenge %s: channel %s not configured", challenge_id, channel)
        return "no-channel"
    from .flows.codes import link_url

    message = Message(
        channel=channel,
        to=identifier,
        template="code" if channel == "EMAIL" else "sms",
        context={
            "code": secrets_["code"],
            "link_url": link_url(secrets_["link"]) if secrets_.get("link") else "",
            "minutes": max(1, app_settings.challenge_lifetime // 60),
            "application": application_name or "",
            "check": bool(secrets_.get("check")),  # a django-otp check, not a sign-in
        },
    )
    load_backend(path).send(message)
    logger.info("challenge %s: sent via %s", challenge_id, channel)
    return "sent"


def _give_back_claim(challenge_id: int, version: int, exc: ChannelError) -> None:
    """Give a failed send's claim back, so the retry (or a later duplicate) may send."""
    Challenge.objects.filter(pk=challenge_id, sent_version=version).update(
        sent_version=F("sent_version") - 1
    )
    logger.warning("challenge %s: delivery failed (%s); retrying", challenge_id, type(exc).__name__)


#: Signals of a task's run; with any receiver connected, eager sends run as tasks.
_RUN_SIGNALS = (
    signals.task_prerun,
    signals.task_postrun,
    signals.task_success,
    signals.task_failure,
    signals.task_retry,
    signals.task_internal_error,
)


INLINE, EAGER, BROKER = "inline", "eager", "broker"


def send_mode() -> str:
    """How the code send of a new challenge runs (one read of Celery's configuration):

    * ``INLINE``: eager mode (``task_always_eager``: no broker, the web process is the
      worker) and no receivers of task signals (a site that watches tasks sees every
      send as a task). The caller writes the claim (``sent_version``) with the
      challenge itself and calls :func:`send_inline` after its commit.
    * ``EAGER``: eager mode, as a task (``send_challenge.delay``).
    * ``BROKER``: published to the broker (``send_challenge.publish``)."""
    if not send_challenge.app.conf.task_always_eager:
        return BROKER
    return EAGER if any(signal.receivers for signal in _RUN_SIGNALS) else INLINE


def send_inline(
    challenge_id: int,
    version: int,
    channel: str,
    identifier: str,
    application_name: str | None,
    secrets_: dict[str, str],
) -> str:
    """What the eager ``send_challenge`` task does, for a challenge whose send the caller
    already claimed in the same write: no sealing (the secrets never leave the process),
    no claim UPDATE, no task tracer. A transport error gives the claim back and takes
    Celery's own eager retry, as the task does; any other error propagates or is
    logged, per ``task_eager_propagates``."""
    try:
        return _deliver(challenge_id, channel, identifier, application_name, secrets_)
    except ChannelError as exc:
        _give_back_claim(challenge_id, version, exc)
        from .crypto.seal import seal

        sealed = seal(secrets_, f"challenge:{challenge_id}:{version}")
        send_challenge.apply((challenge_id, version, sealed), retries=1)
        return "retried"
    except Exception:
        if send_challenge.app.conf.task_eager_propagates:
            raise
        logger.exception("challenge %s: send failed", challenge_id)
        return "failed"


@shared_task(
    name="authdevice.send_challenge",
    base=SendChallengeTask,
    bind=True,
    max_retries=5,
    ignore_result=True,
    acks_late=True,
)
def send_challenge(self, challenge_id: int, version: int, sealed: str) -> str:  # type: ignore[no-untyped-def]
    """Deliver a challenge's code/link. The message carries them encrypted; the broker
    never sees them. Only the first delivery of the current version of a pending,
    unexpired challenge sends anything (a conditional UPDATE claims it)."""
    claimed = _claim(challenge_id, version)
    if claimed is None:
        return "skipped"
    channel, identifier, application_name = claimed
    try:
        secrets_ = unseal(sealed, f"challenge:{challenge_id}:{version}")
    except SealError:
        logger.error("challenge %s: undecryptable payload, not sent", challenge_id)
        return "undecryptable"
    try:
        return _deliver(challenge_id, channel, identifier, application_name, secrets_)
    except ChannelError as exc:
        _give_back_claim(challenge_id, version, exc)
        raise self.retry(exc=exc, countdown=min(60, 2 ** (self.request.retries + 1))) from exc


@shared_task(name="authdevice.notify_device_change", ignore_result=True, max_retries=5, bind=True)
def notify_device_change(self, payload: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    """Tell the user a trusted device was added or removed (an independent channel)."""
    path = app_settings.channels.get("EMAIL")
    if not path:
        return "no-channel"
    message = Message(
        channel="EMAIL", to=payload["to"], template=f"device_{payload['change']}", context=payload
    )
    try:
        load_backend(path).send(message)
    except ChannelError as exc:
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 2))) from exc
    return "sent"


@shared_task(name="authdevice.resolve_approval_request", ignore_result=True, acks_late=True)
def resolve_approval_request(event_id: int) -> str:
    """Hand a new approval request (started by identifier) to its owner's trusted devices,
    or leave it unanswerable if nobody with a trusted device owns the identifier. Runs off
    the request so the answer to the requester never depends on who exists (J03).
    Idempotent: a request already handed over, decided or expired is left alone."""
    from .flows.native import resolve_approval

    return resolve_approval(int(event_id))


@shared_task(name="authdevice.expire_events")
def expire_events() -> int:
    """Mark pending sign-in events past their expiry as expired (expiry itself is decided
    at read time; this keeps the table honest for the admin)."""
    from .flows.events import expire_events as expire

    return expire()


@shared_task(name="authdevice.rotate_signing_key_if_due")
def rotate_signing_key_if_due() -> str | None:
    """Rotate the signing key when it is older than AUTHDEVICE_KEY_ROTATION_DAYS."""
    key = key_flows.rotate_if_due()
    key_flows.purge_retired_private_keys()
    return key.kid if key is not None else None


@shared_task(name="authdevice.purge_expired_refresh_tokens")
def purge_expired_refresh_tokens() -> int:
    """Delete refresh-token rows whose family ended more than a day ago."""
    return maintenance.purge_expired_refresh_tokens()


@shared_task(name="authdevice.purge_old_challenges")
def purge_old_challenges() -> int:
    """Delete one-use things that expired over a day ago: sign-in challenges,
    authorization codes, device challenges, unconfirmed QR bindings, and replay-cache
    entries no check can meet again (``flows.maintenance.purge_old_challenges``)."""
    return maintenance.purge_old_challenges()
