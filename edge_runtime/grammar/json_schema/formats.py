"""GBNF rules for the string formats a grammar can check exactly (the content between the quotes).

Each grammar accepts only strings of its format (RFC 3339 dates and times with real month lengths and leap
years, RFC 4122 UUIDs, RFC 3986 URIs, ...); where a rule is not worth its size it is narrower than the RFC,
never wider: leap seconds (`:60`), quoted e-mail local parts and `\\uXXXX`-escaped characters are not
generated. An e-mail address's host is a dotted domain whose top-level domain is letters and not special-use
(what email-validator, behind pydantic's EmailStr, also demands), within RFC 5321's lengths. Formats defined by
the specification that are not here are refused by the compiler; formats it does not define are annotations.
"""

from __future__ import annotations

import re
import string

from edge_runtime.grammar.json_schema.char_sets import complement, json_char_set

_RULE_NAME = re.compile(r"fmt-[a-z0-9-]+")
_HEX = "[0-9a-fA-F]"

_UCSCHAR = (
    "[\\u00A0-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFEF"
    + "".join(f"\\U{plane:04X}0000-\\U{plane:04X}FFFD" for plane in range(0x1, 0xE))
    + "\\U000E1000-\\U000EFFFD]"
)
_IPRIVATE = "[\\uE000-\\uF8FF\\U000F0000-\\U000FFFFD\\U00100000-\\U0010FFFD]"


SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
"""Top-level domains no address is delivered in (RFC 6761, 6762, 7686); email-validator refuses them."""


def _letters_except(name: str, words: tuple[str, ...], low: int, high: int) -> dict[str, str]:
    """Rules for `name`: `low` to `high` ASCII letters in any case that spell none of `words` (lower case). One
    rule per prefix of a word (a trie); a letter that leaves the trie frees the rest of the name."""

    def rule(prefix: str) -> str:
        return f"{name}-{prefix}" if prefix else name

    def letters(chosen: list[str]) -> str:
        return "[" + "".join(c + c.upper() for c in chosen) + "]"

    rules: dict[str, str] = {}
    for prefix in sorted({word[:end] for word in words for end in range(len(word))}):
        depth = len(prefix)
        inside = sorted({word[depth] for word in words if word.startswith(prefix) and len(word) > depth})
        outside = [c for c in string.ascii_lowercase if c not in inside]
        alternatives = ['""'] if depth >= low and prefix not in words else []
        alternatives += [f"{letters([c])} {rule(prefix + c)}" for c in inside]
        rest_low, rest_high = max(low - depth - 1, 0), high - depth - 1
        alternatives.append(f"{letters(outside)} [a-zA-Z]{{{rest_low},{rest_high}}}")
        rules[rule(prefix)] = " | ".join(alternatives)
    for word in words:  # past a whole word, at least one more letter
        rules.setdefault(rule(word), f"[a-zA-Z]{{{max(low - len(word), 1)},{high - len(word)}}}")
    return rules


