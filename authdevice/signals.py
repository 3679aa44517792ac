"""Signals sent by authdevice flows, inside the transaction of the change they announce.

Receivers get ``sender`` (the model class) and the keyword arguments listed per signal.
Use ``transaction.on_commit`` in a receiver for side effects that leave the process.
"""

from __future__ import annotations

from django.dispatch import Signal

#: An audit row was written. kwargs: ``event`` (AuthEvent).
auth_event_recorded = Signal()
#: A token set was issued. kwargs: ``identity``, ``application``, ``refresh_token`` (row),
#: ``auth_method``.
tokens_issued = Signal()
#: A rotated refresh token was presented again; its family was revoked. kwargs:
#: ``refresh_token`` (row), ``family``.
refresh_token_reused = Signal()
#: Refresh-token families were revoked. kwargs: ``families`` (list of UUID), ``reason``.
tokens_revoked = Signal()
#: A new signing key was created. kwargs: ``key`` (SigningKey).
signing_key_rotated = Signal()
