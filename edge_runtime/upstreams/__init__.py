"""Upstream providers: models served by another OpenAI-compatible server (vLLM, llama-server, Ollama, another
edge-runtime, hosted APIs) behind the same routes and ids as local ones.

`providers` (types and dialects), `config` (the operator's upstreams and remote models, kept in the store),
`shaping` (a request in a dialect), `output_check` (structured output validated), `client` (HTTP with timeouts,
retries, health), `proxy` (the OpenAI routes) and `native` (the native routes translated).
"""
