"""The tag rules of river_client.tags, as the Towns SDK 1.0.3 applies them (its tags.ts).

No network: a ChannelView is fed the events a client would see, and the Tags it computes for a
new message are checked field by field. The SDK adds the message being sent to its timeline
before tagging it, so its sender joins a thread's participants and a redaction of one's own
message loses the thread (both seen on the SDK's events in tests/test_sdk_tags.py).
research/river-protocol.md §4.6.
"""

from __future__ import annotations

import os

import pytest

from river_client.messages import make_edit, make_post, make_reaction, make_redaction
from river_client.proto import payloads_pb2 as pl
from river_client.proto import protocol_pb2 as pb
from river_client.tags import ChannelView, interaction_type

Mention = pl.ChannelMessage.Post.Mention


def _user() -> bytes:
    return os.urandom(20)


def _event_id() -> str:
    return os.urandom(32).hex()


def _post(view: ChannelView, sender: bytes, thread_id: str | None = None) -> str:
    event_id = _event_id()
    view.saw_message(event_id, sender, make_post("text", thread_id))
    return event_id


def test_interaction_type_per_kind() -> None:
    root = _event_id()

    assert interaction_type(make_post("a")) == pb.MESSAGE_INTERACTION_TYPE_POST
    assert interaction_type(make_post("a", thread_id=root)) == pb.MESSAGE_INTERACTION_TYPE_REPLY
    assert interaction_type(make_post("a", reply_id=root)) == pb.MESSAGE_INTERACTION_TYPE_REPLY
    assert interaction_type(make_reaction(root, "👍")) == pb.MESSAGE_INTERACTION_TYPE_REACTION
    assert interaction_type(make_edit(root, "b")) == pb.MESSAGE_INTERACTION_TYPE_EDIT
    assert interaction_type(make_redaction(root)) == pb.MESSAGE_INTERACTION_TYPE_REDACTION
    assert interaction_type(pl.ChannelMessage()) == pb.MESSAGE_INTERACTION_TYPE_UNSPECIFIED


def test_a_root_post_has_only_its_interaction_type() -> None:
    view = ChannelView()
    _post(view, _user())

    tags = view.tags(make_post("hello"), _user())

    assert tags == pb.Tags(message_interaction_type=pb.MESSAGE_INTERACTION_TYPE_POST)
    assert not tags.HasField("thread_id")


def test_the_sdk_example_reply_and_reaction_in_a_thread() -> None:
    # The SDK's own unit case: a root by user 2, replies by users 3, 4 and 4 again; user 1
    # replies mentioning itself and @channel, then reacts to user 4's first reply. Sent for
    # real, user 1's reply is in the timeline when tagged, so user 1 comes last.
    view = ChannelView()
    user1, user2, user3, user4 = _user(), _user(), _user(), _user()
    root = _post(view, user2)
    _post(view, user3, root)
    reply4 = _post(view, user4, root)
    _post(view, user4, root)
    reply = make_post("hello world", thread_id=root)
    reply.post.text.mentions.extend(
        [
            Mention(user_id="0x" + user1.hex(), display_name="User 1"),
            Mention(user_id="atChannel", display_name="atChannel", at_channel={}),
        ]
    )

    tags = view.tags(reply, user1)
    reaction = view.tags(make_reaction(reply4, "👍"), user1)

    assert tags.message_interaction_type == pb.MESSAGE_INTERACTION_TYPE_REPLY
    assert list(tags.group_mention_types) == [pb.GROUP_MENTION_TYPE_AT_CHANNEL]
    assert list(tags.mentioned_user_addresses) == [user1]
    assert list(tags.participating_user_addresses) == [user2, user3, user4, user1]
    assert tags.thread_id == bytes.fromhex(root)
    assert reaction.message_interaction_type == pb.MESSAGE_INTERACTION_TYPE_REACTION
    assert list(reaction.participating_user_addresses) == [user4]
    assert not reaction.mentioned_user_addresses and not reaction.group_mention_types
    assert reaction.thread_id == bytes.fromhex(root)


def test_the_sender_counts_as_a_participant_and_order_is_first_sight() -> None:
    view = ChannelView()
    me, author, other = _user(), _user(), _user()
    root = _post(view, author)
    late_id, early_id = _event_id(), _event_id()
    view.saw_event(early_id, other)  # seen first, decrypted last
    mine = _post(view, me, root)
    view.saw_message(late_id, author, make_post("b", root))
    view.saw_message(early_id, other, make_post("a", root))

    tags = view.tags(make_post("again", thread_id=root), me)

    assert list(tags.participating_user_addresses) == [author, other, me]
    assert view.participants(mine) == [me]


def test_a_reply_to_a_message_outside_any_thread() -> None:
    view = ChannelView()
    author = _user()
    target = _post(view, author)

    tags = view.tags(make_post("re", reply_id=target), _user())

    assert tags.message_interaction_type == pb.MESSAGE_INTERACTION_TYPE_REPLY
    assert list(tags.participating_user_addresses) == [author]
    assert not tags.HasField("thread_id")


def test_an_unknown_parent_leaves_only_the_known_replies() -> None:
    view = ChannelView()
    replier, sender = _user(), _user()
    parent = _event_id()
    _post(view, replier, parent)

    tags = view.tags(make_post("x", thread_id=parent), sender)

    assert list(tags.participating_user_addresses) == [replier, sender]
    assert tags.thread_id == bytes.fromhex(parent)


