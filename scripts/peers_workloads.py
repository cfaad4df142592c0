"""The requests scripts/bench_peers.py sends: the same token prompts and sampling to edge-runtime and to
llama-server over their OpenAI `/v1/completions` routes, each asked in its own dialect for the same thing.

Prompts go as token ids, tokenized once here from the GGUF's vocabulary (llama.cpp, vocabulary only), so both
servers decode exactly the same tokens: our text route does not parse special tokens such as Gemma's
`<start_of_turn>` in a prompt and llama-server does.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import jsonschema
from bench_engine import document

Dialect = Literal["edge-runtime", "llama-server"]

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 60},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "city": {"type": "string", "maxLength": 60},
        "occupation": {"type": "string", "maxLength": 60},
        "skills": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 4},
        "email": {"type": "string", "maxLength": 80},
        "employed": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "occupation", "skills", "email", "employed"],
    "additionalProperties": False,
}
"""What the extraction workload asks for; strings and the list are bounded so a looping small model ends."""

FIRST = ["Maria", "Tomas", "Aiko", "Samuel", "Priya", "Jonas", "Leila", "Bruno", "Ingrid", "Kwame", "Sofia", "Ravi"]
LAST = ["Gonzalez", "Novak", "Tanaka", "Okafor", "Sharma", "Berg", "Haddad", "Costa", "Lund", "Mensah"]
CITIES = ["Valencia", "Brno", "Osaka", "Lagos", "Pune", "Bergen", "Beirut", "Porto", "Malmo", "Accra", "Lyon"]
JOBS = ["structural engineer", "nurse", "baker", "data analyst", "teacher", "electrician", "pharmacist"]
SKILLS = ["Python", "AutoCAD", "welding", "first aid", "statistics", "French", "accounting", "carpentry"]


@dataclass(frozen=True)
class Markup:
    """How a model's turns are written, so the prompt is the one it was trained on."""

    user: str
    """Opens the user's turn (after BOS)."""
    answer: str
    """Closes the user's turn and opens the model's."""


MARKUPS = {
    "gemma": Markup("<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"),
    "chatml": Markup("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"),
}


class PromptTokens:
    """The GGUF's vocabulary alone (no weights), to write prompts as token ids and to know the end tokens."""

    def __init__(self, model_path: Path) -> None:
        import llama_cpp
        from llama_peer import engine_like_llama

        self._llm = engine_like_llama(model_path, vocab_only=True, verbose=False)
        vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self.eog_ids = [t for t in range(self._llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]

    def tokenize(self, text: str, *, bos: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode(), add_bos=bos, special=True)

    def close(self) -> None:
        self._llm.close()


@dataclass(frozen=True)
class Prompts:
    """Every prompt of one run, as token ids shared by both servers."""

    short: list[int]
    """A 24-token prompt for plain decoding."""
    streams: list[list[int]]
    """Four distinct 24-token prompts for the concurrent streams."""
    instructions: list[int]
    """The shared extraction prefix (BOS, the user's turn opened, about 700 tokens of instructions)."""
    documents: list[list[int]]
    """Each full extraction prompt: the instructions, one person's description, the model's turn opened."""


def make_prompts(tokens: PromptTokens, markup: Markup, n_documents: int, prefix_tokens: int) -> Prompts:
    instructions = markup.user + INSTRUCTIONS
    index = 0
    while len(tokens.tokenize(instructions)) < prefix_tokens:
        instructions += "\n" + example_line(index)
        index += 1
    instructions += "\n\nNow the record to extract:\n"
    head = tokens.tokenize(instructions)
    documents = [head + tokens.tokenize(person(i) + markup.answer, bos=False) for i in range(n_documents)]
    return Prompts(
        short=document("Write a long story about the valley.", 24, tokens),
        streams=[document(f"Story {i} begins here.", 24, tokens) for i in range(4)],
        instructions=head,
        documents=documents,
    )


INSTRUCTIONS = (
    "You read short descriptions of people and write one JSON object per description, with exactly the keys "
    "name, age, city, occupation, skills, email and employed. name is the person's full name as written. age "
    "is a whole number of years. city is where the person lives or comes from. occupation is the job title in "
    "lower case. skills is a list of at most four skills named in the text, in the order they appear. email is "
    "the address given, or an empty string when there is none. employed is true when the text says the person "
    "works, false when it says they are retired, unemployed or looking for work. Write nothing but the JSON "
    "object. Here are records that were extracted correctly before:"
)


def person(index: int) -> str:
    first, last = FIRST[index % len(FIRST)], LAST[(index * 7) % len(LAST)]
    city, job = CITIES[(index * 5) % len(CITIES)], JOBS[(index * 3) % len(JOBS)]
    skills = [SKILLS[(index + k) % len(SKILLS)] for k in range(1 + index % 3)]
    works = "works full time" if index % 4 else "is looking for work"
    return (
        f"{first} {last} is a {22 + (index * 13) % 50}-year-old {job} from {city}. {first.split()[0]} {works}, "
        f"knows {', '.join(skills)}, and can be reached at {first.lower()}.{last.lower()}@example.org."
    )


def example_line(index: int) -> str:
    """A worked example for the instructions: a description and its record (people the documents do not use)."""
    described = person(index + 1000)
    first, last = FIRST[(index + 1000) % len(FIRST)], LAST[((index + 1000) * 7) % len(LAST)]
    record = {
        "name": f"{first} {last}",
        "age": 22 + ((index + 1000) * 13) % 50,
        "city": CITIES[((index + 1000) * 5) % len(CITIES)],
        "occupation": JOBS[((index + 1000) * 3) % len(JOBS)],
        "skills": [SKILLS[(index + 1000 + k) % len(SKILLS)] for k in range(1 + (index + 1000) % 3)],
        "email": f"{first.lower()}.{last.lower()}@example.org",
        "employed": bool((index + 1000) % 4),
    }
    return f"Text: {described}\nRecord: {json.dumps(record)}"


# --- asking a server ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """One completion as both servers are asked for it: greedy, a fixed maximum, and end tokens either
    banned (`ignore_eos`: every answer is max_tokens long) or allowed (a schema's answer ends with its JSON)."""

    prompt: list[int]
    max_tokens: int
    ignore_eos: bool = False
    schema: dict[str, Any] | None = None
    stream: bool = True


@dataclass
class Peer:
    """A server on a loopback port and the dialect it is asked in."""

    dialect: Dialect
    base_url: str
    model: str
    """The id edge-runtime serves the model under (llama-server answers whatever a request names)."""
    eog_ids: list[int]

    def body(self, ask: Ask) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": ask.prompt,
            "max_tokens": ask.max_tokens,
            "temperature": 0.0,
            "stream": ask.stream,
        }
        if ask.stream:
            body["stream_options"] = {"include_usage": True}
        if self.dialect == "llama-server":
            body["ignore_eos"] = ask.ignore_eos
            if ask.schema is not None:
                body["json_schema"] = ask.schema
            return body
        if ask.ignore_eos:  # what llama-server's ignore_eos does: every end-of-generation token biased away
            body["logit_bias"] = {str(token): -100 for token in self.eog_ids}
        if ask.schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "record", "schema": ask.schema, "strict": True},
            }
        return body


