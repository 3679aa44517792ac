"""Email through Django's mail framework (EMAIL_BACKEND), with text and HTML parts."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from . import ChannelBackend, ChannelError, Message


class EmailBackend(ChannelBackend):
    def send(self, message: Message) -> None:
        subject = " ".join(message.render("_subject.txt").split())
        mail = EmailMultiAlternatives(
            subject=subject,
            body=message.render(".txt"),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.to],
        )
        mail.attach_alternative(message.render(".html"), "text/html")
        try:
            mail.send(fail_silently=False)
        except OSError as exc:  # SMTP and socket errors are worth a retry
            raise ChannelError(str(exc)) from exc
