"""SMS and WhatsApp through Twilio's Messages API (optional extra ``django-authdevice[sms]``).

Settings: AUTHDEVICE_TWILIO_ACCOUNT_SID, _AUTH_TOKEN, _FROM_NUMBER (SMS) and
_WHATSAPP_FROM (WhatsApp sender), _API_BASE (tests point it at a local fake).
"""

from __future__ import annotations

from ..conf import app_settings
from . import ChannelBackend, ChannelError, Message


class TwilioBackend(ChannelBackend):
    timeout = 10

    def send(self, message: Message) -> None:
        import requests

        sid = app_settings.TWILIO_ACCOUNT_SID
        token = app_settings.TWILIO_AUTH_TOKEN
        if message.channel == "WHATSAPP":
            sender = app_settings.TWILIO_WHATSAPP_FROM
            to = f"whatsapp:{message.to}"
            sender = (
                f"whatsapp:{sender}" if sender and not sender.startswith("whatsapp:") else sender
            )
        else:
            sender, to = app_settings.TWILIO_FROM_NUMBER, message.to
        if not (sid and token and sender):
            raise ChannelError("Twilio is not configured")
        url = f"{app_settings.TWILIO_API_BASE.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        try:
            response = requests.post(
                url,
                data={"To": to, "From": sender, "Body": message.render(".txt").strip()},
                auth=(sid, token),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise ChannelError(f"Twilio unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ChannelError(f"Twilio answered {response.status_code}")
        if response.status_code >= 400:
            # A permanent refusal (bad number...): retrying will not help.
            raise PermanentChannelError(f"Twilio refused the message ({response.status_code})")


class PermanentChannelError(Exception):
    """The provider refused the message for good."""