@dataclass(frozen=True)
class Streamed:
    """One streamed completion as the client saw it (perf_counter seconds)."""

    sent: float
    first: float
    last: float
    tokens: int
    text: str

    def decode_tokens_per_s(self) -> float:
        """Tokens after the first over the time from the first to the last: prompt processing left out."""
        return (self.tokens - 1) / (self.last - self.first) if self.last > self.first else 0.0


def stream(http: httpx.Client, peer: Peer, ask: Ask) -> Streamed:
    sent = time.perf_counter()
    first = last = 0.0
    tokens, pieces = 0, []
    with http.stream("POST", f"{peer.base_url}/v1/completions", json=peer.body(ask)) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"{peer.dialect} answered {answer.status_code}: {answer.read().decode()[:300]}")
        for line in answer.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                last = time.perf_counter()
                first = first or last
                pieces.append(chunk["choices"][0]["text"])
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
    if not first:
        raise RuntimeError(f"{peer.dialect} streamed no text")
    return Streamed(sent, first, last, tokens, "".join(pieces))


def complete(http: httpx.Client, peer: Peer, ask: Ask) -> str:
    answer = http.post(f"{peer.base_url}/v1/completions", json=peer.body(ask))
    if answer.status_code != 200:
        raise RuntimeError(f"{peer.dialect} answered {answer.status_code}: {answer.text[:300]}")
    return str(answer.json()["choices"][0]["text"])


# --- the workloads: each returns its measurement -----------------------------------------------------------


def decode_rate(http: httpx.Client, peer: Peer, prompt: list[int], n_tokens: int) -> float:
    return stream(http, peer, Ask(prompt, n_tokens, ignore_eos=True)).decode_tokens_per_s()


def schema_rate(http: httpx.Client, peer: Peer, prompt: list[int], max_tokens: int) -> float:
    return stream(http, peer, Ask(prompt, max_tokens, schema=RECORD_SCHEMA)).decode_tokens_per_s()


def concurrent_rate(http: httpx.Client, peer: Peer, prompts: list[list[int]], n_tokens: int) -> float:
    """Aggregate tokens/s of the streams, from the first request sent to the last token received."""
    with ThreadPoolExecutor(len(prompts)) as pool:
        runs = list(pool.map(lambda p: stream(http, peer, Ask(p, n_tokens, ignore_eos=True)), prompts))
    return sum(r.tokens for r in runs) / (max(r.last for r in runs) - min(r.sent for r in runs))


def first_token_ms(http: httpx.Client, peer: Peer, prompt: list[int]) -> float:
    run = stream(http, peer, Ask(prompt, 4, ignore_eos=True))
    return (run.first - run.sent) * 1000


@dataclass(frozen=True)
class Extraction:
    documents_per_s: float
    valid: int


def extraction(
    http: httpx.Client, peer: Peer, documents: list[list[int]], parallel: int, max_tokens: int
) -> Extraction:
    """Every document through the schema, `parallel` requests at a time; an answer counts as valid when it
    parses and jsonschema accepts it."""
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        answers = list(
            pool.map(
                lambda d: complete(http, peer, Ask(d, max_tokens, schema=RECORD_SCHEMA, stream=False)), documents
            )
        )
    elapsed = time.perf_counter() - started
    return Extraction(len(documents) / elapsed, sum(valid_record(answer) for answer in answers))


def valid_record(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), RECORD_SCHEMA)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True
