import json

from apps.inference.textgen import finish_reason_for, reply_pieces, tool_arguments
from apps.inference.tokens import estimate_messages_tokens, estimate_tokens, split_pieces

HELLO = [{"role": "user", "content": "Hello there"}]


def test_reply_is_a_pure_function_of_the_messages():
    assert reply_pieces(HELLO) == reply_pieces([dict(m) for m in HELLO])
    assert reply_pieces(HELLO) != reply_pieces([{"role": "user", "content": "Hello therE"}])
    assert reply_pieces(HELLO) != reply_pieces([{"role": "system", "content": "Hello there"}])


def test_reply_pieces_read_as_text():
    pieces = reply_pieces(HELLO)
    assert len(pieces) == 24
    assert not pieces[0].startswith(" ")
    assert all(piece.startswith(" ") and len(piece) > 1 for piece in pieces[1:])
    assert pieces[-1].endswith(".")
    assert "".join(pieces)[0].isupper()


def test_default_tokens_sets_the_natural_length():
    assert len(reply_pieces(HELLO, default_tokens=7)) == 7
    assert reply_pieces(HELLO, default_tokens=0) == []


def test_max_tokens_cuts_the_natural_reply():
    full = reply_pieces(HELLO)
    cut = reply_pieces(HELLO, max_tokens=5)
    assert cut == full[:5]
    assert finish_reason_for(cut, 5, 24) == "length"
    assert reply_pieces(HELLO, max_tokens=100) == full
    assert finish_reason_for(full, 100, 24) == "stop"
    assert finish_reason_for(full, None, 24) == "stop"
    assert finish_reason_for(full, 24, 24) == "stop"


def test_any_message_content_shape_is_accepted():
    messages = [
        {"role": "system", "content": None},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    assert reply_pieces(messages) == reply_pieces(messages)


def test_tool_arguments_follow_the_schema_deterministically():
    parameters = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "hourly": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    arguments = tool_arguments(HELLO, "get_weather", parameters)
    assert arguments == tool_arguments(HELLO, "get_weather", parameters)
    data = json.loads(arguments)
    assert set(data) == {"city", "unit", "days", "hourly", "tags"}
    assert isinstance(data["city"], str)
    assert data["unit"] in ("celsius", "fahrenheit")
    assert isinstance(data["days"], int)
    assert isinstance(data["hourly"], bool)
    assert isinstance(data["tags"], list)
    assert json.loads(tool_arguments(HELLO, "ping", None)) == {}


def test_estimate_is_never_zero_for_text():
    assert estimate_tokens("") == 0
    for text in ("a", ".", " ", "\n", "7", "é", "你"):
        assert estimate_tokens(text) >= 1, text


def test_estimate_is_close_to_gpt_for_plain_english():
    # cl100k gives 10 tokens for this sentence.
    sentence = "The quick brown fox jumps over the lazy dog."
    assert 8 <= estimate_tokens(sentence) <= 14


def test_estimate_grows_with_the_text():
    assert estimate_tokens("word " * 100) > estimate_tokens("word " * 10)
    assert estimate_tokens("internationalization") > estimate_tokens("nation")
    assert estimate_tokens("1234567890") > estimate_tokens("12")
    assert estimate_tokens("你好世界你好世界") > estimate_tokens("hello")


def test_split_pieces_round_trip():
    text = 'def f(x):\n    return {"a": x_1}  # done'
    assert "".join(split_pieces(text)) == text


def test_messages_estimate_counts_chat_overhead():
    empty = estimate_messages_tokens([])
    assert empty == 3  # reply priming
    one = estimate_messages_tokens([{"role": "user", "content": ""}])
    assert one == empty + 3 + estimate_tokens("user")
    two = estimate_messages_tokens(
        [{"role": "user", "content": ""}, {"role": "assistant", "content": None}]
    )
    assert two >= one + 3


def test_messages_estimate_reads_every_content_shape():
    text = "Summarise the quarterly report, please."
    as_string = estimate_messages_tokens([{"role": "user", "content": text}])
    as_parts = estimate_messages_tokens(
        [{"role": "user", "content": [{"type": "text", "text": text}]}]
    )
    assert as_string == as_parts > estimate_messages_tokens([{"role": "user", "content": ""}])
    named = estimate_messages_tokens([{"role": "user", "content": text, "name": "ada"}])
    assert named > as_string
    tool_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"function": {"name": "lookup", "arguments": '{"q": "report"}'}}],
    }
    assert estimate_messages_tokens([tool_call]) > estimate_messages_tokens(
        [{"role": "assistant", "content": None}]
    )
