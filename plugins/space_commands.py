"""The chat commands' behaviour in shared spaces, and the sharing choice.

Used by :mod:`honeychat.plugins.commands`: ``/character`` and ``/space`` in a
space are for its admins; ``/forget`` in a space clears the whole space (an
admin) or only the asking member's contributions (anyone); ``/memory share
on|off`` lets a character use the user's private memory in spaces.
"""

from __future__ import annotations

from honeychat.core.forget import clear_conversation, forget_contributions
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.prompt import greeting
from honeychat.core.space_settings import ReplyPolicy, SettingNotSaved
from honeychat.core.spaces import space_of
from honeychat.core.turn import CommandCall
from honeychat.core.types import Choice, Reply

ADMINS_ONLY = "Sorry, only this space's admins can change that. Ask one of them!"
NOT_SAVED = "I couldn't save that just now. Please try again in a moment."
UNREACHABLE = "I couldn't reach my memory just now, so nothing was erased. Please try again later."
WHOLE_SPACE = "space"
MINE = "mine"
CANCEL = "cancel"


def _space(call: CommandCall) -> str:
    space = space_of(call.message)
    assert space is not None, "only called in a space"
    return space


async def character(call: CommandCall, wanted: str) -> Reply:
    """``/character NAME`` in a space: its admins choose the space's character."""
    if not await call.bot.spaces.is_admin(call.message):
        return Reply(ADMINS_ONLY, ephemeral=True)
    chosen = call.bot.characters.get(wanted)
    if chosen is None:
        known = ", ".join(c.id for c in call.bot.characters.all())
        return Reply(
            f"There is no character called '{wanted}'. Choose one of: {known}.", ephemeral=True
        )
    try:
        await call.bot.spaces.set_character_id(call.message.platform, _space(call), chosen.id)
    except SettingNotSaved:
        return Reply(NOT_SAVED, ephemeral=True)
    return Reply(
        f"{chosen.name} is now the character of this space.\n\n"
        f"{greeting(chosen, call.message.user_name, '1')}"
    )


async def forget(call: CommandCall) -> Reply:
    """``/forget`` in a space: the whole space (admins), or the member's own contributions."""
    answer = call.args.strip().lower()
    if answer == CANCEL:
        return Reply("Okay, I'll keep remembering.", ephemeral=True)
    admin = await call.bot.spaces.is_admin(call.message)
    if answer in (WHOLE_SPACE, "confirm"):
        if not admin:
            return Reply(ADMINS_ONLY, ephemeral=True)
        try:
            await clear_conversation(call.bot, call.conversation)
        except StoreUnavailable:
            return Reply(UNREACHABLE)
        return Reply(f"Done. {call.character.name} has forgotten everything said here.")
    if answer == MINE:
        try:
            await forget_contributions(call.bot, call.conversation, call.message.user_id)
        except StoreUnavailable:
            return Reply(UNREACHABLE, ephemeral=True)
        return Reply(
            f"Done. {call.character.name} has forgotten what you said here.", ephemeral=True
        )
    choices = [Choice("Forget what I said here", "forget", MINE)]
    if admin:
        choices.insert(0, Choice("Forget everything said here", "forget", WHOLE_SPACE))
    choices.append(Choice("Cancel", "forget", CANCEL))
    return Reply(
        f"What should {call.character.name} forget? (Your private chats are not touched.)",
        choices=tuple(choices),
        ephemeral=True,
    )


async def share(call: CommandCall, value: str) -> Reply:
    """``/memory share on|off``: whether this character may use the user's private memory
    in spaces (kept per user and character; off until they turn it on)."""
    name = call.character.name
    platform, user = call.message.platform, call.message.user_id
    if value not in ("on", "off"):
        on = await call.bot.spaces.shares_private(platform, user, call.character.id)
        return Reply(
            f"Sharing is {'on' if on else 'off'}: in groups and channels {name} "
            f"{'may use' if on else 'does not use'} what you told {name} in private. "
            "Change it with /memory share on or /memory share off.",
            ephemeral=True,
        )
    try:
        await call.bot.spaces.set_shares_private(platform, user, call.character.id, value == "on")
    except SettingNotSaved:
        return Reply(NOT_SAVED, ephemeral=True)
    if value == "on":
        return Reply(
            f"Okay: in groups and channels, {name} may now use what you told {name} in "
            "private. Turn it off any time with /memory share off.",
            ephemeral=True,
        )
    return Reply(
        f"Okay: {name} keeps what you said in private out of groups and channels.",
        ephemeral=True,
    )


async def space(call: CommandCall) -> Reply:
    """``/space``: show the space's reply policy; its admins change it.

    ``/space mentions`` | ``/space keywords WORD, WORD`` | ``/space chance 0.1`` |
    ``/space limit N`` (replies per minute).
    """
    if space_of(call.message) is None:
        return Reply("This command is for groups and channels.", ephemeral=True)
    bot, platform, where = call.bot, call.message.platform, _space(call)
    policy = await bot.spaces.policy(platform, where)
    default_limit = bot.settings.space_replies_per_minute
    verb, _, rest = call.args.strip().partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if not verb:
        return Reply(policy.describe(default_limit), ephemeral=True)
    if not await bot.spaces.is_admin(call.message):
        return Reply(ADMINS_ONLY, ephemeral=True)
    changed = _changed(policy, verb, rest)
    if changed is None:
        return Reply(
            "Use /space mentions, /space keywords WORD, WORD, /space chance 0.1 "
            "or /space limit N (replies a minute).",
            ephemeral=True,
        )
    try:
        await bot.spaces.set_policy(platform, where, changed)
    except SettingNotSaved:
        return Reply(NOT_SAVED, ephemeral=True)
    return Reply(changed.describe(default_limit))


def _changed(policy: ReplyPolicy, verb: str, rest: str) -> ReplyPolicy | None:
    """The policy after ``/space VERB REST``, or ``None`` when the command is malformed."""
    from dataclasses import replace

    if verb == "mentions":
        return replace(policy, mode="mentions")
    if verb == "keywords":
        words = tuple(w.strip() for w in rest.replace("\n", ",").split(",") if w.strip())
        return replace(policy, mode="keywords", keywords=words[:50]) if words else None
    try:
        number = float(rest)
    except ValueError:
        return None
    if verb == "chance" and 0 <= number <= 1:
        return replace(policy, mode="chance", chance=number)
    if verb == "limit" and number >= 0 and number == int(number):
        return replace(policy, per_minute=int(number))
    return None
