"""Slack adapter: slack-bolt over the Events API or Socket Mode (see docs/slack.md).

The adapter lives in :mod:`honeychat.adapters.slack.adapter`; this package
imports nothing eagerly so that loading the plugin does not load slack-bolt.
"""
