import pytest

from apps.core.errors import ServiceError
from apps.prompts.models import PromptVersion
from apps.prompts.rendering import (
    Rendered,
    check_template,
    extract_variables,
    render,
    render_draft,
    template_errors,
)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain text",
        "Hello {{name}}",
        "Hello {{ name }} and {{  other_2 }}",
        "{{_private}}",
        'Answer in JSON like {"name": "x", "tags": ["a"]}',
        "A set { a, b } and a lone } or {",
        'Fill {"customer": "{{ customer }}"}',
        "{ {not a placeholder} }",
    ],
)
def test_valid_templates_have_no_errors(text):
    assert template_errors(text) == []
    check_template(text, where="system")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Hello {{name", "Unclosed {{ at line 1, column 7"),
        ("Hello name}}", "Stray }} with no opening {{ at line 1, column 11"),
        ("Hi {{}} there", "Empty placeholder {{}}"),
        ("Hi {{   }} there", "Empty placeholder {{}}"),
        ("Hi {{ 1x }}", "Invalid variable name '1x'"),
        ("Hi {{ first name }}", "Invalid variable name 'first name'"),
        ("Hi {{ a-b }}", "Invalid variable name 'a-b'"),
        ("{{ a {{ b }}", "another {{ opens before it closes"),
        ("line one\n  {{ oops", "Unclosed {{ at line 2, column 3"),
        ('nested JSON {"a": {"b": 1}}', "Stray }}"),
    ],
)
def test_broken_placeholders_are_reported_with_where(text, fragment):
    errors = template_errors(text)
    assert errors and fragment in errors[0]
    with pytest.raises(ServiceError) as raised:
        check_template(text, where="messages[1].content")
    assert raised.value.param == "messages[1].content"
    assert raised.value.message.startswith("messages[1].content: ")


def test_every_error_is_listed_not_only_the_first():
    errors = template_errors("}} {{}} {{ ok }} {{ 9 }}")
    assert len(errors) == 3
    assert [e.split(" ")[0] for e in errors] == ["Stray", "Empty", "Invalid"]


def test_variables_are_extracted_sorted_and_unique():
    messages = [
        {"role": "user", "content": "{{ question }} for {{customer_name}}"},
        {"role": "assistant", "content": "Noted, {{ customer_name }}."},
    ]
    assert extract_variables("You serve {{ company }}; {json}", messages) == [
        "company",
        "customer_name",
        "question",
    ]
    assert extract_variables("", []) == []


def version(system="", messages=()):
    messages = list(messages)
    return PromptVersion(
        system=system, messages=messages, variables=extract_variables(system, messages)
    )


def test_render_puts_the_system_message_first_and_fills_every_template():
    v = version(
        "You help customers of {{ company }}.",
        [{"role": "user", "content": "{{question}}"}, {"role": "assistant", "content": "Sure."}],
    )
    result = render(v, {"company": "Acme", "question": "Where is my order?"})
    assert result == Rendered(
        messages=[
            {"role": "system", "content": "You help customers of Acme."},
            {"role": "user", "content": "Where is my order?"},
            {"role": "assistant", "content": "Sure."},
        ],
        extra=[],
    )


def test_an_empty_system_template_adds_no_system_message():
    result = render(version("  ", [{"role": "user", "content": "Hi"}]), {})
    assert result.messages == [{"role": "user", "content": "Hi"}]


def test_a_missing_variable_is_an_error_that_names_it():
    v = version("Dear {{ customer_name }}, about {{ order }}")
    with pytest.raises(ServiceError) as raised:
        render(v, {"order": "A-1"})
    assert raised.value.message == "Missing variable: customer_name"
    assert raised.value.param == "variables.customer_name"
    with pytest.raises(ServiceError, match="Missing variables: customer_name, order"):
        render(v, {})


def test_extra_variables_are_reported_not_refused():
    result = render(version("Hi {{ name }}"), {"name": "Ana", "mood": "happy", "age": 3})
    assert result.messages[0]["content"] == "Hi Ana"
    assert result.extra == ["age", "mood"]


def test_numbers_are_converted_and_other_values_refused():
    v = version("{{ n }} items at {{ price }}")
    result = render(v, {"n": 3, "price": 9.5})
    assert result.messages[0]["content"] == "3 items at 9.5"
    for bad in ([1], {"a": 1}, None, True):
        with pytest.raises(ServiceError) as raised:
            render(v, {"n": bad, "price": 1})
        assert raised.value.param == "variables.n"
    with pytest.raises(ServiceError) as raised:
        render(v, ["n"])
    assert raised.value.param == "variables"


def test_values_are_inserted_as_text_and_never_expanded_again():
    result = render(version("Quote: {{ a }} / {{ b }}"), {"a": "{{ b }}", "b": "{x}"})
    assert result.messages[0]["content"] == "Quote: {{ b }} / {x}"


def test_single_braces_survive_rendering():
    result = render(version('Reply as {"answer": "{{ answer }}"}'), {"answer": "yes"})
    assert result.messages[0]["content"] == 'Reply as {"answer": "yes"}'


def test_render_draft_checks_templates_like_a_save():
    result = render_draft(
        "Be {{ tone }}", [{"role": "user", "content": "{{ q }}"}], {"tone": "brief", "q": "Hi"}
    )
    assert [m["content"] for m in result.messages] == ["Be brief", "Hi"]
    with pytest.raises(ServiceError) as raised:
        render_draft("Be {{ tone", [], {"tone": "x"})
    assert raised.value.param == "system"
    with pytest.raises(ServiceError) as raised:
        render_draft("", [{"role": "user", "content": "{{ }}"}], {})
    assert raised.value.param == "messages[0].content"
    with pytest.raises(ServiceError) as raised:
        render_draft("", [{"role": "tool", "content": "x"}], {})
    assert raised.value.param == "messages[0].role"
    with pytest.raises(ServiceError, match="Missing variable: q"):
        render_draft(None, [{"role": "user", "content": "{{ q }}"}], {})
