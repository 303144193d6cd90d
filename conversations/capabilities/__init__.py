"""Capabilities: each one registers the commands, menus and listeners it answers.

``CORE`` is what every front end runs (the console chat too). The bot's composition root
(``bot/app.py``) adds the capabilities that need its jobs: lifecycle (/close, /extend,
/quiet), reminder planning and the coordinator's tools.
"""

from __future__ import annotations

from conversations.capabilities import about_you, consent, entries, onboarding, self_service

CORE = (onboarding, consent, entries, self_service, about_you)
