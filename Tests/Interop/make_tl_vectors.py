#!/usr/bin/env python3
"""Writes the Telethon cross-check vectors: TL objects serialized by Telethon 1.45.0.

Usage: make_tl_vectors.py [OUTPUT]   (default: Tests/Interop/tl-vectors.jsonl next to this script)

Each line of the output is one JSON object:
  label   a unique name for the vector (what a failing Swift test reports)
  schema  "api" or "mtproto": which generated module decodes it
  name    the TL constructor name; id: its constructor id as 8 hex digits
  kind    "type" or "function"
  type    the TL type it belongs to (a function's: its result type), e.g. "messages.Messages"
  hex     bytes(obj) as Telethon serializes it
  tree    the normalized field tree (see tlschema.py)

The output is deterministic (a fixed seed, no clock): scripts/test regenerates it and fails when the
committed file differs. Every vector is checked here first: Telethon's own reader must parse the
bytes back into the same tree and the same bytes, so a vector never records a Telethon quirk (for
example, Telethon drops an optional Bool field whose value is False).
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import telethon  # noqa: E402
from telethon.extensions import BinaryReader  # noqa: E402
from telethon.tl import functions as F  # noqa: E402
from telethon.tl import types as T  # noqa: E402
from telethon.tl.alltlobjects import LAYER  # noqa: E402

from tlschema import Normalizer, load_schema  # noqa: E402

PINNED_TELETHON = "1.45.0"
SEED = 229


class Gen:
    """Deterministic sources of awkward values."""

    INT_EDGES = [0, 1, -1, 127, 128, 255, 256, 2**31 - 1, -(2**31), 2**30, -(2**30) - 7]
    LONG_EDGES = [0, 1, -1, 2**31, -(2**31) - 1, 2**32, 2**53 + 1, 2**63 - 1, -(2**63), -(2**62) - 3]
    STRING_LENGTHS = [0, 1, 3, 4, 5, 252, 253, 254, 255, 256, 1000]
    ALPHABET = ["a", "Z", " ", "0", "\n", "é", "ж", "€", "中", "😀", "\u200d", "\t", "\"", "\\"]

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def int32(self) -> int:
        if self.r.random() < 0.4:
            return self.r.choice(self.INT_EDGES)
        return self.r.randint(-(2**31), 2**31 - 1)

    def uint31(self) -> int:
        return self.r.randint(0, 2**31 - 1)

    def long(self) -> int:
        if self.r.random() < 0.4:
            return self.r.choice(self.LONG_EDGES)
        return self.r.randint(-(2**63), 2**63 - 1)

    def positive_long(self) -> int:
        return self.r.randint(1, 2**52)

    def date(self) -> datetime:
        return datetime.fromtimestamp(self.r.randint(1_400_000_000, 1_900_000_000), tz=timezone.utc)

    def unix(self) -> int:
        return self.r.randint(1_400_000_000, 1_900_000_000)

    def double(self) -> float:
        return self.r.choice([0.0, -0.0, 1.0, -1.5, 1e-300, 1.7976931348623157e308, 5e-324,
                              self.r.uniform(-180, 180), self.r.uniform(-1e9, 1e9)])

    def text(self, byte_length: int | None = None) -> str:
        """A string of exactly byte_length UTF-8 bytes, mixing one- to four-byte characters."""
        if byte_length is None:
            byte_length = self.r.choice(self.STRING_LENGTHS + [self.r.randint(0, 80)])
        out, used = [], 0
        while used < byte_length:
            char = self.r.choice(self.ALPHABET)
            size = len(char.encode("utf-8"))
            if used + size > byte_length:
                char, size = "x", 1
            out.append(char)
            used += size
        return "".join(out)

    def short_text(self) -> str:
        return self.text(self.r.randint(0, 24))

    def blob(self, length: int | None = None) -> bytes:
        if length is None:
            length = self.r.choice(self.STRING_LENGTHS + [self.r.randint(0, 40)])
        return bytes(self.r.getrandbits(8) for _ in range(length))

    def maybe(self, make, probability: float = 0.5):
        return make() if self.r.random() < probability else None

    def flag(self, probability: float = 0.5):
        return True if self.r.random() < probability else None

    def int128(self) -> int:
        return self.r.randint(-(2**127), 2**127 - 1)

    def int256(self) -> int:
        return self.r.randint(-(2**255), 2**255 - 1)


class Builder:
    """Telethon objects of the shapes a client meets: each call varies flags, lengths and values."""

    def __init__(self, gen: Gen):
        self.g = gen

    # Peers and small pieces

    def peer(self):
        g = self.g
        return g.r.choice([
            lambda: T.PeerUser(user_id=g.positive_long()),
            lambda: T.PeerChat(chat_id=g.positive_long()),
            lambda: T.PeerChannel(channel_id=g.positive_long()),
        ])()

    def input_peer(self):
        g = self.g
        return g.r.choice([
            lambda: T.InputPeerEmpty(),
            lambda: T.InputPeerSelf(),
            lambda: T.InputPeerChat(chat_id=g.positive_long()),
            lambda: T.InputPeerUser(user_id=g.positive_long(), access_hash=g.long()),
            lambda: T.InputPeerChannel(channel_id=g.positive_long(), access_hash=g.long()),
        ])()

    def entity(self):
        g = self.g
        offset, length = g.r.randint(0, 500), g.r.randint(1, 100)
        return g.r.choice([
            lambda: T.MessageEntityBold(offset=offset, length=length),
            lambda: T.MessageEntityItalic(offset=offset, length=length),
            lambda: T.MessageEntityCode(offset=offset, length=length),
            lambda: T.MessageEntityUrl(offset=offset, length=length),
            lambda: T.MessageEntityMention(offset=offset, length=length),
            lambda: T.MessageEntityHashtag(offset=offset, length=length),
            lambda: T.MessageEntityPre(offset=offset, length=length, language=g.short_text()),
            lambda: T.MessageEntityTextUrl(offset=offset, length=length, url="https://t.me/" + g.short_text()),
            lambda: T.MessageEntityMentionName(offset=offset, length=length, user_id=g.positive_long()),
            lambda: T.MessageEntityCustomEmoji(offset=offset, length=length, document_id=g.long()),
            lambda: T.MessageEntityBlockquote(offset=offset, length=length, collapsed=g.flag()),
        ])()

    def inline_markup(self):
        g = self.g
        rows = []
        for _ in range(g.r.randint(0, 3)):
            buttons = [self.inline_button() for _ in range(g.r.randint(0, 3))]
            rows.append(T.KeyboardInlineButtonRow(buttons=buttons))
        return T.ReplyInlineMarkup(rows=rows, force_reply=g.flag(0.2))

    def inline_button(self):
        g = self.g
        button_type = g.r.choice([
            lambda: T.InlineButtonTypeUrl(url="https://example.org/" + g.short_text()),
            lambda: T.InlineButtonTypeCallback(data=g.blob(g.r.randint(0, 64)), requires_password=g.flag(0.3)),
            lambda: T.InlineButtonTypeUserProfile(user_id=g.positive_long()),
            lambda: T.InlineButtonTypeGame(),
        ])()
        style = g.maybe(lambda: T.KeyboardButtonStyle(bg_primary=g.flag(), bg_danger=g.flag(),
                                                      icon=g.maybe(g.long)), 0.3)
        return T.KeyboardInlineButton(text=g.short_text(), type=button_type, style=style)

    def keyboard_markup(self):
        g = self.g
        rows = [T.KeyboardButtonRow(buttons=[T.KeyboardButton(text=g.short_text(), type=T.ButtonTypeDefault())
                                             for _ in range(g.r.randint(1, 3))])
                for _ in range(g.r.randint(1, 2))]
        return T.ReplyKeyboardMarkup(rows=rows, resize=g.flag(), single_use=g.flag(), persistent=g.flag(),
                                     placeholder=g.maybe(g.short_text))

    def reply_markup(self):
        g = self.g
        return g.r.choice([
            self.inline_markup,
            self.keyboard_markup,
            lambda: T.ReplyKeyboardHide(selective=g.flag()),
            lambda: T.ReplyKeyboardForceReply(single_use=g.flag(), selective=g.flag(),
                                              placeholder=g.maybe(g.short_text)),
        ])()

    def photo_size(self):
        g = self.g
        return g.r.choice([
            lambda: T.PhotoSize(type=g.r.choice("smxyw"), w=g.r.randint(0, 2560), h=g.r.randint(0, 2560),
                                size=g.r.randint(0, 2**24)),
            lambda: T.PhotoStrippedSize(type="i", bytes=g.blob()),
            lambda: T.PhotoSizeEmpty(type=""),
        ])()

    def photo(self):
        g = self.g
        return T.Photo(id=g.long(), access_hash=g.long(), file_reference=g.blob(), date=g.date(),
                       sizes=[self.photo_size() for _ in range(g.r.randint(0, 4))], dc_id=g.r.randint(1, 5),
                       has_stickers=g.flag())

    def document(self):
        g = self.g
        attributes = [
            T.DocumentAttributeFilename(file_name=g.text()),
            T.DocumentAttributeVideo(duration=g.double(), w=g.r.randint(0, 4096), h=g.r.randint(0, 4096),
                                     round_message=g.flag(), supports_streaming=g.flag(),
                                     preload_prefix_size=g.maybe(g.uint31), video_codec=g.maybe(g.short_text)),
            T.DocumentAttributeAnimated(),
        ]
        return T.Document(id=g.long(), access_hash=g.long(), file_reference=g.blob(), date=g.date(),
                          mime_type=g.r.choice(["video/mp4", "application/pdf", "image/webp", ""]),
                          size=g.r.choice([0, 2**31 + 5, 2**40, g.r.randint(0, 2**33)]), dc_id=g.r.randint(1, 5),
                          attributes=g.r.sample(attributes, g.r.randint(0, len(attributes))),
                          thumbs=g.maybe(lambda: [self.photo_size() for _ in range(g.r.randint(0, 2))]))

    def geo(self):
        g = self.g
        return g.r.choice([
            lambda: T.GeoPoint(long=g.double(), lat=g.double(), access_hash=g.long(),
                               accuracy_radius=g.maybe(g.uint31)),
            lambda: T.GeoPointEmpty(),
        ])()

    def media(self):
        g = self.g
        return g.r.choice([
            lambda: T.MessageMediaEmpty(),
            lambda: T.MessageMediaPhoto(photo=g.maybe(self.photo, 0.8), spoiler=g.flag(0.2),
                                        ttl_seconds=g.maybe(g.uint31, 0.2)),
            lambda: T.MessageMediaDocument(document=g.maybe(self.document, 0.8), video=g.flag(0.3),
                                           voice=g.flag(0.2), ttl_seconds=g.maybe(g.uint31, 0.2)),
            lambda: T.MessageMediaGeo(geo=self.geo()),
            lambda: T.MessageMediaContact(phone_number=g.short_text(), first_name=g.text(), last_name=g.short_text(),
                                          vcard=g.text(), user_id=g.positive_long()),
            lambda: T.MessageMediaVenue(geo=self.geo(), title=g.short_text(), address=g.text(),
                                        provider="foursquare", venue_id=g.short_text(), venue_type=""),
            lambda: T.MessageMediaDice(value=g.r.randint(1, 6), emoticon="🎲"),
            lambda: T.MessageMediaUnsupported(),
        ])()

    def fwd_header(self):
        g = self.g
        saved = g.r.random() < 0.3
        return T.MessageFwdHeader(date=g.date(), from_id=g.maybe(self.peer), from_name=g.maybe(g.short_text),
                                  channel_post=g.maybe(g.uint31), post_author=g.maybe(g.short_text),
                                  saved_from_peer=self.peer() if saved else None,
                                  saved_from_msg_id=g.uint31() if saved else None,
                                  imported=g.flag(0.2), psa_type=g.maybe(g.short_text, 0.1))

    def reply_header(self):
        g = self.g
        return T.MessageReplyHeader(reply_to_msg_id=g.maybe(g.uint31, 0.8), reply_to_peer_id=g.maybe(self.peer, 0.3),
                                    reply_to_top_id=g.maybe(g.uint31, 0.3), forum_topic=g.flag(0.2),
                                    quote=g.flag(0.2), quote_text=g.maybe(g.text, 0.3),
                                    quote_entities=g.maybe(lambda: [self.entity() for _ in range(g.r.randint(0, 2))], 0.2),
                                    quote_offset=g.maybe(g.uint31, 0.2))

    def reactions(self):
        g = self.g
        results = [T.ReactionCount(reaction=g.r.choice([T.ReactionEmoji(emoticon=g.r.choice(["👍", "❤", "🔥"])),
                                                        T.ReactionCustomEmoji(document_id=g.long())]),
                                   count=g.uint31(), chosen_order=g.maybe(g.uint31, 0.3))
                   for _ in range(g.r.randint(0, 3))]
        return T.MessageReactions(results=results, min=g.flag(0.3), can_see_list=g.flag(0.3))

    def replies(self):
        g = self.g
        return T.MessageReplies(replies=g.uint31(), replies_pts=g.int32(),
                                recent_repliers=g.maybe(lambda: [self.peer() for _ in range(g.r.randint(0, 3))]),
                                max_id=g.maybe(g.uint31), read_max_id=g.maybe(g.uint31))

    def message(self, rich: bool | None = None):
        g = self.g
        rich = g.r.random() < 0.6 if rich is None else rich
        views = g.maybe(g.uint31, 0.4)
        return T.Message(
            id=g.int32(), peer_id=self.peer(), date=g.date(), message=g.text(),
            out=g.flag(), mentioned=g.flag(0.2), media_unread=g.flag(0.2), silent=g.flag(0.2), post=g.flag(0.2),
            pinned=g.flag(0.2), noforwards=g.flag(0.1), invert_media=g.flag(0.1), offline=g.flag(0.2),
            from_id=g.maybe(self.peer, 0.7),
            fwd_from=g.maybe(self.fwd_header, 0.2 if rich else 0),
            via_bot_id=g.maybe(g.positive_long, 0.1),
            reply_to=g.maybe(self.reply_header, 0.3 if rich else 0),
            media=g.maybe(self.media, 0.5 if rich else 0),
            reply_markup=g.maybe(self.reply_markup, 0.3 if rich else 0),
            entities=g.maybe(lambda: [self.entity() for _ in range(g.r.randint(0, 6))], 0.6 if rich else 0),
            views=views, forwards=g.uint31() if views is not None else None,
            replies=g.maybe(self.replies, 0.2 if rich else 0),
            edit_date=g.maybe(g.date, 0.3), post_author=g.maybe(g.short_text, 0.2),
            grouped_id=g.maybe(g.long, 0.2),
            reactions=g.maybe(self.reactions, 0.3 if rich else 0),
            restriction_reason=g.maybe(lambda: [self.restriction() for _ in range(g.r.randint(0, 2))], 0.1),
            ttl_period=g.maybe(g.uint31, 0.1), effect=g.maybe(g.long, 0.1),
            paid_message_stars=g.maybe(g.long, 0.1), from_rank=g.maybe(g.short_text, 0.1),
            via_business_bot_id=g.maybe(g.positive_long, 0.1),
        )

    def action(self):
        g = self.g
        return g.r.choice([
            lambda: T.MessageActionEmpty(),
            lambda: T.MessageActionChatCreate(title=g.text(), users=[g.long() for _ in range(g.r.randint(0, 4))]),
            lambda: T.MessageActionChatEditTitle(title=g.text()),
            lambda: T.MessageActionChatAddUser(users=[g.long() for _ in range(g.r.randint(0, 5))]),
            lambda: T.MessageActionPinMessage(),
            lambda: T.MessageActionHistoryClear(),
            lambda: T.MessageActionCustomAction(message=g.text()),
            lambda: T.MessageActionSetMessagesTTL(period=g.uint31(), auto_setting_from=g.maybe(g.positive_long)),
        ])()

    def service_message(self):
        g = self.g
        return T.MessageService(id=g.int32(), peer_id=self.peer(), date=g.date(), action=self.action(),
                                out=g.flag(), silent=g.flag(), reactions_are_possible=g.flag(),
                                from_id=g.maybe(self.peer), reply_to=g.maybe(self.reply_header, 0.2),
                                ttl_period=g.maybe(g.uint31, 0.2))

    def any_message(self):
        g = self.g
        roll = g.r.random()
        if roll < 0.75:
            return self.message()
        if roll < 0.95:
            return self.service_message()
        return T.MessageEmpty(id=g.int32(), peer_id=g.maybe(self.peer))

    def restriction(self):
        g = self.g
        return T.RestrictionReason(platform=g.r.choice(["all", "ios", "android"]), reason="porn", text=g.text())

    def username(self):
        g = self.g
        return T.Username(username=g.short_text(), editable=g.flag(), active=g.flag())

    def color(self):
        g = self.g
        return T.PeerColor(color=g.maybe(lambda: g.r.randint(0, 20)), background_emoji_id=g.maybe(g.long))

    def user_status(self):
        g = self.g
        return g.r.choice([
            lambda: T.UserStatusEmpty(),
            lambda: T.UserStatusOnline(expires=g.date()),
            lambda: T.UserStatusOffline(was_online=g.date()),
            lambda: T.UserStatusRecently(by_me=g.flag()),
            lambda: T.UserStatusLastWeek(by_me=g.flag()),
        ])()

    def user(self):
        g = self.g
        if g.r.random() < 0.08:
            return T.UserEmpty(id=g.positive_long())
        bot = g.flag(0.3)
        # restricted and restriction_reason share flags.18: both present or both absent.
        restriction = g.maybe(lambda: [self.restriction()], 0.1)
        return T.User(
            restricted=True if restriction is not None else None, restriction_reason=restriction,
            id=g.positive_long(), is_self=g.flag(0.1), contact=g.flag(), mutual_contact=g.flag(0.3),
            deleted=g.flag(0.1), bot=bot, verified=g.flag(0.1), min=g.flag(0.2), premium=g.flag(0.3),
            bot_can_edit=g.flag(0.2), close_friend=g.flag(0.2), stories_hidden=g.flag(0.2),
            contact_require_premium=g.flag(0.2), bot_business=g.flag(0.1),
            access_hash=g.maybe(g.long, 0.8), first_name=g.maybe(g.text, 0.9), last_name=g.maybe(g.short_text),
            username=g.maybe(g.short_text), phone=g.maybe(lambda: str(g.r.randint(10**9, 10**12))),
            photo=g.maybe(lambda: T.UserProfilePhoto(photo_id=g.long(), dc_id=g.r.randint(1, 5),
                                                     has_video=g.flag(), stripped_thumb=g.maybe(g.blob)), 0.5),
            status=g.maybe(self.user_status, 0.7),
            bot_info_version=g.uint31() if bot else None,
            bot_inline_placeholder=g.maybe(g.short_text, 0.1) if bot else None,
            lang_code=g.maybe(lambda: g.r.choice(["en", "ru", "pt-br"]), 0.3),
            emoji_status=g.maybe(lambda: T.EmojiStatus(document_id=g.long(), until=g.maybe(g.date)), 0.2),
            usernames=g.maybe(lambda: [self.username() for _ in range(g.r.randint(0, 3))], 0.3),
            color=g.maybe(self.color, 0.3), profile_color=g.maybe(self.color, 0.2),
            bot_active_users=g.maybe(g.uint31, 0.1) if bot else None,
            bot_verification_icon=g.maybe(g.long, 0.1), send_paid_messages_stars=g.maybe(g.long, 0.1),
        )

    def chat_photo(self):
        g = self.g
        if g.r.random() < 0.3:
            return T.ChatPhotoEmpty()
        return T.ChatPhoto(photo_id=g.long(), dc_id=g.r.randint(1, 5), has_video=g.flag(),
                           stripped_thumb=g.maybe(g.blob))

    def admin_rights(self):
        g = self.g
        return T.ChatAdminRights(change_info=g.flag(), post_messages=g.flag(), delete_messages=g.flag(),
                                 ban_users=g.flag(), invite_users=g.flag(), pin_messages=g.flag(),
                                 anonymous=g.flag(0.2), manage_call=g.flag(), other=g.flag(),
                                 manage_topics=g.flag(), post_stories=g.flag())

    def banned_rights(self):
        g = self.g
        return T.ChatBannedRights(until_date=g.date(), view_messages=g.flag(0.1), send_messages=g.flag(),
                                  send_media=g.flag(), send_stickers=g.flag(), embed_links=g.flag(),
                                  send_polls=g.flag(), send_plain=g.flag(), send_reactions=g.flag())

    def chat(self):
        g = self.g
        return g.r.choice([
            lambda: T.Chat(id=g.positive_long(), title=g.text(), photo=self.chat_photo(),
                           participants_count=g.uint31(), date=g.date(), version=g.uint31(),
                           creator=g.flag(), left=g.flag(0.2), deactivated=g.flag(0.1), noforwards=g.flag(0.2),
                           migrated_to=g.maybe(lambda: T.InputChannel(channel_id=g.positive_long(),
                                                                      access_hash=g.long()), 0.2),
                           admin_rights=g.maybe(self.admin_rights, 0.3),
                           default_banned_rights=g.maybe(self.banned_rights, 0.3)),
            lambda: T.ChatForbidden(id=g.positive_long(), title=g.text()),
            lambda: T.ChatEmpty(id=g.positive_long()),
            self.channel,
            lambda: T.ChannelForbidden(id=g.positive_long(), access_hash=g.long(), title=g.text(),
                                       broadcast=g.flag(), megagroup=g.flag(), until_date=g.maybe(g.date)),
        ])()

    def channel(self):
        g = self.g
        # restricted and restriction_reason share flags.9: both present or both absent.
        restriction = g.maybe(lambda: [self.restriction()], 0.1)
        return T.Channel(
            id=g.positive_long(), title=g.text(), photo=self.chat_photo(), date=g.date(),
            creator=g.flag(0.2), left=g.flag(0.2), broadcast=g.flag(), verified=g.flag(0.1), megagroup=g.flag(),
            signatures=g.flag(0.2), min=g.flag(0.2), has_link=g.flag(0.2), slowmode_enabled=g.flag(0.1),
            forum=g.flag(0.2), stories_hidden=g.flag(0.2), signature_profiles=g.flag(0.1), monoforum=g.flag(0.1),
            access_hash=g.maybe(g.long, 0.8), username=g.maybe(g.short_text),
            restricted=True if restriction is not None else None, restriction_reason=restriction,
            admin_rights=g.maybe(self.admin_rights, 0.2), banned_rights=g.maybe(self.banned_rights, 0.1),
            default_banned_rights=g.maybe(self.banned_rights, 0.2), participants_count=g.maybe(g.uint31),
            usernames=g.maybe(lambda: [self.username() for _ in range(g.r.randint(0, 2))], 0.2),
            color=g.maybe(self.color, 0.2), emoji_status=g.maybe(lambda: T.EmojiStatus(document_id=g.long()), 0.1),
            level=g.maybe(g.uint31, 0.2), subscription_until_date=g.maybe(g.date, 0.1),
            send_paid_messages_stars=g.maybe(g.long, 0.1), linked_monoforum_id=g.maybe(g.positive_long, 0.1),
        )

    def messages_container(self, count: int | None = None):
        g = self.g
        count = g.r.randint(0, 6) if count is None else count
        messages = [self.any_message() for _ in range(count)]
        chats = [self.chat() for _ in range(g.r.randint(0, 3))]
        users = [self.user() for _ in range(g.r.randint(0, 4))]
        return g.r.choice([
            lambda: T.messages.Messages(messages=messages, topics=[], chats=chats, users=users),
            lambda: T.messages.MessagesSlice(count=g.uint31(), messages=messages, topics=[], chats=chats,
                                             users=users, inexact=g.flag(), next_rate=g.maybe(g.uint31),
                                             offset_id_offset=g.maybe(g.uint31)),
            lambda: T.messages.ChannelMessages(pts=g.int32(), count=g.uint31(), messages=messages, topics=[],
                                               chats=chats, users=users, inexact=g.flag(),
                                               offset_id_offset=g.maybe(g.uint31)),
            lambda: T.messages.MessagesNotModified(count=g.uint31()),
        ])()

    def json_value(self, depth: int = 0):
        g = self.g
        leaves = [
            lambda: T.JsonNull(),
            lambda: T.JsonBool(value=g.r.random() < 0.5),
            lambda: T.JsonNumber(value=g.double()),
            lambda: T.JsonString(value=g.text()),
        ]
        nested = [
            lambda: T.JsonArray(value=[self.json_value(depth + 1) for _ in range(g.r.randint(0, 3))]),
            lambda: T.JsonObject(value=[T.JsonObjectValue(key=g.short_text(), value=self.json_value(depth + 1))
                                        for _ in range(g.r.randint(0, 3))]),
        ]
        return g.r.choice(leaves + (nested if depth < 3 else []))()

    def updates(self):
        g = self.g
        return g.r.choice([
            lambda: T.UpdateShort(update=T.UpdateNewMessage(message=self.message(), pts=g.int32(),
                                                            pts_count=g.uint31()), date=g.date()),
            lambda: T.Updates(updates=[T.UpdateNewMessage(message=self.any_message(), pts=g.int32(), pts_count=1)
                                       for _ in range(g.r.randint(0, 3))],
                              users=[self.user() for _ in range(g.r.randint(0, 2))],
                              chats=[self.chat() for _ in range(g.r.randint(0, 2))], date=g.date(), seq=g.int32()),
            lambda: T.UpdateShortMessage(id=g.int32(), user_id=g.positive_long(), message=g.text(), pts=g.int32(),
                                         pts_count=g.uint31(), date=g.date(), out=g.flag(), silent=g.flag(),
                                         fwd_from=g.maybe(self.fwd_header, 0.2),
                                         reply_to=g.maybe(self.reply_header, 0.2),
                                         entities=g.maybe(lambda: [self.entity() for _ in range(g.r.randint(0, 3))]),
                                         ttl_period=g.maybe(g.uint31, 0.2)),
            lambda: T.UpdatesTooLong(),
        ])()

    def dc_option(self):
        g = self.g
        return T.DcOption(id=g.r.randint(1, 5), ip_address=g.r.choice(["149.154.167.50", "2001:67c:4e8:f002::a", ""]),
                          port=g.r.randint(0, 65535), ipv6=g.flag(), media_only=g.flag(), tcpo_only=g.flag(0.2),
                          cdn=g.flag(0.2), static=g.flag(0.2), this_port_only=g.flag(0.2),
                          secret=g.maybe(lambda: g.blob(17), 0.3))

    # Requests

    def request(self):
        g = self.g
        return g.r.choice([
            lambda: F.messages.GetHistoryRequest(peer=self.input_peer(), offset_id=g.int32(), offset_date=g.date(),
                                                 add_offset=g.int32(), limit=g.int32(), max_id=g.int32(),
                                                 min_id=g.int32(), hash=g.long()),
            lambda: F.InvokeWithLayerRequest(layer=LAYER, query=F.InitConnectionRequest(
                api_id=g.uint31(), device_model=g.text(), system_version=g.short_text(), app_version="1.0",
                system_lang_code="en", lang_pack="", lang_code="en",
                proxy=g.maybe(lambda: T.InputClientProxy(address=g.short_text(), port=g.r.randint(0, 65535)), 0.3),
                params=g.maybe(self.json_value, 0.5),
                query=g.r.choice([F.help.GetConfigRequest(), F.help.GetNearestDcRequest(),
                                  F.updates.GetStateRequest()]))),
            lambda: F.messages.SendMessageRequest(peer=self.input_peer(), message=g.text(), random_id=g.long(),
                                                  no_webpage=g.flag(), silent=g.flag(), noforwards=g.flag(0.2),
                                                  reply_markup=g.maybe(self.reply_markup, 0.3),
                                                  entities=g.maybe(lambda: [self.entity() for _ in range(3)], 0.4),
                                                  schedule_date=g.maybe(g.date, 0.2), effect=g.maybe(g.long, 0.1)),
            lambda: F.auth.SendCodeRequest(phone_number=str(g.r.randint(10**9, 10**12)), api_id=g.uint31(),
                                           api_hash=g.blob(16).hex(), settings=T.CodeSettings(
                                               allow_flashcall=g.flag(), current_number=g.flag(),
                                               allow_app_hash=g.flag(),
                                               logout_tokens=g.maybe(lambda: [g.blob(32) for _ in range(2)], 0.3))),
            lambda: F.upload.GetFileRequest(location=T.InputDocumentFileLocation(
                id=g.long(), access_hash=g.long(), file_reference=g.blob(), thumb_size=""),
                offset=g.r.choice([0, 2**20, 2**40]), limit=2**19, precise=g.flag(), cdn_supported=g.flag()),
            lambda: F.channels.GetMessagesRequest(channel=T.InputChannel(channel_id=g.positive_long(),
                                                                         access_hash=g.long()),
                                                  id=[T.InputMessageID(id=g.int32()) for _ in range(g.r.randint(0, 5))]),
            lambda: F.users.GetFullUserRequest(id=T.InputUser(user_id=g.positive_long(), access_hash=g.long())),
            lambda: F.messages.GetDialogsRequest(offset_date=g.date(), offset_id=g.int32(),
                                                 offset_peer=self.input_peer(), limit=100, hash=g.long(),
                                                 exclude_pinned=g.flag(), folder_id=g.maybe(lambda: g.r.randint(0, 1))),
            lambda: F.messages.ReadHistoryRequest(peer=self.input_peer(), max_id=g.int32()),
            lambda: F.updates.GetDifferenceRequest(pts=g.int32(), date=g.date(), qts=g.int32(),
                                                   pts_limit=g.maybe(g.uint31), pts_total_limit=g.maybe(g.uint31),
                                                   qts_limit=g.maybe(g.uint31)),
        ])()

    # MTProto service layer (Schema/mtproto.tl)

    def mtproto(self):
        g = self.g
        return g.r.choice([
            lambda: T.ResPQ(nonce=g.int128(), server_nonce=g.int128(), pq=g.blob(8),
                            server_public_key_fingerprints=[g.long() for _ in range(g.r.randint(0, 3))]),
            lambda: T.PQInnerDataDc(pq=g.blob(8), p=g.blob(4), q=g.blob(4), nonce=g.int128(),
                                    server_nonce=g.int128(), new_nonce=g.int256(), dc=g.r.choice([2, -2, 10002])),
            lambda: T.ServerDHParamsOk(nonce=g.int128(), server_nonce=g.int128(), encrypted_answer=g.blob(592)),
            lambda: T.ServerDHInnerData(nonce=g.int128(), server_nonce=g.int128(), g=3, dh_prime=g.blob(256),
                                        g_a=g.blob(256), server_time=g.date()),
            lambda: T.ClientDHInnerData(nonce=g.int128(), server_nonce=g.int128(), retry_id=g.long(), g_b=g.blob(256)),
            lambda: T.DhGenOk(nonce=g.int128(), server_nonce=g.int128(), new_nonce_hash1=g.int128()),
            lambda: T.DhGenRetry(nonce=g.int128(), server_nonce=g.int128(), new_nonce_hash2=g.int128()),
            lambda: T.MsgsAck(msg_ids=[g.long() for _ in range(g.r.randint(0, 8))]),
            lambda: T.BadMsgNotification(bad_msg_id=g.long(), bad_msg_seqno=g.int32(),
                                         error_code=g.r.choice([16, 17, 18, 19, 20, 32, 33, 34, 35, 48, 64])),
            lambda: T.BadServerSalt(bad_msg_id=g.long(), bad_msg_seqno=g.int32(), error_code=48, new_server_salt=g.long()),
            lambda: T.NewSessionCreated(first_msg_id=g.long(), unique_id=g.long(), server_salt=g.long()),
            lambda: T.RpcError(error_code=g.r.choice([303, 400, 401, 420, 500, -503]), error_message=g.text()),
            lambda: T.FutureSalts(req_msg_id=g.long(), now=g.unix(),
                                  salts=[T.FutureSalt(valid_since=g.unix(), valid_until=g.unix(), salt=g.long())
                                         for _ in range(g.r.randint(0, 4))]),
            lambda: T.Pong(msg_id=g.long(), ping_id=g.long()),
            lambda: T.MsgDetailedInfo(msg_id=g.long(), answer_msg_id=g.long(), bytes=g.uint31(), status=0),
            lambda: T.MsgsStateInfo(req_msg_id=g.long(), info=g.text()),
            lambda: T.DestroySessionOk(session_id=g.long()),
            lambda: F.PingDelayDisconnectRequest(ping_id=g.long(), disconnect_delay=75),
            lambda: F.ReqPqMultiRequest(nonce=g.int128()),
            lambda: F.ReqDHParamsRequest(nonce=g.int128(), server_nonce=g.int128(), p=g.blob(4), q=g.blob(4),
                                         public_key_fingerprint=g.long(), encrypted_data=g.blob(256)),
            lambda: F.SetClientDHParamsRequest(nonce=g.int128(), server_nonce=g.int128(), encrypted_data=g.blob(336)),
            lambda: F.GetFutureSaltsRequest(num=g.r.randint(1, 64)),
            lambda: F.DestroySessionRequest(session_id=g.long()),
        ])()


def plan(builder: Builder):
    """(label, object) pairs: fixed edge cases first, then seeded variety."""
    g = builder.g
    items = []
    for length in Gen.STRING_LENGTHS:
        items.append((f"string-{length}-ascii", T.MessageActionChatEditTitle(title="a" * length)))
        items.append((f"string-{length}-utf8", T.MessageActionChatEditTitle(title=g.text(length))))
        items.append((f"bytes-{length}", T.PhotoStrippedSize(type="i", bytes=g.blob(length))))
    for value in Gen.INT_EDGES:
        items.append((f"int-{value}", T.InputMessageID(id=value)))
    for value in Gen.LONG_EDGES:
        items.append((f"long-{value}", T.PeerUser(user_id=value)))
    for value in [0.0, -0.0, 1.0, -2.5, 3.141592653589793, 1e-300, 5e-324, 1.7976931348623157e308, -1e100]:
        items.append((f"double-{value!r}", T.JsonNumber(value=value)))
    items.append(("bool-true", T.JsonBool(value=True)))
    items.append(("bool-false", T.JsonBool(value=False)))
    items.append(("vector-empty-long", T.MessageActionChatAddUser(users=[])))
    items.append(("vector-long", T.MessageActionChatAddUser(users=[2**63 - 1, -(2**63), 0, -1, 1])))
    items.append(("message-minimal", T.Message(id=1, peer_id=T.PeerUser(user_id=1), date=0, message="")))
    items.append(("message-all-rich", builder.message(rich=True)))
    items.append(("user-minimal", T.User(id=1)))
    items.append(("user-flags2-only", T.User(id=7, bot_can_edit=True, stories_unavailable=True,
                                             usernames=[T.Username(username="a", active=True)],
                                             bot_verification_icon=-5, linked_community_id=2**62)))
    items.append(("messages-empty", T.messages.Messages(messages=[], topics=[], chats=[], users=[])))
    for index, inner in enumerate([F.help.GetConfigRequest(), F.help.GetNearestDcRequest(),
                                   F.messages.GetHistoryRequest(peer=T.InputPeerSelf(), offset_id=0, offset_date=0,
                                                                add_offset=0, limit=100, max_id=0, min_id=0, hash=0)]):
        items.append((f"invoke-with-layer-{index}", F.InvokeWithLayerRequest(layer=LAYER, query=F.InitConnectionRequest(
            api_id=6, device_model="Linux", system_version="6.1", app_version="1.45.0", system_lang_code="en",
            lang_pack="", lang_code="en", query=inner))))
    items.append(("code-settings-bool", T.CodeSettings(token="t", app_sandbox=True, allow_firebase=True)))
    for index in range(40):
        items.append((f"message-{index}", builder.message()))
    for index in range(10):
        items.append((f"service-message-{index}", builder.service_message()))
    for index in range(30):
        items.append((f"user-{index}", builder.user()))
    for index in range(20):
        items.append((f"chat-{index}", builder.chat()))
    for index in range(10):
        items.append((f"channel-{index}", builder.channel()))
    for index in range(20):
        items.append((f"messages-{index}", builder.messages_container()))
    for index in range(12):
        items.append((f"updates-{index}", builder.updates()))
    for index in range(12):
        items.append((f"json-{index}", builder.json_value()))
    for index in range(6):
        items.append((f"dc-option-{index}", builder.dc_option()))
    for index in range(8):
        items.append((f"media-{index}", builder.media()))
    for index in range(25):
        items.append((f"request-{index}", builder.request()))
    for index in range(30):
        items.append((f"mtproto-{index}", builder.mtproto()))
    return items


def main() -> int:
    if telethon.__version__ != PINNED_TELETHON or LAYER != 229:
        print(f"make_tl_vectors: need Telethon {PINNED_TELETHON} (layer 229), found {telethon.__version__} "
              f"(layer {LAYER}); run scripts/setup-python", file=sys.stderr)
        return 1
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "tl-vectors.jsonl"
    combinators = load_schema()
    normalizer = Normalizer(combinators)
    builder = Builder(Gen(SEED))
    lines, labels = [], set()
    for label, obj in plan(builder):
        if label in labels:
            raise SystemExit(f"duplicate label {label}")
        labels.add(label)
        data = bytes(obj)
        tree = normalizer.tree(obj)
        reread = BinaryReader(data).tgread_object()
        if normalizer.tree(reread) != tree or bytes(reread) != data:
            raise SystemExit(f"{label}: Telethon does not read back what it wrote; adjust the builder")
        combinator = combinators[obj.CONSTRUCTOR_ID]
        lines.append(json.dumps({
            "label": label,
            "schema": combinator.schema,
            "name": combinator.name,
            "id": f"{combinator.id:08x}",
            "kind": "function" if combinator.is_function else "type",
            "type": combinator.result,
            "hex": data.hex(),
            "tree": tree,
        }, ensure_ascii=False, sort_keys=False))
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"make_tl_vectors: wrote {len(lines)} vectors to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