def _uri_family(prefix: str, unreserved: str, private: str | None) -> dict[str, str]:
    """RFC 3986 URI and URI-reference rules under `prefix`; with RFC 3987's wider `unreserved` (and
    private-use characters in queries) the same rules are IRI and IRI-reference."""
    p = prefix
    query_extra = f" | {private}" if private else ""
    return {
        f"{p}unreserved": unreserved,
        f"{p}pchar": f"{p}unreserved | fmt-pct | fmt-sub-delims | [:@]",
        f"{p}segment": f"{p}pchar*",
        f"{p}segment-nz": f"{p}pchar+",
        f"{p}segment-nz-nc": f'( {p}unreserved | fmt-pct | fmt-sub-delims | "@" )+',
        f"{p}host": (
            '"[" ( fmt-ipv6 | [vV] [0-9a-fA-F]+ "." ( [a-zA-Z0-9._~-] | fmt-sub-delims | ":" )+ ) "]"'
            f" | fmt-ipv4 | ( {p}unreserved | fmt-pct | fmt-sub-delims )*"
        ),
        f"{p}authority": (
            f'( ( {p}unreserved | fmt-pct | fmt-sub-delims | ":" )* "@" )? {p}host ( ":" [0-9]* )?'
        ),
        f"{p}path-abempty": f'( "/" {p}segment )*',
        f"{p}path-absolute": f'"/" ( {p}segment-nz ( "/" {p}segment )* )?',
        f"{p}uri-tail": f'( "?" ( {p}pchar | [/?]{query_extra} )* )? ( "#" ( {p}pchar | [/?] )* )?',
        f"{p}uri": (
            '[a-zA-Z] [a-zA-Z0-9+.-]* ":"'
            f' ( "//" {p}authority {p}path-abempty | {p}path-absolute | {p}segment-nz ( "/" {p}segment )*'
            f' | "" ) {p}uri-tail'
        ),
        f"{p}uri-reference": (
            f'{p}uri | ( "//" {p}authority {p}path-abempty | {p}path-absolute'
            f' | {p}segment-nz-nc ( "/" {p}segment )* | "" ) {p}uri-tail'
        ),
    }


