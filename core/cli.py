"""The ``honeychat`` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import json
import logging
import logging.handlers
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from honeychat.core.config_errors import describe as describe_settings_error
from honeychat.core.redact import install_log_redaction, redact, register_secrets, settings_secrets
from honeychat.core.settings import Settings

NO_LLM = (
    "No language model is configured: set OPENROUTER_API_KEY, "
    "or LLM_BASE_URL (with LLM_API_KEY if it needs one) for another OpenAI-compatible endpoint."
)


CHAT_DRAIN_SECONDS = 60.0
"""How long ``honeychat chat`` waits at exit for the summaries its turns made due."""


class _OneLine(logging.Formatter):
    """Log records as one line, without tracebacks (those go to the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"honeychat: {record.levelname.lower()}: {record.getMessage()}"


def setup_logging(settings: Settings, *, console_level: int) -> Path:
    """Full logs to a rotating file under the data dir; short lines on stderr."""
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "honeychat.log"
    root = logging.getLogger()
    root.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(_OneLine())
    root.handlers = [file_handler, console]
    install_log_redaction()
    for noisy in ("httpx", "chromadb", "sentence_transformers", "urllib3", "aiogram.event", "saq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def _fail(message: str, code: int = 1) -> int:
    print(f"honeychat: {message}", file=sys.stderr)
    return code


# Subcommands


async def _with_bot(
    settings: Settings, work: Callable[[Any], Awaitable[int]], *, jobs_worker: bool = False
) -> int:
    from honeychat.core.bot import Bot

    # A short command runs no job worker (a job it took would only go back to the queue);
    # `chat` runs one unless JOBS_WORKER=false.
    bot = Bot(settings.model_copy(update={"jobs_worker": jobs_worker and settings.jobs_worker}))
    await bot.start()
    try:
        return await work(bot)
    finally:
        await bot.stop()


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.llm_endpoint:
        return _fail(NO_LLM, 2)
    setup_logging(settings, console_level=logging.ERROR)
    from honeychat.adapters.terminal import run_chat

    if isinstance(sys.stdin, io.TextIOWrapper):
        # Invalid UTF-8 typed or piped in becomes U+FFFD instead of ending the chat.
        sys.stdin.reconfigure(errors="replace")

    async def work(bot: Any) -> int:
        return await run_chat(bot, user=args.user, character=args.character)

    # At the end of a chat, the summaries it made due get up to a minute (nobody kills this
    # process after SHUTDOWN_TIMEOUT); any left wait in Redis for the next worker.
    settings = settings.model_copy(
        update={"shutdown_timeout": max(settings.shutdown_timeout, CHAT_DRAIN_SECONDS)}
    )
    return asyncio.run(_with_bot(settings, work, jobs_worker=True))


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    setup_logging(settings, console_level=logging.INFO)
    if args.ops_port:
        from honeychat.core.inspector.server import bind_refusal, run_with_ops

        refusal = bind_refusal(settings, args.ops_host)
        if refusal:
            return _fail(refusal, 2)
        return asyncio.run(run_with_ops(settings, args.ops_host, args.ops_port))
    from honeychat.core.runner import run_adapters

    return asyncio.run(run_adapters(settings))


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """``worker``: run background jobs (summaries) only, for scale-out."""
    if not settings.llm_endpoint:
        return _fail(NO_LLM, 2)
    setup_logging(settings, console_level=logging.INFO)
    from honeychat.core.runner import run_worker

    if args.ops_port:
        from honeychat.core.inspector.server import bind_refusal

        refusal = bind_refusal(settings, args.ops_host)
        if refusal:
            return _fail(refusal, 2)
    ops = (args.ops_host, args.ops_port) if args.ops_port else None
    return asyncio.run(run_worker(settings, ops=ops))


def cmd_memory(settings: Settings, args: argparse.Namespace) -> int:
    setup_logging(settings, console_level=logging.ERROR)

    if args.all:
        return _erase_user(settings, args)
    args.platform = args.platform or "terminal"

    async def work(bot: Any) -> int:
        from honeychat.core.types import ConversationKey

        # Without --character: the one this user (or space) talks to now.
        if args.space:
            current = await bot.space_character(args.platform, args.space)
            conversation = ConversationKey.for_space(
                args.platform, args.space, args.character or current.id
            )
        else:
            current = await bot.current_character(args.platform, args.user)
            conversation = ConversationKey(args.platform, args.user, args.character or current.id)
        data = await bot.plugins.first(
            "honeychat_export_memory", conversation=conversation, bot=bot
        )
        problem = _unknown_target(bot, args, data)
        if problem:
            return _fail(problem, 2)
        if args.action == "search":
            if not args.query.strip():
                return _fail("search needs a non-empty query", 2)
            results = await bot.plugins.first(
                "honeychat_search_memory",
                conversation=conversation,
                query=args.query,
                k=args.k,
                bot=bot,
            )
            for summary in results or []:
                print(
                    f"[{summary.score:.3f}] messages {summary.first_seq}-{summary.last_seq}: {summary.text}"
                )
            if not results:
                print("No memories found.")
            return 0
        if args.action == "clear":
            from honeychat.core.forget import clear_conversation

            await clear_conversation(bot, conversation)
            if conversation.platform == "terminal" and not conversation.is_space:
                from honeychat.adapters.terminal import forget_history

                forget_history(settings.data_dir, args.user)
            print(f"Cleared {conversation.id}.")
            return 0
        if args.action == "export":
            print(json.dumps(data, indent=2, ensure_ascii=False))
            return 0
        _print_memory(data or {})
        return 0

    return asyncio.run(_with_bot(settings, work))


def _erase_user(settings: Settings, args: argparse.Namespace) -> int:
    """``memory clear --all``: everything about the user (every platform unless one is named)."""
    if args.action != "clear":
        return _fail("--all only goes with clear (memory clear --user ID --all)", 2)
    if args.character:
        return _fail("--all erases every character's memory; leave out --character", 2)

    async def work(bot: Any) -> int:
        from honeychat.core.erase import ErasureIncomplete, UserRef, erase_user
        from honeychat.core.memory.stores import StoreUnavailable

        try:
            erasure = await erase_user(bot, UserRef(args.user, args.platform))
        except ErasureIncomplete as exc:
            return _fail(f"{exc}; partly erased: run the same command again when it is back", 1)
        except StoreUnavailable as exc:
            return _fail(f"{exc}; nothing was erased", 1)
        print(erasure.describe()[0].upper() + erasure.describe()[1:] + ".")
        return 0

    return asyncio.run(_with_bot(settings, work))


BUILTIN_PLATFORMS = ("terminal", "telegram", "discord", "slack")


def _unknown_target(bot: Any, args: argparse.Namespace, data: dict[str, Any] | None) -> str | None:
    """Why ``--character`` / ``--platform`` name no conversation, or None if they may."""
    if args.character and bot.characters.get(args.character) is None:
        known = ", ".join(c.id for c in bot.characters.all())
        return f"no character '{args.character}'. Available: {known}."
    stored = data and (data.get("last_seq") or data.get("summaries") or data.get("recent"))
    if (
        args.platform not in BUILTIN_PLATFORMS
        and not stored
        and not (data or {}).get("unavailable")
    ):
        return (
            f"nothing stored for platform '{args.platform}' (built-in platforms: "
            f"{', '.join(BUILTIN_PLATFORMS)}; a plugin's adapter may add others)."
        )
    return None


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _print_memory(data: dict[str, Any]) -> None:
    summaries, recent = data.get("summaries", []), data.get("recent", [])
    header = (
        f"Conversation {data.get('conversation')}: {_plural(len(summaries), 'summary', 'summaries')}"
        f" and {_plural(len(recent), 'recent message', 'recent messages')}"
    )
    if data.get("last_seq"):
        # Sequence numbers keep counting after a clear, so they are not a count of what is held.
        header += (
            f" (messages numbered up to #{data['last_seq']}, "
            f"summarized through #{data.get('summarized_through', 0)})"
        )
    print(header)
    for item in summaries:
        print(f"  summary {item['first_seq']}-{item['last_seq']}: {item['text']}")
    for message in recent:
        text = " ".join(message["text"].split())
        shown = text if len(text) <= 200 else text[:199] + "…"
        print(
            f"  #{message['seq']} {message['role']}: {shown}  (use export for full text)"
            if shown != text
            else f"  #{message['seq']} {message['role']}: {text}"
        )
    if data.get("unavailable"):
        print("Unavailable layers: " + ", ".join(data["unavailable"]))


def cmd_characters(settings: Settings, args: argparse.Namespace) -> int:
    """``characters list|validate|import|export``."""
    from honeychat.core import character_cli

    return character_cli.run(settings, args)


def cmd_plugins(settings: Settings, args: argparse.Namespace) -> int:
    """``plugins hooks``: every hook spec with its documentation; ``plugins list``: what loads."""
    if args.action == "hooks":
        from honeychat.core.hookdoc import text

        print(text(), end="")
        return 0
    from honeychat.core.plugins import PluginHost

    # Problems are printed below; the log file keeps the details (tracebacks).
    setup_logging(settings, console_level=logging.CRITICAL)
    host = PluginHost(settings.plugin_config)
    host.load(disabled=settings.disabled_plugins, plugins_dir=settings.plugins_dir)
    print(_plugin_table(host))
    for problem in host.problems:
        print(f"✗ {problem}")
    return 1 if host.problems else 0


def _plugin_table(host: Any) -> str:
    """One row per plugin: name, source, version, config status, hooks (without the prefix)."""
    rows = [("NAME", "SOURCE", "VERSION", "CONFIG", "HOOKS")]
    for info in [*host.info.values(), *host.disabled.values()]:
        hooks = ", ".join(h.removeprefix("honeychat_") for h in info.hooks)
        status = info.config if info.name in host.info else "disabled"
        rows.append((info.name, info.source, info.version or "-", status, hooks or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )


def cmd_new(settings: Settings, args: argparse.Namespace) -> int:
    """``new plugin NAME``: scaffold a plugin package in the current (or ``--dir``) directory."""
    from honeychat import __version__
    from honeychat.core.scaffold import ScaffoldError, scaffold_plugin

    try:
        root = scaffold_plugin(args.name, Path(args.dir), honeychat_version=__version__)
    except ScaffoldError as exc:
        return _fail(str(exc), 2)
    print(f"Created {root}")
    print(f"Next: cd {root} && pip install -e '.[test]' && python -m pytest")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from honeychat.core.inspector.server import bind_refusal, serve

    refusal = bind_refusal(settings, args.host)
    if refusal:
        return _fail(refusal, 2)
    setup_logging(settings, console_level=logging.INFO)
    return asyncio.run(serve(settings, args.host, args.port))


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from honeychat.core.doctor import run_doctor

    return asyncio.run(run_doctor(settings))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="honeychat", description="AI companion bots that remember."
    )
    parser.add_argument("--version", action="version", version="honeychat 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="chat with a character in the terminal")
    chat.add_argument("--character", help="character id (see `honeychat characters list`)")
    chat.add_argument(
        "--user", default=getpass.getuser(), help="your user name (default: your login)"
    )
    chat.set_defaults(handler=cmd_chat)

    run = sub.add_parser("run", help="serve the configured platforms (Telegram, Discord, Slack)")
    run.add_argument(
        "--ops-port", type=int, default=0, help="also serve /healthz, /readyz, /metrics here"
    )
    run.add_argument("--ops-host", default="127.0.0.1", help="address for --ops-port")
    run.set_defaults(handler=cmd_run)

    worker = sub.add_parser(
        "worker", help="run background jobs (summaries) only; run and chat also run them"
    )
    worker.add_argument(
        "--ops-port", type=int, default=0, help="also serve /healthz, /readyz, /metrics here"
    )
    worker.add_argument("--ops-host", default="127.0.0.1", help="address for --ops-port")
    worker.set_defaults(handler=cmd_worker)

    memory = sub.add_parser("memory", help="inspect or manage one conversation's memory")
    memory.add_argument("action", choices=["show", "search", "clear", "export"])
    memory.add_argument("query", nargs="?", default="", help="text to search for (search only)")
    memory.add_argument("--platform", default=None, help="default: terminal (with --all: every)")
    memory.add_argument("--user", default=getpass.getuser())
    memory.add_argument(
        "--space",
        default=None,
        help="a shared space's id instead of a user (Telegram chat id, Discord channel id, "
        "Slack TEAM:CHANNEL)",
    )
    memory.add_argument("--character", default=None)
    memory.add_argument("-k", type=int, default=5, help="how many results (search only)")
    memory.add_argument(
        "--all",
        action="store_true",
        help="clear only: erase everything about the user (every character and platform)",
    )
    memory.set_defaults(handler=cmd_memory)

    characters = sub.add_parser(
        "characters", help="list, validate, import or export characters (Character Cards V2/V3)"
    )
    characters.add_argument("action", choices=["list", "validate", "import", "export"])
    characters.add_argument(
        "files",
        nargs="*",
        help="validate: YAML files (default: all loaded); import: a card (PNG or JSON); export: an id",
    )
    characters.add_argument("--dir", help="import: where to write the YAML character")
    characters.add_argument("--id", help="import: the new character's id (default: from its name)")
    characters.add_argument(
        "--format", choices=["json", "png"], default="png", help="export format"
    )
    characters.add_argument("--out", help="export: the file to write (default: ID.json or ID.png)")
    characters.set_defaults(handler=cmd_characters)

    plugins = sub.add_parser("plugins", help="list plugins or hook specs")
    plugins.add_argument(
        "action",
        choices=["list", "hooks"],
        help="list: every plugin with source, version, config and hooks; hooks: every hook spec",
    )
    plugins.set_defaults(handler=cmd_plugins)

    new = sub.add_parser("new", help="scaffold a new plugin package")
    new.add_argument("kind", choices=["plugin"])
    new.add_argument("name", help="the plugin's name (lower-case letters, digits, '_' or '-')")
    new.add_argument("--dir", default=".", help="where to create it (default: here)")
    new.set_defaults(handler=cmd_new)

    serve = sub.add_parser("serve", help="serve the memory inspector (API, page, /metrics)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=cmd_serve)

    doctor = sub.add_parser("doctor", help="check configuration, stores and the LLM endpoint")
    doctor.set_defaults(handler=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        return _fail(describe_settings_error(exc) or str(exc), 2)
    except Exception as exc:  # e.g. a HONEYCHAT_CONFIG file that is not YAML
        return _fail(f"invalid configuration: {redact(exc)}".splitlines()[0], 2)
    register_secrets(settings_secrets(settings))
    if isinstance(getattr(args, "user", None), str) and not args.user.strip():
        return _fail("--user must not be empty: give the user name to act as", 2)
    from honeychat.core.characters import CharacterConfigError

    try:
        return int(args.handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except CharacterConfigError as exc:  # a configuration error: one line, exit 2
        return _fail(str(exc), 2)
    except Exception as exc:  # last resort: one line for the user, the trace in the log file
        logging.getLogger(__name__).exception("honeychat %s failed", args.command)
        return _fail(
            f"{args.command} failed: {redact(exc)} (details in {settings.data_dir / 'logs' / 'honeychat.log'})"
        )


if __name__ == "__main__":
    sys.exit(main())
