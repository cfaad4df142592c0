"""StopStringFilter: stops matched across pieces, excluded from the output, partial matches held back."""

from __future__ import annotations

from edge_runtime.engine.stop_strings import StopStringFilter


def feed_all(stops: list[str], pieces: list[str]) -> tuple[list[str], bool]:
    flt = StopStringFilter(stops)
    out: list[str] = []
    for piece in pieces:
        text, stopped = flt.feed(piece)
        out.append(text)
        if stopped:
            return out, True
    out.append(flt.flush())
    return out, False


def test_stop_spanning_pieces_is_excluded() -> None:
    out, stopped = feed_all(["END"], ["hello E", "N", "D and more"])
    assert stopped and "".join(out) == "hello "
    assert out == ["hello ", "", ""]


def test_partial_match_is_held_then_released() -> None:
    flt = StopStringFilter(["###"])
    assert flt.feed("a #") == ("a ", False)
    assert flt.feed("#") == ("", False)
    assert flt.feed("x") == ("##x", False)
    assert flt.flush() == ""


def test_held_text_comes_out_at_the_end() -> None:
    out, stopped = feed_all(["stop"], ["we st", "o"])
    assert not stopped and "".join(out) == "we sto"


def test_earliest_of_several_stops_wins() -> None:
    out, stopped = feed_all(["world", "lo w"], ["hel", "lo wor", "ld"])
    assert stopped and "".join(out) == "hel"


def test_no_stops_passes_text_through() -> None:
    flt = StopStringFilter(["", ""])
    assert flt.feed("anything") == ("anything", False)


def test_stop_inside_one_piece_keeps_the_text_before_it() -> None:
    out, stopped = feed_all(["\n\n"], ["line one\n\nline two"])
    assert stopped and out == ["line one"]


def test_overlapping_prefix_keeps_only_what_can_still_match() -> None:
    flt = StopStringFilter(["aab"])
    assert flt.feed("aaa") == ("a", False)
    assert flt.feed("b") == ("", True)