_RULES: dict[str, str] = {
    "fmt-ucschar": _UCSCHAR,
    "fmt-iprivate": _IPRIVATE,
    # RFC 3339 full-date: day ranges per month, 29 February only in leap years.
    "fmt-date": (
        '[0-9]{4} "-" ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )'
        ' | [0-9]{4} "-" ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" )'
        ' | [0-9]{4} "-02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] )'
        ' | fmt-leap-year "-02-29"'
    ),
    "fmt-leap-year": (
        '[0-9]{2} ( [02468] [48] | [2468] "0" | [13579] [26] ) | ( [02468] [048] | [13579] [26] ) "00"'
    ),
    "fmt-time": (
        '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]+ )?'
        ' ( [Zz] | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )'
    ),
    "fmt-date-time": "fmt-date [Tt] fmt-time",
    "fmt-uuid": f'{_HEX}{{8}} "-" {_HEX}{{4}} "-" {_HEX}{{4}} "-" {_HEX}{{4}} "-" {_HEX}{{12}}',
    "fmt-dec-octet": '"25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9]',
    "fmt-ipv4": 'fmt-dec-octet "." fmt-dec-octet "." fmt-dec-octet "." fmt-dec-octet',
    "fmt-h16": f"{_HEX}{{1,4}}",
    "fmt-h16c": 'fmt-h16 ":"',
    "fmt-ls32": 'fmt-h16 ":" fmt-h16 | fmt-ipv4',
    # RFC 3986 IPv6address, one alternative per position of "::".
    "fmt-ipv6": (
        "fmt-h16c{6} fmt-ls32"
        ' | "::" fmt-h16c{5} fmt-ls32'
        ' | fmt-h16? "::" fmt-h16c{4} fmt-ls32'
        ' | ( fmt-h16c{0,1} fmt-h16 )? "::" fmt-h16c{3} fmt-ls32'
        ' | ( fmt-h16c{0,2} fmt-h16 )? "::" fmt-h16c{2} fmt-ls32'
        ' | ( fmt-h16c{0,3} fmt-h16 )? "::" fmt-h16c fmt-ls32'
        ' | ( fmt-h16c{0,4} fmt-h16 )? "::" fmt-ls32'
        ' | ( fmt-h16c{0,5} fmt-h16 )? "::" fmt-h16'
        ' | ( fmt-h16c{0,6} fmt-h16 )? "::"'
    ),
    "fmt-atext": "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]",
    # At most 64 characters before the "@" and 254 in all (three labels of 48, a top-level domain of 24).
    "fmt-email": (
        'fmt-atext{1,32} ( "." fmt-atext{1,15} ){0,2} "@"'
        ' ( ( fmt-email-label "." ){1,3} fmt-email-tld | "[" fmt-ipv4 "]" | "[IPv6:" fmt-ipv6 "]" )'
    ),
    # A hostname label of 1 to 48 letters, digits and inner hyphens, without the hyphens in third and fourth
    # place that IDNA reserves ("xn--" and the like).
    "fmt-email-label": (
        "fmt-ld ( fmt-ld? | fmt-ldh fmt-ld"
        ' | fmt-ldh ( fmt-ld fmt-ldh{0,44} fmt-ld | "-" fmt-ld ( fmt-ldh{0,43} fmt-ld )? ) )'
    ),
    # RFC 1123 host names, narrowed like e-mail labels (no hyphens in third and fourth place: IDNA's A-labels,
    # whose Punycode a grammar cannot check) and, to stay within 253 characters, up to three labels of 63 or
    # up to eight of 30.
    "fmt-hostname": 'fmt-host-label ( "." fmt-host-label ){0,2} | fmt-host-short ( "." fmt-host-short ){3,7}',
    "fmt-host-label": (
        "fmt-ld ( fmt-ld? | fmt-ldh fmt-ld"
        ' | fmt-ldh ( fmt-ld fmt-ldh{0,59} fmt-ld | "-" fmt-ld ( fmt-ldh{0,58} fmt-ld )? ) )'
    ),
    "fmt-host-short": (
        "fmt-ld ( fmt-ld? | fmt-ldh fmt-ld"
        ' | fmt-ldh ( fmt-ld fmt-ldh{0,26} fmt-ld | "-" fmt-ld ( fmt-ldh{0,25} fmt-ld )? ) )'
    ),
    "fmt-ld": "[a-zA-Z0-9]",
    "fmt-ldh": "[a-zA-Z0-9-]",
    "fmt-pct": f'"%" {_HEX} {_HEX}',
    "fmt-sub-delims": "[!$&'()*+,;=]",
    # RFC 6570 level 4 templates (the suite's errata reading: `'` is a literal).
    "fmt-uri-template": (
        "( [!#$&-;=?-[\\]_a-z~] | fmt-ucschar | fmt-iprivate | fmt-pct"
        ' | "{" [+#./;?&=,!@|]? fmt-varspec ( "," fmt-varspec )* "}" )*'
    ),
    "fmt-varspec": 'fmt-varchar ( "."? fmt-varchar )* ( ":" [1-9] [0-9]{0,3} | "*" )?',
    "fmt-varchar": "[a-zA-Z0-9_] | fmt-pct",
    # RFC 3339 appendix A durations.
    "fmt-duration": (
        '"P" ( ( [0-9]+ "D" | [0-9]+ "M" ( [0-9]+ "D" )? | [0-9]+ "Y" ( [0-9]+ "M" ( [0-9]+ "D" )? )? )'
        ' fmt-duration-time? | fmt-duration-time | [0-9]+ "W" )'
    ),
    "fmt-duration-time": (
        '"T" ( [0-9]+ "H" ( [0-9]+ "M" ( [0-9]+ "S" )? )? | [0-9]+ "M" ( [0-9]+ "S" )? | [0-9]+ "S" )'
    ),
    "fmt-json-pointer": '( "/" ( fmt-pointer-char | "~" [01] )* )*',
    "fmt-relative-json-pointer": '( "0" | [1-9] [0-9]* ) ( "#" | fmt-json-pointer )',
}
_RULES.update(_letters_except("fmt-email-tld", SPECIAL_USE_DOMAINS, 2, 24))
_RULES.update(_uri_family("fmt-", "[a-zA-Z0-9._~-]", None))
_RULES.update(_uri_family("fmt-i", "[a-zA-Z0-9._~-] | fmt-ucschar", "fmt-iprivate"))
_RULES["fmt-pointer-char"] = json_char_set(complement(((0x2F, 0x2F), (0x7E, 0x7E)))) or '""'