def test_reactions_name_the_sender_of_what_they_refer_to() -> None:
    view = ChannelView()
    author, stranger = _user(), _user()
    root = _post(view, author)
    undecrypted = _event_id()
    view.saw_event(undecrypted, stranger)

    on_root = view.tags(make_reaction(root, "🔥"), author)
    on_undecrypted = view.tags(make_reaction(undecrypted, "🔥"), author)
    on_unknown = view.tags(make_reaction(_event_id(), "🔥"), author)

    assert list(on_root.participating_user_addresses) == [author]
    assert not on_root.HasField("thread_id")
    assert list(on_undecrypted.participating_user_addresses) == [stranger]
    assert not on_undecrypted.HasField("thread_id")
    assert not on_unknown.participating_user_addresses and not on_unknown.HasField("thread_id")


def test_edits_and_redactions_in_a_thread_carry_its_id() -> None:
    view = ChannelView()
    author, moderator = _user(), _user()
    root = _post(view, author)
    reply = _post(view, author, root)

    edit = view.tags(make_edit(reply, "changed"), author)
    redaction = view.tags(make_redaction(reply), moderator)
    root_edit = view.tags(make_edit(root, "changed"), author)

    assert edit == pb.Tags(
        message_interaction_type=pb.MESSAGE_INTERACTION_TYPE_EDIT, thread_id=bytes.fromhex(root)
    )
    assert redaction == pb.Tags(
        message_interaction_type=pb.MESSAGE_INTERACTION_TYPE_REDACTION,
        thread_id=bytes.fromhex(root),
    )
    assert root_edit == pb.Tags(message_interaction_type=pb.MESSAGE_INTERACTION_TYPE_EDIT)


def test_an_edit_keeps_the_post_and_is_no_event_of_its_own() -> None:
    view = ChannelView()
    author = _user()
    root = _post(view, author)
    reply = _post(view, author, root)
    edit_id = _event_id()
    view.saw_message(edit_id, author, make_edit(reply, "changed"))

    assert view.tags(make_reaction(reply, "👍"), author).thread_id == bytes.fromhex(root)
    assert not view.tags(make_reaction(edit_id, "👍"), author).participating_user_addresses
    replied = view.tags(make_post("x", thread_id=root), author)
    assert list(replied.participating_user_addresses) == [author]


def test_redacting_ones_own_thread_reply_loses_the_thread() -> None:
    view = ChannelView()
    author, replier = _user(), _user()
    root = _post(view, author)
    reply = _post(view, replier, root)

    tags = view.tags(make_redaction(reply), replier)

    assert tags == pb.Tags(message_interaction_type=pb.MESSAGE_INTERACTION_TYPE_REDACTION)


def test_a_redacted_reply_leaves_the_thread() -> None:
    view = ChannelView()
    author, replier, other = _user(), _user(), _user()
    root = _post(view, author)
    reply = _post(view, replier, root)
    _post(view, other, root)
    view.saw_message(_event_id(), replier, make_redaction(reply))

    tags = view.tags(make_post("x", thread_id=root), other)
    reaction = view.tags(make_reaction(reply, "👍"), other)

    assert list(tags.participating_user_addresses) == [author, other]
    assert list(reaction.participating_user_addresses) == [replier]
    assert not reaction.HasField("thread_id")


def test_only_the_sender_redacts_and_order_of_arrival_does_not_matter() -> None:
    view = ChannelView()
    author, replier, other = _user(), _user(), _user()
    root = _post(view, author)
    kept = _post(view, replier, root)
    view.saw_message(_event_id(), other, make_redaction(kept))
    early = _event_id()
    view.saw_message(_event_id(), other, make_redaction(early))  # before its target arrives
    view.saw_message(early, other, make_post("gone", root))

    assert view.tags(make_redaction(kept), other).thread_id == bytes.fromhex(root)
    assert view.participants(root) == [author, replier]


def test_mentions_only_count_on_text_posts() -> None:
    view = ChannelView()
    user = _user()
    post = make_post("hi")
    post.post.text.mentions.extend(
        [
            Mention(user_id="0x" + user.hex().upper(), display_name="u"),
            Mention(user_id="", display_name="nobody"),
            Mention(display_name="mods", at_role=pl.ChannelMessage.Post.RoleMention(role_id=1)),
        ]
    )
    edit = make_edit(_event_id(), "hi")
    edit.edit.post.text.mentions.add(user_id="0x" + user.hex(), display_name="u")

    tags = view.tags(post, user)

    assert list(tags.mentioned_user_addresses) == [user]
    assert not tags.group_mention_types
    assert not view.tags(edit, user).mentioned_user_addresses


def test_a_bad_mention_names_the_value() -> None:
    post = make_post("hi")
    post.post.text.mentions.add(user_id="alice", display_name="alice")

    with pytest.raises(ValueError, match="alice"):
        ChannelView().tags(post, _user())


def test_the_view_forgets_the_oldest_events() -> None:
    view = ChannelView(limit=3)
    author, replier = _user(), _user()
    root = _post(view, author)
    first = _post(view, replier, root)
    _post(view, author, root)
    _post(view, replier)
    _post(view, replier)

    assert len(view) == 3
    assert view.participants(root) == [author]
    assert not view.tags(make_reaction(first, "👍"), author).participating_user_addresses
