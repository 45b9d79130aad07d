"""Telegram support: an aiogram 3 adapter with long polling and webhook modes.

See docs/telegram.md. The adapter (:class:`honeychat.adapters.telegram.adapter.TelegramAdapter`)
is registered by :mod:`honeychat.adapters.telegram.plugin` when ``TELEGRAM_BOT_TOKEN`` is set;
nothing here imports aiogram until then.
"""