FORMAT_RULES = {
    "date": "fmt-date",
    "time": "fmt-time",
    "date-time": "fmt-date-time",
    "uuid": "fmt-uuid",
    "email": "fmt-email",
    "hostname": "fmt-hostname",
    "ipv4": "fmt-ipv4",
    "ipv6": "fmt-ipv6",
    "uri": "fmt-uri",
    "uri-reference": "fmt-uri-reference",
    "iri": "fmt-iuri",
    "iri-reference": "fmt-iuri-reference",
    "uri-template": "fmt-uri-template",
    "duration": "fmt-duration",
    "json-pointer": "fmt-json-pointer",
    "relative-json-pointer": "fmt-relative-json-pointer",
}
"""Format name -> the rule of its string content."""

UNSUPPORTED_FORMATS = frozenset({"idn-hostname", "idn-email", "regex"})
"""Formats that draft 2020-12 defines and that no grammar here checks: refused (or unenforced in lenient)."""


FORMAT_LENGTHS = {"email": (6, 236), "hostname": (1, 247), "date": (10, 10), "uuid": (36, 36), "ipv4": (7, 15)}
"""The shortest and longest string each of these formats' rules writes (all ASCII, one JSON unit a character):
a minLength/maxLength that they imply says nothing more. E-mail: 64 before the "@", three labels of 48 and a
top-level domain of 24 after it; host names: eight labels of 30."""


def format_rules(rule_name: str) -> dict[str, str]:
    """A format rule (a value of FORMAT_RULES) and every rule it needs."""
    needed: dict[str, str] = {}
    pending = [rule_name]
    while pending:
        rule = pending.pop()
        if rule in needed or rule not in _RULES:
            continue
        needed[rule] = _RULES[rule]
        pending.extend(_RULE_NAME.findall(_RULES[rule]))
    return needed


MIN_BOUNDED_URI = 64
"""The shortest maxLength bounded_uri() writes (below it the length is counted exactly, string_sets.py)."""


def bounded_uri(high: int) -> str:
    """GBNF content of URIs of at most `high` characters (pydantic's HttpUrl: maxLength 2,083), for a maxLength
    too long to count exactly beside the format: each part gets a fixed share of the length, a part's
    character (a %XX triple included) counted as three, so the whole never exceeds it. A narrowing of fmt-uri
    (IP-literal hosts and URIs whose parts outgrow their shares are not written), never a widening; it uses
    fmt-uri's rules (`format_rules("fmt-uri")`)."""
    scheme = min(32, high // 8)
    units = (high - scheme - 12) // 3  # 12: ":" "//" "@" ":" five port digits "?" "#"
    userinfo, host = units // 20, min(85, units * 2 // 5)  # a DNS name is at most 253 characters
    path = max(2, (units - userinfo - host) // 2)
    query = (units - userinfo - host - path) * 2 // 3
    fragment = units - userinfo - host - path - query
    path_unit = '( fmt-pchar | "/" )'
    query_unit = "( fmt-pchar | [/?] )"
    authority = (
        f'( ( fmt-unreserved | fmt-pct | fmt-sub-delims | ":" ){{0,{userinfo}}} "@" )?'
        f' ( fmt-unreserved | fmt-pct | fmt-sub-delims ){{0,{host}}} ( ":" [0-9]{{0,5}} )?'
    )
    hier = (
        f'"//" {authority} ( "/" {path_unit}{{0,{path - 1}}} )?'
        f' | "/" ( fmt-pchar {path_unit}{{0,{path - 2}}} )? | fmt-pchar {path_unit}{{0,{path - 1}}}'
    )
    return (
        f'[a-zA-Z] [a-zA-Z0-9+.-]{{0,{scheme - 1}}} ":" ( {hier} )?'
        f' ( "?" {query_unit}{{0,{query}}} )? ( "#" {query_unit}{{0,{fragment}}} )?'
    )
