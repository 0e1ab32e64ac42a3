"""GET /api/search: full text (websearch syntax), substrings, ranking, snippets, paging, privacy."""

import base64

from tests.support import Api
from tests.test_share_transfer import chain, export_document, import_ok


def seed(api: Api, title: str, *turns: tuple[str, str]) -> dict:
    made = import_ok(api, export_document({"title": title, "messages": chain(*turns)}))
    return made["chats"][0]


def search(api: Api, q: str, **params) -> dict:
    answer = api.get("/search", params={"q": q, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def marked(item: dict) -> list[str]:
    """The highlighted parts of a snippet, as the SPA marks them (UTF-16 offsets)."""
    units = item["snippet"].encode("utf-16-le")
    return [units[a * 2 : b * 2].decode("utf-16-le") for a, b in item["highlights"]]


def test_words_are_found_ranked_and_highlighted(alice: Api) -> None:
    chat = seed(
        alice,
        "Cluster notes",
        ("user", "How do I drain a Kubernetes node before an upgrade?"),
        ("assistant", "Use kubectl drain. Kubernetes then evicts the pods; Kubernetes waits."),
        ("user", "And what about the weather?"),
    )
    items = search(alice, "kubernetes")["items"]
    assert [i["role"] for i in items] == ["assistant", "user"]  # more matches rank higher
    top = items[0]
    assert top["chat_id"] == chat["id"] and top["chat_title"] == "Cluster notes"
    assert top["message_id"] and top["created_at"]
    assert marked(top) == ["Kubernetes", "Kubernetes"]
    assert "<" not in top["snippet"]


def test_websearch_syntax_phrases_exclusion_and_or(alice: Api) -> None:
    seed(
        alice,
        "Syntax",
        ("user", "the red apple pie recipe"),
        ("user", "apple red is not a phrase here"),
        ("user", "banana bread"),
    )
    phrase = search(alice, '"red apple"')["items"]
    assert [i["snippet"] for i in phrase] == ["the red apple pie recipe"]
    assert marked(phrase[0]) == ["red apple"]
    excluded = search(alice, "apple -pie")["items"]
    assert [i["snippet"] for i in excluded] == ["apple red is not a phrase here"]
    either = {i["snippet"] for i in search(alice, "pie or banana")["items"]}
    assert either == {"the red apple pie recipe", "banana bread"}


def test_substrings_and_code_identifiers_are_found(alice: Api) -> None:
    seed(alice, "Code", ("assistant", "Call `repo.getUserById(42)` then `snake_case_name`."))
    for query, expected in [
        ("UserBy", "UserBy"),
        ("getUserById(", "getUserById("),
        ("snake_case", "snake_case"),
        ("repo.getUser", "repo.getUser"),
    ]:
        items = search(alice, query)["items"]
        assert len(items) == 1, query
        assert expected in marked(items[0]), (query, marked(items[0]))


def test_titles_are_found(alice: Api) -> None:
    chat = seed(alice, "Quarterly zeppelin budget", ("user", "numbers"))
    items = search(alice, "zeppelin")["items"]
    assert items[0]["chat_id"] == chat["id"]
    assert items[0]["message_id"] is None and items[0]["role"] is None
    assert marked(items[0]) == ["zeppelin"]


def test_a_long_message_gives_a_short_snippet_around_the_match(alice: Api) -> None:
    filler = "lorem ipsum dolor sit amet " * 40
    seed(alice, "Long", ("assistant", filler + "the quokka appears here " + filler))
    (item,) = search(alice, "quokka")["items"]
    assert len(item["snippet"]) <= 170
    assert item["snippet"].startswith("…") and item["snippet"].endswith("…")
    assert marked(item) == ["quokka"]


def test_highlights_count_utf16_units(alice: Api) -> None:
    seed(alice, "Emoji", ("user", "🎉🎉 party time with the llama 🦙"))
    (item,) = search(alice, "llama")["items"]
    assert marked(item) == ["llama"]


def test_other_users_chats_are_never_found(alice: Api, bob: Api) -> None:
    seed(bob, "Bob's platypus secrets", ("user", "my platypus password hint"))
    mine = seed(alice, "Alice", ("user", "a platypus at the zoo"))
    for query in ("platypus", "latypu", "secrets", "password"):
        items = search(alice, query)["items"]
        assert {i["chat_id"] for i in items} <= {mine["id"]}, query
    assert search(alice, "password")["items"] == []


def test_pages_follow_the_cursor_without_repeats(alice: Api) -> None:
    seed(alice, "Many", *[("user", f"wombat number {n}") for n in range(7)])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"before": cursor} if cursor else {})}
        page = search(alice, "wombat", **params)
        seen += [i["message_id"] for i in page["items"]]
        pages += 1
        cursor = page["next"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == 7 == len(set(seen))


def test_malformed_queries_are_422_or_no_results_never_500(alice: Api) -> None:
    seed(alice, "Odd", ("user", "plain words"))
    for query in [
        '"',
        '""',
        "-",
        "--x",
        "or",
        "or or",
        "!!!",
        "(((",
        "a & b | !c",
        ":*",
        "'",
        "\\",
        "%",
        "_",
        "%_%",
        "\u200b",
        "🦙",
        "<b>x</b>",
        "x" * 200,
        "\u0000",
    ]:
        answer = alice.get("/search", params={"q": query})
        assert answer.status_code in (200, 422), (query, answer.text)
    assert alice.get("/search", params={"q": "%"}).json()["items"] == []
    assert alice.get("/search", params={"q": "x" * 201}).status_code == 422
    assert alice.get("/search").status_code == 422
    for cursor in ["nope", base64.urlsafe_b64encode(b'["a", 1]').decode(), "W10"]:
        answer = alice.get("/search", params={"q": "plain", "before": cursor})
        assert answer.status_code == 422, cursor


def test_search_needs_a_login(anon: Api) -> None:
    assert anon.get("/search", params={"q": "x"}).status_code == 401
